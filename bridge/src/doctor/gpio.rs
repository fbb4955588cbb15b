//! The GPIO lines as the doctor asks them: who holds a line, an E22's mode pins, and an
//! SX126x or SX127x brought up and put back to sleep.
//!
//! Kept apart from the checks because it is the doctor's one seam onto the hardware: the
//! checks only decide, and tests put emulated pins and chips behind [`Gpio`].

use std::path::Path;

use lorabridge_radio::e22::cdev::{CdevPins, LineUse, PinLines};
use lorabridge_radio::e22::{ModePins, PinError};
use lorabridge_radio::sx126x::Sx126xSettings;
use lorabridge_radio::sx126x::linux::SpiLines;
use lorabridge_radio::sx127x::linux::Sx127xLines;
use lorabridge_radio::{
    DriverConfig, Radio, RadioError, RadioFuture, Sx127xSettings, sx126x, sx127x,
};

/// The GPIO lines: who holds one, an E22's mode pins to ask the module through, and an
/// SX126x's bus. [`SystemGpio`] is this machine's kernel; tests stand in emulated pins and
/// chips.
pub trait Gpio {
    fn find(&self, name: &str) -> Option<LineUse>;
    fn mode_pins(&self, lines: &PinLines) -> Result<Box<dyn ModePins>, PinError>;
    /// Opens the SX126x on `spidev` through `lines`, brings it up as the driver does (reset,
    /// a status read, initialisation) and puts it to sleep again; nothing is sent on air.
    fn ask_sx126x<'a>(
        &'a self,
        spidev: &'a Path,
        lines: &'a SpiLines,
        settings: Sx126xSettings,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>>;
    /// Opens the SX127x on `spidev` through `lines`, brings it up as the driver does (reset,
    /// RegVersion, LoRa mode) and puts it to sleep again; nothing is sent on air.
    fn ask_sx127x<'a>(
        &'a self,
        spidev: &'a Path,
        lines: &'a Sx127xLines,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>>;
}

/// The kernel's GPIO chips, through the character devices under `/dev`.
pub struct SystemGpio;

impl Gpio for SystemGpio {
    fn find(&self, name: &str) -> Option<LineUse> {
        lorabridge_radio::e22::cdev::find_line(name)
    }

    fn mode_pins(&self, lines: &PinLines) -> Result<Box<dyn ModePins>, PinError> {
        Ok(Box::new(CdevPins::open(lines)?))
    }

    fn ask_sx126x<'a>(
        &'a self,
        spidev: &'a Path,
        lines: &'a SpiLines,
        settings: Sx126xSettings,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            let bus = lorabridge_radio::sx126x::linux::open(spidev, lines)?;
            sx126x::open(bus, settings, cfg).await?.shutdown().await
        })
    }

    fn ask_sx127x<'a>(
        &'a self,
        spidev: &'a Path,
        lines: &'a Sx127xLines,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            let bus = lorabridge_radio::sx127x::linux::open(spidev, lines)?;
            sx127x::open(bus, Sx127xSettings::default(), cfg)
                .await?
                .shutdown()
                .await
        })
    }
}
