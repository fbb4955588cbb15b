//! The E22's pins on Linux GPIO lines, through the GPIO character device (`/dev/gpiochipN`).
//!
//! Built on `gpiocdev` rather than `gpio-cdev`: gpiocdev speaks the kernel's current uAPI v2
//! (v1, which gpio-cdev uses, is deprecated and may be compiled out of newer kernels), is a
//! pure-Rust equivalent of libgpiod by one of its maintainers, has recent releases, and can
//! find a line by its name. The name matters on a Pi: the header lines are called `GPIO22`
//! and so on on every model, while the chip that holds them is `gpiochip0` on a Pi 4 and a
//! different one on a Pi 5 with older kernels.

use std::path::PathBuf;

use gpiocdev::Request;
use gpiocdev::line::{Offset, Value, Values};
use serde::{Deserialize, Serialize};

use super::pins::{Mode, ModePins, PinError};

/// Who the kernel says holds the lines (`gpioinfo` shows it).
const CONSUMER: &str = "lorabridge";

/// One GPIO line, by name or by chip and offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpioLine {
    /// A line name as the kernel reports it, e.g. "GPIO22" (Raspberry Pi header lines).
    Named(String),
    /// A chip device and the line's offset on it.
    OnChip { chip: PathBuf, offset: Offset },
}

impl GpioLine {
    /// A Raspberry Pi header line by its Broadcom (BCM) number.
    pub fn bcm(n: u32) -> Self {
        GpioLine::Named(format!("GPIO{n}"))
    }

    fn locate(&self, role: &str) -> Result<(PathBuf, Offset), PinError> {
        match self {
            GpioLine::OnChip { chip, offset } => Ok((chip.clone(), *offset)),
            GpioLine::Named(name) => gpiocdev::find_named_line(name)
                .map(|found| (found.chip, found.info.offset))
                .ok_or_else(|| PinError {
                    line: format!("{role} ({name})"),
                    reason: "no GPIO line has this name (is this a Raspberry Pi, and may this \
                             user open /dev/gpiochip*?)"
                        .into(),
                }),
        }
    }

    fn describe(&self, role: &str) -> String {
        match self {
            GpioLine::Named(name) => format!("{role} ({name})"),
            GpioLine::OnChip { chip, offset } => format!("{role} ({}:{offset})", chip.display()),
        }
    }
}

/// Who holds a GPIO line, as the kernel reports it (what `gpioinfo` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineUse {
    /// The chip device the line is on, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// The program holding the line, `None` when the line is free.
    pub held_by: Option<String>,
}

/// Finds the line the kernel calls `name` (e.g. "GPIO22") on this machine's chips and says
/// whether a program holds it: `lorabridge doctor` uses it to name what blocks a HAT's pins.
/// `None` when no chip this user can open has such a line.
pub fn find_line(name: &str) -> Option<LineUse> {
    let found = gpiocdev::find_named_line(name)?;
    Some(LineUse {
        chip: found.chip,
        held_by: found.info.used.then(|| match found.info.consumer.as_str() {
            "" => "an unnamed program".to_string(),
            consumer => consumer.to_string(),
        }),
    })
}

/// Which lines the module's pins are on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinLines {
    pub m0: GpioLine,
    pub m1: GpioLine,
    /// `None` when AUX is not wired to the host.
    pub aux: Option<GpioLine>,
}

impl PinLines {
    /// The Waveshare SX1262 LoRa HAT: M0 = BCM22, M1 = BCM27. Our facts name no AUX line for
    /// it, so the driver waits fixed times; set `aux` if yours is wired.
    pub fn waveshare_hat() -> Self {
        Self {
            m0: GpioLine::bcm(22),
            m1: GpioLine::bcm(27),
            aux: None,
        }
    }

    /// The lines a board profile names (BCM numbers), if it names M0 and M1: so that a
    /// steward who names the HAT names its pins too.
    pub fn from_profile(pins: &lorabridge_hardware::board::Pins) -> Option<Self> {
        Some(Self {
            m0: GpioLine::bcm(pins.m0?),
            m1: GpioLine::bcm(pins.m1?),
            aux: pins.aux.map(GpioLine::bcm),
        })
    }
}

