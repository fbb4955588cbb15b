//! The E22's mode pins (M0, M1: outputs of the host) and its AUX pin (an input: low while the
//! module is busy), behind a small trait so that tests drive an emulator's pins and a Pi
//! drives GPIO lines ([`super::cdev::CdevPins`]).

use thiserror::Error;

/// The four working modes, as (M1, M0): 00 normal (transparent data), 01 wake-on-radio,
/// 10 configuration (registers, 9600 8N1 only), 11 sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Normal,
    WakeOnRadio,
    Config,
    Sleep,
}

impl Mode {
    /// The level of M0.
    pub fn m0(self) -> bool {
        matches!(self, Mode::WakeOnRadio | Mode::Sleep)
    }

    /// The level of M1.
    pub fn m1(self) -> bool {
        matches!(self, Mode::Config | Mode::Sleep)
    }

    /// The mode the two pin levels select.
    pub fn from_pins(m0: bool, m1: bool) -> Mode {
        match (m1, m0) {
            (false, false) => Mode::Normal,
            (false, true) => Mode::WakeOnRadio,
            (true, false) => Mode::Config,
            (true, true) => Mode::Sleep,
        }
    }
}

/// A GPIO line could not be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("GPIO line {line}: {reason}")]
pub struct PinError {
    /// Which line, as the steward named it (e.g. "M0 (GPIO22)").
    pub line: String,
    pub reason: String,
}

/// Access to the module's M0, M1 and AUX pins.
///
/// The methods are synchronous: setting or reading a GPIO line is one ioctl, far shorter than
/// anything the driver waits for.
pub trait ModePins: Send + 'static {
    /// Drives M0 and M1 to select `mode`.
    fn set_mode(&mut self, mode: Mode) -> Result<(), PinError>;

    /// Whether AUX is high (the module idle); `Ok(None)` when AUX is not wired to the host,
    /// in which case the driver waits fixed times instead.
    fn aux_high(&mut self) -> Result<Option<bool>, PinError>;
}

impl<P: ModePins + ?Sized> ModePins for Box<P> {
    fn set_mode(&mut self, mode: Mode) -> Result<(), PinError> {
        (**self).set_mode(mode)
    }

    fn aux_high(&mut self) -> Result<Option<bool>, PinError> {
        (**self).aux_high()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_the_pins() {
        let table = [
            (Mode::Normal, false, false),
            (Mode::WakeOnRadio, true, false),
            (Mode::Config, false, true),
            (Mode::Sleep, true, true),
        ];
        for (mode, m0, m1) in table {
            assert_eq!((mode.m0(), mode.m1()), (m0, m1), "{mode:?}");
            assert_eq!(Mode::from_pins(m0, m1), mode);
        }
    }
}
