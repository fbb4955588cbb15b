//! Splitting a serial byte stream into AT lines, with a hard bound on memory.

/// Longest line kept, in bytes. RUI3 events carry at most 500 hex digits plus a short prefix,
/// RAK811 lines are limited to 255 characters; anything longer is garbage or a runaway module,
/// and is discarded (and counted) rather than buffered.
pub const MAX_LINE: usize = 1024;

/// One item out of the splitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lines {
    /// A complete line without its terminator; never empty, at most [`MAX_LINE`] bytes.
    /// Bytes that are not UTF-8 are replaced, so the text is always valid.
    Line(String),
    /// A line longer than [`MAX_LINE`] was dropped.
    Overlong,
}

/// Accumulates bytes until CR or LF.
///
/// Memory: at most [`MAX_LINE`] bytes of partial line, whatever the other side sends.
/// After an overlong line it discards everything up to the next terminator.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    discarding: bool,
}

impl LineSplitter {
    /// A splitter with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and appends every completed item to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Lines>) {
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                } else if !self.buf.is_empty() {
                    // Line noise before a reply (a glitch, a partial line from before a reset)
                    // is binary far more often than printable: drop leading bytes that are not
                    // printable ASCII, so `\xc0OK` still reads as `OK`.
                    let start = self
                        .buf
                        .iter()
                        .position(|b| (0x20..0x7f).contains(b))
                        .unwrap_or(self.buf.len());
                    let text = String::from_utf8_lossy(&self.buf[start..])
                        .trim()
                        .to_string();
                    if !text.is_empty() {
                        out.push(Lines::Line(text));
                    }
                }
                self.buf.clear();
            } else if self.discarding {
                // Still inside an overlong line.
            } else if self.buf.len() >= MAX_LINE {
                self.buf.clear();
                self.discarding = true;
                out.push(Lines::Overlong);
            } else {
                self.buf.push(b);
            }
        }
    }

    /// Bytes of the current partial line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(chunks: &[&[u8]]) -> Vec<Lines> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    #[test]
    fn splits_crlf_lf_and_partial_chunks() {
        let out = split(&[b"OK\r\nAT_ERR", b"OR\r\n\r\n+EVT:TXP2P DONE\n"]);
        assert_eq!(
            out,
            vec![
                Lines::Line("OK".into()),
                Lines::Line("AT_ERROR".into()),
                Lines::Line("+EVT:TXP2P DONE".into())
            ]
        );
    }

    #[test]
    fn overlong_line_is_dropped_once_and_next_line_survives() {
        let long = vec![b'A'; MAX_LINE * 3];
        let out = split(&[&long, b"\r\nOK\r\n"]);
        assert_eq!(out, vec![Lines::Overlong, Lines::Line("OK".into())]);
    }

    #[test]
    fn leading_noise_is_dropped_and_inner_invalid_utf8_replaced() {
        assert_eq!(
            split(&[b"\xff\xfe\x01OK\r\n"]),
            vec![Lines::Line("OK".into())]
        );
        assert_eq!(
            split(&[b"\xc0", b"\r\n\xc0", b"OK\r\n"]),
            vec![Lines::Line("OK".into())]
        );
        let out = split(&[b"A\xffB\r\n"]);
        assert_eq!(out, vec![Lines::Line("A\u{fffd}B".into())]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_stay_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 0..8)) {
            let mut s = LineSplitter::new();
            let mut out = Vec::new();
            for c in &chunks {
                s.push(c, &mut out);
                prop_assert!(s.pending() <= MAX_LINE);
            }
            for item in out {
                if let Lines::Line(l) = item {
                    prop_assert!(!l.is_empty());
                    prop_assert!(l.len() <= MAX_LINE * 3); // lossy replacement may widen bytes
                }
            }
        }
    }
}
