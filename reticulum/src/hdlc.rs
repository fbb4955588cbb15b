//! The HDLC-like framing rnsd's TCP interfaces use: `0x7E` ‖ escaped packet ‖ `0x7E`, escape
//! byte `0x7D`, escaped byte XOR `0x20`. There is no CRC: TCP already protects the bytes.

/// Frame delimiter.
pub const FLAG: u8 = 0x7E;
/// Escape byte; the byte after it is XORed with [`ESC_MASK`].
pub const ESC: u8 = 0x7D;
pub const ESC_MASK: u8 = 0x20;

/// Frames `packet` for the wire.
pub fn encode(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + 8);
    out.push(FLAG);
    for &b in packet {
        if b == ESC || b == FLAG {
            out.push(ESC);
            out.push(b ^ ESC_MASK);
        } else {
            out.push(b);
        }
    }
    out.push(FLAG);
    out
}

/// Splits a TCP byte stream into packets.
///
/// Memory is bounded: a frame longer than `max_frame` bytes (after unescaping) is discarded
/// whole, and counted, instead of growing the buffer; the decoder resynchronises on the next
/// delimiter. Empty frames (two delimiters in a row, which is how every frame starts after the
/// previous one ended) are skipped silently.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    max_frame: usize,
    in_frame: bool,
    escaped: bool,
    overflow: bool,
    /// Frames dropped because they exceeded `max_frame`.
    pub oversized: u64,
}

impl Deframer {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_frame,
            in_frame: false,
            escaped: false,
            overflow: false,
            oversized: 0,
        }
    }

    /// Feeds bytes read from the stream; calls `on_frame` for every complete frame.
    pub fn push(&mut self, bytes: &[u8], mut on_frame: impl FnMut(&[u8])) {
        for &b in bytes {
            if b == FLAG {
                if self.in_frame && !self.buf.is_empty() && !self.overflow {
                    on_frame(&self.buf);
                }
                if self.overflow {
                    self.oversized += 1;
                }
                self.buf.clear();
                self.in_frame = true;
                self.escaped = false;
                self.overflow = false;
                continue;
            }
            if !self.in_frame || self.overflow {
                continue;
            }
            let byte = if self.escaped {
                self.escaped = false;
                b ^ ESC_MASK
            } else if b == ESC {
                self.escaped = true;
                continue;
            } else {
                b
            };
            if self.buf.len() >= self.max_frame {
                self.overflow = true;
                self.buf.clear();
            } else {
                self.buf.push(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut Deframer, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        d.push(bytes, |f| out.push(f.to_vec()));
        out
    }

    #[test]
    fn escapes_both_special_bytes_and_round_trips() {
        let packet = [1, FLAG, 2, ESC, 3, ESC ^ ESC_MASK];
        let wire = encode(&packet);
        assert_eq!(wire, [FLAG, 1, ESC, 0x5E, 2, ESC, 0x5D, 3, 0x5D, FLAG]);
        let mut d = Deframer::new(500);
        assert_eq!(frames(&mut d, &wire), vec![packet.to_vec()]);
    }

    #[test]
    fn frames_split_across_reads_and_garbage_before_first_flag() {
        let mut wire = vec![9, 9, 9];
        wire.extend(encode(b"hello"));
        wire.extend(encode(b"world"));
        let mut d = Deframer::new(500);
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            got.extend(frames(&mut d, chunk));
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"world".to_vec()]);
    }

    #[test]
    fn oversized_frame_is_dropped_and_counted_then_resyncs() {
        let mut d = Deframer::new(4);
        let mut wire = encode(&[1; 10]);
        wire.extend(encode(&[2; 4]));
        assert_eq!(frames(&mut d, &wire), vec![vec![2; 4]]);
        assert_eq!(d.oversized, 1);
    }
}
