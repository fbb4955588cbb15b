//! What crosses the E22's UART: our own framing for data in normal (transparent) mode, and
//! the module's register replies in configuration mode. Pure: bytes in, events out.
//!
//! In transparent mode the UART has no frame delimiter: received packets arrive as bare bytes,
//! split wherever the serial line pauses, and data longer than a sub-packet arrives as several
//! pieces. Each lorabridge frame is therefore wrapped as
//!
//! ```text
//! 'L' 'B' | length (1..=255) | payload | CRC-16/IBM-3740 of length and payload, big-endian
//! ```
//!
//! ([`OVERHEAD`] = 5 bytes), and the module appends one RSSI byte after every packet it
//! outputs when register 06 bit 7 is set. The decoder finds frames by their marker and
//! length, accepts them by their CRC, and resynchronises after garbage by trying every later
//! marker in what it holds, so a false marker in noise delays nothing beyond its own length.

use crc::{CRC_16_IBM_3740, Crc};

use super::registers::{READ, REFUSED};

/// The marker that starts every frame.
pub const MAGIC: [u8; 2] = *b"LB";
/// Bytes our framing adds to a payload: marker, length, CRC.
pub const OVERHEAD: usize = MAGIC.len() + 1 + 2;
/// Longest payload the one-byte length can say.
pub const MAX_PAYLOAD: usize = 255;
/// Longest register reply the decoder accepts (the module has nine registers; product
/// information is a few bytes more).
const MAX_REPLY_DATA: usize = 16;
/// Most bytes the decoder holds: the longest frame with its RSSI byte. Anything older than
/// that cannot start a frame any more and is dropped as noise.
pub const MAX_HELD: usize = OVERHEAD + MAX_PAYLOAD + 1;

const CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// Wraps one payload for the UART; `None` when it is empty or longer than [`MAX_PAYLOAD`].
pub fn encode(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u8::try_from(payload.len()).ok().filter(|&n| n > 0)?;
    let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
    out.extend_from_slice(&MAGIC);
    out.push(len);
    out.extend_from_slice(payload);
    let crc = CRC.checksum(&out[MAGIC.len()..]);
    out.extend_from_slice(&crc.to_be_bytes());
    Some(out)
}

/// What the decoder expects on the line, set by the dialect at every mode switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// Configuration mode: `C1 addr len data` replies, or `FF FF FF`.
    #[default]
    Replies,
    /// Normal mode: our frames, each followed by an RSSI byte when `rssi_byte` is set.
    Frames { rssi_byte: bool },
}

/// One thing the module said.
#[derive(Clone, Debug, PartialEq)]
pub enum E22Event {
    /// A received frame; `rssi` in dBm when the module appends RSSI bytes.
    Frame { payload: Vec<u8>, rssi: Option<i16> },
    /// A register reply: start address and values.
    Registers { address: u8, data: Vec<u8> },
    /// `FF FF FF`: the module could not parse a configuration command.
    Refused,
    /// A run of bytes that is no frame or reply (garbage, a broken frame, a foreign sender),
    /// reported once per run.
    Noise,
}

/// The decoder for both modes.
///
/// Memory: at most [`MAX_HELD`] bytes.
#[derive(Debug, Default)]
pub struct E22Decoder {
    expect: Expect,
    held: Vec<u8>,
    /// Inside a run of dropped bytes (its `Noise` was already reported).
    skipping: bool,
}

/// RSSI in dBm from the module's byte: `-(256 - b)`.
pub fn rssi_dbm(byte: u8) -> i16 {
    i16::from(byte) - 256
}

impl E22Decoder {
    /// Switches what the decoder expects; bytes held under the old mode are dropped.
    pub fn expect(&mut self, expect: Expect) {
        self.expect = expect;
        self.held.clear();
        self.skipping = false;
    }

