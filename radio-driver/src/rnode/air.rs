//! The one-byte header RNode firmware puts before every LoRa packet, for modules that share a
//! channel with RNodes but do not add it themselves (the AT modules).
//!
//! Header: upper nibble a sequence number, lower bits 0 except bit 0, "split": the host frame
//! continues in the next packet with the same sequence number. An RNode strips the header
//! from what it hears and joins split halves; an AT module delivers the header as payload.

/// Largest payload after the header in one LoRa packet.
pub const AIR_CHUNK: usize = 254;

const SPLIT: u8 = 0x01;

/// Prepends a header for a frame that fits one packet (≤ [`AIR_CHUNK`] bytes); `None` for
/// longer frames, which an AT module cannot send as one host frame anyway.
pub fn wrap(payload: &[u8], sequence: u8) -> Option<Vec<u8>> {
    if payload.len() > AIR_CHUNK {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push((sequence & 0x0F) << 4);
    out.extend_from_slice(payload);
    Some(out)
}

/// What one received packet contributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unwrapped {
    /// A complete frame.
    Frame(Vec<u8>),
    /// The first half of a split frame, held until its second half.
    Partial,
    /// Empty, or a second half without its first: dropped.
    Dropped,
}

/// Joins split frames. Memory: at most one held half (≤ [`AIR_CHUNK`] bytes).
#[derive(Debug, Default)]
pub struct Joiner {
    held: Option<(u8, Vec<u8>)>,
}

impl Joiner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Strips the header from one packet and joins halves.
    pub fn push(&mut self, packet: &[u8]) -> Unwrapped {
        let Some((&header, body)) = packet.split_first() else {
            return Unwrapped::Dropped;
        };
        if header & SPLIT == 0 {
            self.held = None;
            return if body.is_empty() {
                Unwrapped::Dropped
            } else {
                Unwrapped::Frame(body.to_vec())
            };
        }
        let seq = header & 0xF0;
        match self.held.take() {
            Some((held_seq, mut first)) if held_seq == seq => {
                first.extend_from_slice(body);
                Unwrapped::Frame(first)
            }
            _ if body.len() > AIR_CHUNK => Unwrapped::Dropped,
            _ => {
                self.held = Some((seq, body.to_vec()));
                Unwrapped::Partial
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrap_and_unwrap_single_packet() {
        let packet = wrap(b"hello", 0x13).expect("fits");
        assert_eq!(packet[0], 0x30);
        assert_eq!(
            Joiner::new().push(&packet),
            Unwrapped::Frame(b"hello".to_vec())
        );
        assert_eq!(wrap(&[0; 255], 0), None);
    }

    #[test]
    fn split_halves_join_and_strays_drop() {
        let mut j = Joiner::new();
        assert_eq!(j.push(&[0x51, 1, 2]), Unwrapped::Partial);
        assert_eq!(j.push(&[0x51, 3]), Unwrapped::Frame(vec![1, 2, 3]));
        assert_eq!(j.push(&[0x61, 9]), Unwrapped::Partial);
        // A different sequence starts over.
        assert_eq!(j.push(&[0x71, 8]), Unwrapped::Partial);
        assert_eq!(j.push(&[]), Unwrapped::Dropped);
    }

    proptest! {
        #[test]
        fn random_packets_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..10)) {
            let mut j = Joiner::new();
            for p in &packets {
                if let Unwrapped::Frame(f) = j.push(p) {
                    prop_assert!(f.len() <= 2 * 300);
                }
            }
        }
    }
}
