//! The SX126x's bus on Linux: spidev for SPI and the GPIO character device for the lines.
//!
//! SPI goes through `linux-embedded-hal`'s `SpidevDevice` (the kernel's spidev, with its own
//! chip select). Its `SpiDevice` is the blocking one, so [`Spidev`] wraps it in the async
//! trait: a transfer of at most 260 bytes at [`SPI_HZ`] is over in about a millisecond, on
//! the driver's own thread (see [`super`]).
//!
//! The lines go through `gpiocdev` rather than linux-embedded-hal's `CdevPin`, for the
//! reasons in [`crate::e22::cdev`]: `CdevPin` is built on gpio-cdev, which speaks the
//! kernel's deprecated GPIO uAPI v1, while gpiocdev speaks v2 and finds lines by name.
//! Waiting for BUSY or DIO1 samples the line every millisecond: BUSY is low again within
//! microseconds to milliseconds, and a millisecond on DIO1 is nothing next to a packet's
//! airtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use embedded_hal_async::digital::Wait;
use gpiocdev::Request;
use gpiocdev::line::{Offset, Value};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};

use super::Bus;
use crate::RadioError;
use crate::e22::PinError;
use crate::e22::cdev::GpioLine;

/// SPI clock: 2 MHz, well inside the SX126x's 16 MHz and slow enough for HAT wiring.
pub const SPI_HZ: u32 = 2_000_000;
/// How often a line is sampled while the driver waits for it.
const POLL: Duration = Duration::from_millis(1);
const CONSUMER: &str = "lorabridge";

/// Which lines the chip's pins are on (BCM numbers on a Pi, via [`GpioLine`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiLines {
    pub reset: GpioLine,
    pub busy: GpioLine,
    pub dio1: GpioLine,
    /// Chip select driven as a GPIO line, when the board does not use spidev's CE line.
    pub cs: Option<GpioLine>,
    pub rx_enable: Option<GpioLine>,
    pub tx_enable: Option<GpioLine>,
    /// Lines held high while the radio is used (module power, antenna switch supply).
    pub power_enable: Vec<GpioLine>,
}

impl SpiLines {
    /// The lines a board profile names, if it names RESET, BUSY and the IRQ (DIO1).
    pub fn from_profile(pins: &lorabridge_hardware::board::Pins) -> Option<Self> {
        Some(Self {
            reset: GpioLine::bcm(pins.reset?),
            busy: GpioLine::bcm(pins.busy?),
            dio1: GpioLine::bcm(pins.irq?),
            cs: pins.cs.map(GpioLine::bcm),
            rx_enable: pins.rx_enable.map(GpioLine::bcm),
            tx_enable: pins.tx_enable.map(GpioLine::bcm),
            power_enable: pins
                .power_enable
                .iter()
                .copied()
                .map(GpioLine::bcm)
                .collect(),
        })
    }
}

/// One requested GPIO line.
pub struct Line {
    request: Request,
    offset: Offset,
    name: String,
}

impl Line {
    /// Requests `line` for `role` (in messages), as an output at the given level or an input.
    /// Shared with the SX127x's bus ([`crate::sx127x::linux`]).
    pub(crate) fn request(
        line: &GpioLine,
        role: &str,
        output: Option<bool>,
    ) -> Result<Self, PinError> {
        let name = match line {
            GpioLine::Named(n) => format!("{role} ({n})"),
            GpioLine::OnChip { chip, offset } => format!("{role} ({}:{offset})", chip.display()),
        };
        let (chip, offset) = match line {
            GpioLine::OnChip { chip, offset } => (chip.clone(), *offset),
            GpioLine::Named(n) => {
                let found = gpiocdev::find_named_line(n).ok_or_else(|| PinError {
                    line: name.clone(),
                    reason: "no GPIO line has this name (is this a Raspberry Pi, and may this \
                             user open /dev/gpiochip*?)"
                        .into(),
                })?;
                (found.chip, found.info.offset)
            }
        };
        let mut builder = Request::builder();
        builder
            .on_chip(&chip)
            .with_consumer(CONSUMER)
            .with_line(offset);
        match output {
            Some(high) => builder.as_output(if high { Value::Active } else { Value::Inactive }),
            None => builder.as_input(),
        };
        let request = builder.request().map_err(|e| PinError {
            line: name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            request,
            offset,
            name,
        })
    }

    fn level(&self) -> Result<bool, PinError> {
        self.request
            .value(self.offset)
            .map(|v| v == Value::Active)
            .map_err(|e| PinError {
                line: self.name.clone(),
                reason: e.to_string(),
            })
    }

    fn set(&mut self, high: bool) -> Result<(), PinError> {
        let v = if high { Value::Active } else { Value::Inactive };
        self.request
            .set_value(self.offset, v)
            .map(drop)
            .map_err(|e| PinError {
                line: self.name.clone(),
                reason: e.to_string(),
            })
    }

