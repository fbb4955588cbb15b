//! Refusing sealed frames heard before.
//!
//! With a region key, frames are authenticated, but a recorded frame would still be
//! accepted again: a replayed Vector or Want draws answers, a replayed summary disturbs
//! Trickle. So a sealed frame's nonce is not random: it is the sender's tag, the epoch of
//! the sender's start (which grows from one start to the next) and a counter of its frames.
//! A receiver keeps, per sender, the newest epoch and a window of recent counters, and
//! refuses anything older or seen: the scheme of IPsec's and WireGuard's replay windows.
//!
//! Bound: `MAX_SENDERS` senders (the least recently heard forgotten first; a forgotten
//! sender's next frame is accepted, and with it its newest epoch).

use std::collections::HashMap;

use crate::frame::Sequence;
use crate::tags::NodeTag;

const MAX_SENDERS: usize = 256;
/// Counters accepted out of order, below the highest seen.
const WINDOW: u64 = 64;

#[derive(Clone, Copy, Debug)]
struct Seen {
    epoch: u32,
    highest: u64,
    /// Bit i set: counter `highest - i` was seen.
    bits: u64,
    last_used: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ReplayWindow {
    senders: HashMap<NodeTag, Seen>,
    uses: u64,
}

impl ReplayWindow {
    /// Whether a frame from `sender` with `sequence` is new; if so it is remembered.
    pub(crate) fn accept(&mut self, sender: NodeTag, sequence: Sequence) -> bool {
        self.uses += 1;
        let fresh = Seen {
            epoch: sequence.epoch,
            highest: sequence.counter,
            bits: 1,
            last_used: self.uses,
        };
        let Some(seen) = self.senders.get_mut(&sender) else {
            if self.senders.len() >= MAX_SENDERS
                && let Some(oldest) = self
                    .senders
                    .iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(tag, _)| *tag)
            {
                self.senders.remove(&oldest);
            }
            self.senders.insert(sender, fresh);
            return true;
        };
        seen.last_used = self.uses;
        if sequence.epoch != seen.epoch {
            if sequence.epoch < seen.epoch {
                return false;
            }
            *seen = fresh;
            return true;
        }
        let counter = sequence.counter;
        if counter > seen.highest {
            let shift = counter - seen.highest;
            seen.bits = if shift >= 64 { 0 } else { seen.bits << shift } | 1;
            seen.highest = counter;
            return true;
        }
        let age = seen.highest - counter;
        if age >= WINDOW || seen.bits & (1 << age) != 0 {
            return false;
        }
        seen.bits |= 1 << age;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(epoch: u32, counter: u64) -> Sequence {
        Sequence { epoch, counter }
    }

    const A: NodeTag = NodeTag([1, 2]);

    #[test]
    fn a_frame_is_accepted_once_and_older_epochs_never() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(A, seq(5, 10)));
        assert!(!w.accept(A, seq(5, 10)), "the same frame again");
        assert!(w.accept(A, seq(5, 8)), "out of order within the window");
        assert!(!w.accept(A, seq(5, 8)));
        assert!(w.accept(A, seq(5, 200)));
        assert!(!w.accept(A, seq(5, 100)), "too far behind the window");
        assert!(!w.accept(A, seq(4, 1000)), "an earlier start");
        assert!(w.accept(A, seq(6, 0)), "a later start");
        assert!(!w.accept(A, seq(5, 201)));
    }

    #[test]
    fn senders_are_bounded() {
        let mut w = ReplayWindow::default();
        for i in 0..(MAX_SENDERS as u16 + 10) {
            assert!(w.accept(NodeTag(i.to_be_bytes()), seq(1, 1)));
        }
        assert_eq!(w.senders.len(), MAX_SENDERS);
    }
}