    /// Feeds bytes from the port; appends events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<E22Event>) {
        for &b in bytes {
            self.held.push(b);
            match self.expect {
                Expect::Replies => self.replies(out),
                Expect::Frames { rssi_byte } => self.frames(rssi_byte, out),
            }
        }
    }

    fn drop_front(&mut self, n: usize, out: &mut Vec<E22Event>) {
        self.held.drain(..n.min(self.held.len()));
        if !self.skipping {
            self.skipping = true;
            out.push(E22Event::Noise);
        }
    }

    fn emit(&mut self, event: E22Event, out: &mut Vec<E22Event>) {
        self.held.clear();
        self.skipping = false;
        out.push(event);
    }

    fn replies(&mut self, out: &mut Vec<E22Event>) {
        loop {
            let h = &self.held;
            match h.first() {
                None => return,
                Some(&READ) => {
                    let Some(&len) = h.get(2) else { return };
                    let len = usize::from(len);
                    if len > MAX_REPLY_DATA {
                        self.drop_front(1, out);
                        continue;
                    }
                    if h.len() < 3 + len {
                        return;
                    }
                    let event = E22Event::Registers {
                        address: h[1],
                        data: h[3..3 + len].to_vec(),
                    };
                    return self.emit(event, out);
                }
                Some(&0xFF) => {
                    let n = h.len().min(REFUSED.len());
                    if h[..n] != REFUSED[..n] {
                        self.drop_front(1, out);
                        continue;
                    }
                    if n == REFUSED.len() {
                        return self.emit(E22Event::Refused, out);
                    }
                    return;
                }
                Some(_) => self.drop_front(1, out),
            }
        }
    }

    fn frames(&mut self, rssi_byte: bool, out: &mut Vec<E22Event>) {
        let extra = usize::from(rssi_byte);
        // A frame that ends with this byte, starting at any marker held: the earliest valid
        // one wins, and what lies before it is noise.
        let end = self.held.len();
        let found = (0..end.saturating_sub(OVERHEAD)).find(|&start| {
            let h = &self.held[start..];
            h.starts_with(&MAGIC) && {
                let len = usize::from(h[2]);
                len > 0 && OVERHEAD + len + extra == h.len() && {
                    let crc_at = MAGIC.len() + 1 + len;
                    let crc = u16::from_be_bytes([h[crc_at], h[crc_at + 1]]);
                    CRC.checksum(&h[MAGIC.len()..crc_at]) == crc
                }
            }
        });
        if let Some(start) = found {
            if start > 0 {
                self.drop_front(start, out);
            }
            let h = &self.held;
            let len = usize::from(h[2]);
            let payload = h[3..3 + len].to_vec();
            let rssi = rssi_byte.then(|| rssi_dbm(h[h.len() - 1]));
            return self.emit(E22Event::Frame { payload, rssi }, out);
        }
        // Drop what can no longer start a frame: bytes before the first marker (or a trailing
        // half marker), a zero length, and a first frame that should have ended by now.
        loop {
            let h = &self.held;
            let starts = match h.len() {
                0 => return,
                1 => h[0] == MAGIC[0],
                2 => h[..] == MAGIC,
                _ => {
                    h.starts_with(&MAGIC)
                        && h[2] > 0
                        && h.len() < OVERHEAD + usize::from(h[2]) + extra
                }
            };
            if starts {
                return;
            }
            self.drop_front(1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(expect: Expect, chunks: &[&[u8]]) -> Vec<E22Event> {
        let mut d = E22Decoder::default();
        d.expect(expect);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out);
        }
        out
    }

    const DATA: Expect = Expect::Frames { rssi_byte: true };

    fn frame(payload: &[u8], rssi: i16) -> E22Event {
        E22Event::Frame {
            payload: payload.to_vec(),
            rssi: Some(rssi),
        }
    }

    #[test]
    fn a_frame_split_anywhere_is_reassembled() {
        let mut wire = encode(b"hello mesh").expect("fits");
        wire.push(185); // RSSI byte: -71 dBm
        for cut in 0..wire.len() {
            let got = decode(DATA, &[&wire[..cut], &wire[cut..]]);
            assert_eq!(got, vec![frame(b"hello mesh", -71)], "cut at {cut}");
        }
        let no_rssi = decode(
            Expect::Frames { rssi_byte: false },
            &[&wire[..wire.len() - 1]],
        );
        assert_eq!(
            no_rssi,
            vec![E22Event::Frame {
                payload: b"hello mesh".to_vec(),
                rssi: None
            }]
        );
    }

    #[test]
    fn garbage_and_false_markers_are_skipped() {
        let mut good = encode(b"real").expect("fits");
        good.push(200);
        // A false marker claiming 200 bytes, then the real frame: the real one is found
        // without waiting for the false one's length.
        let mut line = b"\x00\xffLB\xc8junk".to_vec();
        line.extend_from_slice(&good);
        let got = decode(DATA, &[&line]);
        assert_eq!(got, vec![E22Event::Noise, frame(b"real", -56)]);
        // A frame with a broken CRC, then a good one.
        let mut broken = encode(b"broken").expect("fits");
        broken[4] ^= 0x01;
        broken.push(200);
        broken.extend_from_slice(&good);
        assert_eq!(
            decode(DATA, &[&broken]),
            vec![E22Event::Noise, frame(b"real", -56)]
        );
    }

    #[test]
    fn replies_and_refusals_in_configuration_mode() {
        let got = decode(
            Expect::Replies,
            &[
                b"\x00\xc1\x00\x07",
                b"\x01\x02\x03\x04\x05\x06\x07",
                b"\xff\xff",
                b"\xff",
            ],
        );
        assert_eq!(
            got,
            vec![
                E22Event::Noise,
                E22Event::Registers {
                    address: 0,
                    data: vec![1, 2, 3, 4, 5, 6, 7]
                },
                E22Event::Refused,
            ]
        );
        // An impossible length is noise, not a wait for 200 bytes.
        let got = decode(Expect::Replies, &[b"\xc1\x00\xc8\xc1\x05\x01\x12"]);
        assert_eq!(
            got,
            vec![
                E22Event::Noise,
                E22Event::Registers {
                    address: 5,
                    data: vec![0x12]
                }
            ]
        );
    }

    #[test]
    fn switching_mode_drops_half_received_bytes() {
        let mut d = E22Decoder::default();
        let mut out = Vec::new();
        d.push(b"\xc1\x00", &mut out);
        d.expect(DATA);
        let mut wire = encode(b"x").expect("fits");
        wire.push(0xB0);
        d.push(&wire, &mut out);
        assert_eq!(out, vec![frame(b"x", -80)]);
    }

    #[test]
    fn encode_refuses_empty_and_overlong_payloads() {
        assert_eq!(encode(b""), None);
        assert_eq!(encode(&[0; 256]), None);
        assert_eq!(encode(&[0; 255]).map(|w| w.len()), Some(255 + OVERHEAD));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_stay_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..6),
            rssi in any::<bool>(),
            replies in any::<bool>(),
        ) {
            let mut d = E22Decoder::default();
            d.expect(if replies { Expect::Replies } else { Expect::Frames { rssi_byte: rssi } });
            let mut out = Vec::new();
            for c in &chunks {
                d.push(c, &mut out);
                prop_assert!(d.held.len() <= MAX_HELD);
            }
        }

        #[test]
        fn frames_survive_garbage_before_them(
            garbage in proptest::collection::vec(any::<u8>(), 0..300),
            payload in proptest::collection::vec(any::<u8>(), 1..=235),
            rssi in any::<u8>(),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut wire = garbage.clone();
            wire.extend(encode(&payload).expect("fits"));
            wire.push(rssi);
            let cut = cut.index(wire.len());
            let got = decode(DATA, &[&wire[..cut], &wire[cut..]]);
            // Garbage may itself hold a valid frame (it is random bytes); ours comes last.
            prop_assert_eq!(got.last(), Some(&frame(&payload, rssi_dbm(rssi))));
        }
    }
}