    async fn wait(&mut self, high: bool) -> Result<(), PinError> {
        while self.level()? != high {
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl PinErrorType for Line {
    type Error = PinError;
}

impl InputPin for Line {
    fn is_high(&mut self) -> Result<bool, PinError> {
        self.level()
    }
    fn is_low(&mut self) -> Result<bool, PinError> {
        self.level().map(|h| !h)
    }
}

impl OutputPin for Line {
    fn set_low(&mut self) -> Result<(), PinError> {
        self.set(false)
    }
    fn set_high(&mut self) -> Result<(), PinError> {
        self.set(true)
    }
}

impl Wait for Line {
    async fn wait_for_high(&mut self) -> Result<(), PinError> {
        self.wait(true).await
    }
    async fn wait_for_low(&mut self) -> Result<(), PinError> {
        self.wait(false).await
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), PinError> {
        self.wait(false).await?;
        self.wait(true).await
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), PinError> {
        self.wait(true).await?;
        self.wait(false).await
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), PinError> {
        let now = self.level()?;
        self.wait(!now).await
    }
}

/// spidev as an async `SpiDevice`, with an optional GPIO chip select, and the lines held
/// high for the board's power for as long as it lives.
pub struct Spidev {
    dev: linux_embedded_hal::SpidevDevice,
    cs: Option<Line>,
    path: PathBuf,
    _power: Vec<Line>,
}

/// Why an SPI transfer failed.
#[derive(Debug)]
pub struct SpiError(String);

impl std::fmt::Display for SpiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpiError {}

impl embedded_hal::spi::Error for SpiError {
    fn kind(&self) -> embedded_hal::spi::ErrorKind {
        embedded_hal::spi::ErrorKind::Other
    }
}

impl SpiErrorType for Spidev {
    type Error = SpiError;
}

impl embedded_hal_async::spi::SpiDevice for Spidev {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), SpiError> {
        use embedded_hal::spi::SpiDevice as _;
        let fail = |what: &str, e: &dyn std::fmt::Debug| {
            SpiError(format!("{} {what}: {e:?}", self.path.display()))
        };
        if let Some(cs) = &mut self.cs {
            cs.set(false).map_err(|e| fail("chip select", &e))?;
        }
        let r = self.dev.transaction(ops).map_err(|e| fail("transfer", &e));
        if let Some(cs) = &mut self.cs {
            cs.set(true).map_err(|e| fail("chip select", &e))?;
        }
        r
    }
}

pub(crate) fn gpio(e: PinError) -> RadioError {
    RadioError::Gpio {
        line: e.line,
        reason: e.reason,
    }
}

/// Opens the spidev device (mode 0, 8 bits, [`SPI_HZ`]) with its optional GPIO chip select,
/// and holds the board's power lines high. Shared with the SX127x's bus
/// ([`crate::sx127x::linux`]): both chips take SPI mode 0 at this clock.
pub(crate) fn spidev(
    path: &Path,
    cs: Option<&GpioLine>,
    power_enable: &[GpioLine],
) -> Result<Spidev, RadioError> {
    let port = |reason: String| RadioError::Port {
        path: path.display().to_string(),
        reason,
    };
    let mut dev =
        linux_embedded_hal::SpidevDevice::open(path).map_err(|e| port(format!("{e:?}")))?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(SPI_HZ)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    dev.0.configure(&options).map_err(|e| port(e.to_string()))?;
    let power = power_enable
        .iter()
        .map(|l| Line::request(l, "power enable", Some(true)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(gpio)?;
    let cs = match cs {
        Some(l) => Some(Line::request(l, "CS", Some(true)).map_err(gpio)?),
        None => None,
    };
    Ok(Spidev {
        dev,
        cs,
        path: path.to_path_buf(),
        _power: power,
    })
}

/// Opens the spidev device and requests the lines: the bus for
/// [`super::open`].
pub fn open(path: &Path, lines: &SpiLines) -> Result<Bus<Spidev, Line, Line, Line>, RadioError> {
    let spi = spidev(path, lines.cs.as_ref(), &lines.power_enable)?;
    let optional = |l: &Option<GpioLine>, role| match l {
        Some(l) => Line::request(l, role, Some(false)).map(Some),
        None => Ok(None),
    };
    Ok(Bus {
        spi,
        busy: Line::request(&lines.busy, "BUSY", None).map_err(gpio)?,
        dio1: Line::request(&lines.dio1, "DIO1", None).map_err(gpio)?,
        reset: Line::request(&lines.reset, "RESET", Some(true)).map_err(gpio)?,
        rx_enable: optional(&lines.rx_enable, "RX enable").map_err(gpio)?,
        tx_enable: optional(&lines.tx_enable, "TX enable").map_err(gpio)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_profiles_name_the_lines() {
        let board = lorabridge_hardware::BoardProfile::builtin("meshadv-pi").expect("profile");
        let lines = SpiLines::from_profile(board.pins.as_ref().expect("pins")).expect("lines");
        assert_eq!(lines.busy, GpioLine::bcm(20));
        assert_eq!(lines.dio1, GpioLine::bcm(16));
        assert_eq!(lines.cs, Some(GpioLine::bcm(21)));
        assert_eq!(lines.tx_enable, Some(GpioLine::bcm(13)));
        let rak = lorabridge_hardware::BoardProfile::builtin("rak6421-rak13300").expect("profile");
        let lines = SpiLines::from_profile(rak.pins.as_ref().expect("pins")).expect("lines");
        assert_eq!(
            lines.power_enable,
            vec![GpioLine::bcm(12), GpioLine::bcm(13)]
        );
        assert_eq!(lines.cs, None);
    }

    #[test]
    fn a_missing_spidev_is_a_port_error() {
        let lines = SpiLines {
            reset: GpioLine::bcm(1),
            busy: GpioLine::bcm(2),
            dio1: GpioLine::bcm(3),
            cs: None,
            rx_enable: None,
            tx_enable: None,
            power_enable: vec![],
        };
        let err = open(Path::new("/dev/no-such-spidev"), &lines)
            .err()
            .expect("fails");
        assert!(matches!(err, RadioError::Port { .. }), "{err}");
    }
}
