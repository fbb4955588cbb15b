//! What a module really puts on air for one host frame.
//!
//! The modulation is shared by both ends, but modules differ in what they wrap around the
//! host's bytes: an RNode adds a header byte to every LoRa packet, sends a longer preamble
//! than asked for and splits long frames in two packets; the E22 driver adds its own framing.
//! The duty-cycle ledger must charge what goes on air, not the plain frame: charged short,
//! a bridge would break the law by the difference.

use std::time::Duration;

use crate::modulation::Modulation;

/// A module's airtime model: its modulation as sent, the bytes it adds to each packet, and
/// the largest share of a host frame one packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnAir {
    /// The settings as the module sends them (preamble raised where the firmware raises it).
    pub modulation: Modulation,
    /// Bytes the module or its driver adds to every packet.
    pub added_bytes: usize,
    /// Host bytes per packet; a longer frame goes out as several packets.
    pub chunk: usize,
}

impl OnAir {
    /// A module that sends the host's frame as one packet, as configured (the AT modules).
    pub fn plain(modulation: Modulation) -> Self {
        Self {
            modulation,
            added_bytes: 0,
            chunk: usize::MAX,
        }
    }

    /// Every packet carries `bytes` more than the host's share.
    pub fn with_added_bytes(self, bytes: usize) -> Self {
        Self {
            added_bytes: bytes,
            ..self
        }
    }

    /// The firmware sends at least `symbols` of preamble, whatever was configured.
    pub fn with_min_preamble(mut self, symbols: u16) -> Self {
        self.modulation.preamble_symbols = self.modulation.preamble_symbols.max(symbols);
        self
    }

    /// A host frame is cut into packets of at most `chunk` of its bytes.
    pub fn split_every(self, chunk: usize) -> Self {
        Self {
            chunk: chunk.max(1),
            ..self
        }
    }

    /// The time on air of one host frame of `len` bytes: every packet it becomes.
    pub fn time_on_air(&self, len: usize) -> Duration {
        let packets = len.div_ceil(self.chunk).max(1);
        let mut left = len;
        let mut total = Duration::ZERO;
        for _ in 0..packets {
            let share = left.min(self.chunk);
            left -= share;
            total += self.modulation.time_on_air(share + self.added_bytes);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_module_is_charged_the_frame_as_configured() {
        let m = Modulation::eu868_default();
        let plain = OnAir::plain(m);
        for len in [0, 1, 118, 250, 255] {
            assert_eq!(plain.time_on_air(len), m.time_on_air(len), "{len}");
        }
    }

    #[test]
    fn header_preamble_and_split_are_each_charged() {
        let m = Modulation::eu868_default();
        let rnode = OnAir::plain(m)
            .with_min_preamble(18)
            .with_added_bytes(1)
            .split_every(254);
        let long = Modulation {
            preamble_symbols: 18,
            ..m
        };
        assert_eq!(rnode.time_on_air(100), long.time_on_air(101));
        assert_eq!(rnode.time_on_air(254), long.time_on_air(255));
        assert_eq!(
            rnode.time_on_air(300),
            long.time_on_air(255) + long.time_on_air(47)
        );
        assert!(rnode.time_on_air(100) > m.time_on_air(100));
        // A preamble longer than the minimum stays as configured.
        let slow = Modulation {
            preamble_symbols: 32,
            ..m
        };
        assert_eq!(OnAir::plain(slow).with_min_preamble(18).modulation, slow);
    }
}
