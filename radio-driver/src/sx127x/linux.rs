//! The SX127x's bus on Linux: the SX126x's spidev and GPIO wrappers
//! ([`crate::sx126x::linux`]), with the SX127x's lines: NRESET and DIO0, no BUSY.

use std::path::Path;

use super::Bus;
use crate::RadioError;
use crate::e22::cdev::GpioLine;
use crate::sx126x::linux::{Line, Spidev, gpio, spidev};

/// Which lines the chip's pins are on (BCM numbers on a Pi, via [`GpioLine`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sx127xLines {
    pub reset: GpioLine,
    pub dio0: GpioLine,
    /// Chip select driven as a GPIO line (the Dragino HAT's NSS is on GPIO25, no CE line).
    pub cs: Option<GpioLine>,
}

impl Sx127xLines {
    /// The lines a board profile names, if it names RESET and the IRQ (DIO0).
    pub fn from_profile(pins: &lorabridge_hardware::board::Pins) -> Option<Self> {
        Some(Self {
            reset: GpioLine::bcm(pins.reset?),
            dio0: GpioLine::bcm(pins.irq?),
            cs: pins.cs.map(GpioLine::bcm),
        })
    }
}

/// Opens the spidev device and requests the lines: the bus for
/// [`super::open`].
pub fn open(path: &Path, lines: &Sx127xLines) -> Result<Bus<Spidev, Line, Line>, RadioError> {
    let spi = spidev(path, lines.cs.as_ref(), &[])?;
    Ok(Bus {
        spi,
        dio0: Line::request(&lines.dio0, "DIO0", None).map_err(gpio)?,
        reset: Line::request(&lines.reset, "RESET", Some(true)).map_err(gpio)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_profiles_name_the_lines() {
        let board =
            lorabridge_hardware::BoardProfile::builtin("dragino-lora-gps-hat").expect("profile");
        let lines = Sx127xLines::from_profile(board.pins.as_ref().expect("pins")).expect("lines");
        assert_eq!(lines.dio0, GpioLine::bcm(4));
        assert_eq!(lines.reset, GpioLine::bcm(17));
        assert_eq!(lines.cs, Some(GpioLine::bcm(25)));
        let rfm =
            lorabridge_hardware::BoardProfile::builtin("adafruit-rfm9x-bonnet").expect("profile");
        let lines = Sx127xLines::from_profile(rfm.pins.as_ref().expect("pins")).expect("lines");
        assert_eq!(lines.dio0, GpioLine::bcm(22));
    }

    #[test]
    fn a_missing_spidev_is_a_port_error() {
        let lines = Sx127xLines {
            reset: GpioLine::bcm(1),
            dio0: GpioLine::bcm(3),
            cs: None,
        };
        let err = open(Path::new("/dev/no-such-spidev"), &lines)
            .err()
            .expect("fails");
        assert!(matches!(err, RadioError::Port { .. }), "{err}");
    }
}
