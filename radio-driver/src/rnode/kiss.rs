//! KISS framing as the RNode firmware uses it on its serial port.

/// Frame delimiter.
pub const FEND: u8 = 0xC0;
/// Escape byte.
pub const FESC: u8 = 0xDB;
/// Escaped FEND.
pub const TFEND: u8 = 0xDC;
/// Escaped FESC.
pub const TFESC: u8 = 0xDD;

/// Largest frame kept (command byte + payload). The RNode host MTU is 508 bytes; twice that
/// leaves room for firmware reports we do not know without letting a runaway line grow.
pub const MAX_FRAME: usize = 1024;

/// Encodes one frame: `FEND cmd escaped(payload) FEND`.
pub fn encode(cmd: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.push(FEND);
    push_escaped(&mut out, cmd);
    for &b in payload {
        push_escaped(&mut out, b);
    }
    out.push(FEND);
    out
}

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    match b {
        FEND => out.extend_from_slice(&[FESC, TFEND]),
        FESC => out.extend_from_slice(&[FESC, TFESC]),
        _ => out.push(b),
    }
}

/// One item out of the decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KissItem {
    /// A complete frame: command byte and unescaped payload.
    Frame { cmd: u8, payload: Vec<u8> },
    /// A frame longer than [`MAX_FRAME`] was dropped.
    Overlong,
    /// A frame with an invalid escape sequence was dropped.
    Corrupt,
}

/// Reassembles KISS frames from a byte stream.
///
/// Memory: at most [`MAX_FRAME`] bytes of partial frame. Bytes before the first FEND are
/// ignored; an overlong or corrupt frame is dropped whole and decoding resumes at the next FEND.
#[derive(Debug, Default)]
pub struct KissDecoder {
    buf: Vec<u8>,
    in_frame: bool,
    escaped: bool,
    bad: Option<KissItem>,
}

impl KissDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; appends completed items to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<KissItem>) {
        for &b in bytes {
            if b == FEND {
                if let Some(bad) = self.bad.take() {
                    out.push(bad);
                } else if self.in_frame && !self.buf.is_empty() {
                    if self.escaped {
                        out.push(KissItem::Corrupt);
                    } else {
                        let cmd = self.buf[0];
                        out.push(KissItem::Frame {
                            cmd,
                            payload: self.buf[1..].to_vec(),
                        });
                    }
                }
                self.buf.clear();
                self.escaped = false;
                self.in_frame = true;
                continue;
            }
            if !self.in_frame || self.bad.is_some() {
                continue;
            }
            let byte = if self.escaped {
                self.escaped = false;
                match b {
                    TFEND => FEND,
                    TFESC => FESC,
                    _ => {
                        self.bad = Some(KissItem::Corrupt);
                        self.buf.clear();
                        continue;
                    }
                }
            } else if b == FESC {
                self.escaped = true;
                continue;
            } else {
                b
            };
            if self.buf.len() >= MAX_FRAME {
                self.bad = Some(KissItem::Overlong);
                self.buf.clear();
                continue;
            }
            self.buf.push(byte);
        }
    }

    /// Bytes of the current partial frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Vec<KissItem> {
        let mut d = KissDecoder::new();
        let mut out = Vec::new();
        d.push(bytes, &mut out);
        out
    }

    #[test]
    fn escapes_both_special_bytes() {
        assert_eq!(
            encode(0x00, &[FEND, 1, FESC]),
            vec![FEND, 0, FESC, TFEND, 1, FESC, TFESC, FEND]
        );
    }

    #[test]
    fn garbage_before_first_fend_and_bad_escape_are_dropped() {
        let mut input = vec![1, 2, 3];
        input.extend(encode(0x23, &[100]));
        input.extend([FEND, 0x00, FESC, 0x01, 0x02, FEND]);
        input.extend(encode(0x24, &[4]));
        assert_eq!(
            decode(&input),
            vec![
                KissItem::Frame {
                    cmd: 0x23,
                    payload: vec![100]
                },
                KissItem::Corrupt,
                KissItem::Frame {
                    cmd: 0x24,
                    payload: vec![4]
                }
            ]
        );
    }

    #[test]
    fn overlong_frame_dropped_then_next_frame_kept() {
        let mut input = encode(0x00, &vec![7; MAX_FRAME + 10]);
        input.extend(encode(0x0F, &[]));
        assert_eq!(
            decode(&input),
            vec![
                KissItem::Overlong,
                KissItem::Frame {
                    cmd: 0x0F,
                    payload: vec![]
                }
            ]
        );
    }

    proptest! {
        #[test]
        fn round_trip_split_anywhere(cmd in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..1300) {
            let wire = encode(cmd, &payload);
            let cut = cut.min(wire.len());
            let mut d = KissDecoder::new();
            let mut out = Vec::new();
            d.push(&wire[..cut], &mut out);
            d.push(&wire[cut..], &mut out);
            prop_assert_eq!(out, vec![KissItem::Frame { cmd, payload }]);
        }

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1500), 0..6)) {
            let mut d = KissDecoder::new();
            let mut out = Vec::new();
            for c in &chunks {
                d.push(c, &mut out);
                prop_assert!(d.pending() <= MAX_FRAME);
            }
        }
    }
}
