//! What the two AT firmwares (RUI3 and RAK811) have in common: reading the host's input as
//! command lines, and the six P2P radio settings both take as one colon-separated value.
//! Each firmware keeps its own command set, replies and limits.

use lorabridge_hardware::Modulation;
use lorabridge_radio::at::{LineSplitter, Lines};

use super::Effects;

/// An AT firmware, as the shared command reader drives it.
pub(crate) trait AtFirmware {
    /// The module's input buffer.
    fn lines(&mut self) -> &mut LineSplitter;

    /// Answers one command line.
    fn command(&mut self, line: &str, fx: &mut Effects);

    /// Answers a line too long for the input buffer (it is dropped unread).
    fn overlong(&mut self, fx: &mut Effects);

    /// Splits what the host wrote into command lines and answers each in turn; a partial line
    /// waits in the buffer for the rest.
    fn read_commands(&mut self, bytes: &[u8], fx: &mut Effects) {
        let mut items = Vec::new();
        self.lines().push(bytes, &mut items);
        for item in items {
            match item {
                Lines::Line(line) => self.command(&line, fx),
                Lines::Overlong => self.overlong(fx),
            }
        }
    }
}

/// The P2P settings, in the order both firmwares' commands take them. Bandwidth and coding
/// rate are in the firmware's own encoding (an index or kHz; 1–4 or 0–3), so what is valid is
/// each firmware's to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct P2pSettings {
    pub frequency_hz: u32,
    pub sf: u8,
    pub bw: u32,
    pub cr: u8,
    pub preamble: u16,
    pub power: i8,
}

impl P2pSettings {
    /// Reads `<Hz>:<sf>:<bw>:<cr>:<preamble>:<dBm>`: `None` unless there are exactly six
    /// numbers, each fitting its field.
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.split(':').collect();
        let [frequency_hz, sf, bw, cr, preamble, power] = parts.as_slice() else {
            return None;
        };
        Some(Self {
            frequency_hz: frequency_hz.parse().ok()?,
            sf: sf.parse().ok()?,
            bw: bw.parse().ok()?,
            cr: cr.parse().ok()?,
            preamble: preamble.parse().ok()?,
            power: power.parse().ok()?,
        })
    }

    /// The value as a query prints it back: the form [`P2pSettings::parse`] reads.
    pub fn value(&self) -> String {
        let Self {
            frequency_hz,
            sf,
            bw,
            cr,
            preamble,
            power,
        } = self;
        format!("{frequency_hz}:{sf}:{bw}:{cr}:{preamble}:{power}")
    }

    /// The modulation on air, given what the firmware's bandwidth and coding-rate fields mean.
    /// Neither firmware as emulated changes the sync word: it stays the private default.
    pub fn modulation(&self, bandwidth_hz: u32, coding_rate: u8) -> Modulation {
        Modulation {
            frequency_hz: self.frequency_hz,
            spreading_factor: self.sf,
            bandwidth_hz,
            coding_rate,
            preamble_symbols: self.preamble,
            tx_power_dbm: self.power,
            sync_word: 0x12,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::super::test_support::{step, text};
    use super::super::{Faults, Personality};

    /// Feeds `input` to a module as the host's bytes and returns its answer as text.
    pub fn host(module: &mut impl Personality, faults: &Faults, input: &str) -> String {
        text(&step(faults, |fx| module.host(input.as_bytes(), fx)).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_numbers_read_and_print_back() {
        let settings = P2pSettings::parse("869525000:7:125:0:8:-3").expect("valid");
        assert_eq!((settings.bw, settings.power), (125, -3));
        assert_eq!(settings.value(), "869525000:7:125:0:8:-3");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "869525000:7:125:0:8",
            "869525000:7:125:0:8:14:1",
            "1:2:3:4:5:x",
        ] {
            assert_eq!(P2pSettings::parse(bad), None, "{bad:?}");
        }
        // Each number must fit its field: the spreading factor is one byte.
        assert_eq!(P2pSettings::parse("869525000:300:125:0:8:14"), None);
    }
}