/// M0 and M1 held as outputs (one request, so both change at once and no third mode is ever
/// selected in between), AUX as an input.
///
/// The lines stay requested while this lives: another program cannot switch the module under
/// the driver.
pub struct CdevPins {
    modes: Request,
    m0: Offset,
    m1: Offset,
    names: (String, String),
    aux: Option<(Request, Offset, String)>,
}

fn failed(line: &str, e: gpiocdev::Error) -> PinError {
    PinError {
        line: line.to_string(),
        reason: e.to_string(),
    }
}

impl CdevPins {
    /// Requests the lines, starting in configuration mode (M1 high): the driver's first step
    /// reads the registers anyway, and the module sends nothing on air in this mode.
    pub fn open(lines: &PinLines) -> Result<Self, PinError> {
        let (m0_chip, m0) = lines.m0.locate("M0")?;
        let (m1_chip, m1) = lines.m1.locate("M1")?;
        let names = (lines.m0.describe("M0"), lines.m1.describe("M1"));
        if m0_chip != m1_chip {
            return Err(PinError {
                line: format!("{} and {}", names.0, names.1),
                reason: "M0 and M1 must be on one GPIO chip, so that both switch at once".into(),
            });
        }
        let modes = Request::builder()
            .on_chip(&m0_chip)
            .with_consumer(CONSUMER)
            .with_line(m0)
            .as_output(Value::Inactive)
            .with_line(m1)
            .as_output(Value::Active)
            .request()
            .map_err(|e| failed(&format!("{} and {}", names.0, names.1), e))?;
        let aux = match &lines.aux {
            None => None,
            Some(line) => {
                let name = line.describe("AUX");
                let (chip, offset) = line.locate("AUX")?;
                let request = Request::builder()
                    .on_chip(&chip)
                    .with_consumer(CONSUMER)
                    .with_line(offset)
                    .as_input()
                    .request()
                    .map_err(|e| failed(&name, e))?;
                Some((request, offset, name))
            }
        };
        Ok(Self {
            modes,
            m0,
            m1,
            names,
            aux,
        })
    }
}

fn level(on: bool) -> Value {
    if on { Value::Active } else { Value::Inactive }
}

impl ModePins for CdevPins {
    fn set_mode(&mut self, mode: Mode) -> Result<(), PinError> {
        let mut values = Values::default();
        values.set(self.m0, level(mode.m0()));
        values.set(self.m1, level(mode.m1()));
        self.modes
            .set_values(&values)
            .map_err(|e| failed(&format!("{} and {}", self.names.0, self.names.1), e))
    }

    fn aux_high(&mut self) -> Result<Option<bool>, PinError> {
        let Some((request, offset, name)) = &self.aux else {
            return Ok(None);
        };
        let value = request.value(*offset).map_err(|e| failed(name, e))?;
        Ok(Some(value == Value::Active))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveshare_lines_are_named_by_bcm_number() {
        let lines = PinLines::waveshare_hat();
        assert_eq!(lines.m0, GpioLine::Named("GPIO22".into()));
        assert_eq!(lines.m1, GpioLine::Named("GPIO27".into()));
        assert_eq!(lines.aux, None);
        let board =
            lorabridge_hardware::BoardProfile::builtin("waveshare-sx1262-hat").expect("profile");
        let from_board = board.pins.as_ref().and_then(PinLines::from_profile);
        assert_eq!(from_board, Some(lines));
        let spi = lorabridge_hardware::BoardProfile::builtin("meshadv-pi").expect("profile");
        assert_eq!(spi.pins.as_ref().and_then(PinLines::from_profile), None);
    }

    #[test]
    fn a_missing_line_is_named_in_the_error() {
        let lines = PinLines {
            m0: GpioLine::Named("NO-SUCH-LINE-M0".into()),
            ..PinLines::waveshare_hat()
        };
        let err = CdevPins::open(&lines).err().expect("no such line here");
        assert_eq!(err.line, "M0 (NO-SUCH-LINE-M0)");
    }
}
