//! Pure parser for RAK811 AT firmware v3 output: bytes in, events out.

use crate::at::{LineSplitter, Lines, hex};

/// One thing the module said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rak811Event {
    /// `OK` with whatever information followed it on the line (e.g. the version).
    Ok(String),
    /// `ERROR: <code>`.
    Error(Rak811Error),
    /// `at+recv=<rssi>,<snr>,<len>:<hex>`: a received P2P frame.
    Received {
        rssi: i16,
        snr: i16,
        payload: Vec<u8>,
    },
    /// The banner line after a reboot (work-mode changes reboot the module).
    Initialized,
    /// An `at+recv=` line we could not read, or whose length disagrees with its payload.
    Malformed(String),
    /// A line over the length bound was dropped.
    Overlong,
    /// Any other line (banner text, status listings).
    Text(String),
}

/// The v3 error codes, named as the manual describes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rak811Error {
    UnknownCommand,
    BadParameter,
    Busy,
    NotAllowedInMode,
    BadLoraParameter(u16),
    TooLong,
    DutyCycleLimit,
    TxTimeout,
    Other(u16),
}

impl Rak811Error {
    /// Maps the numeric code to its meaning.
    pub fn from_code(code: u16) -> Self {
        match code {
            1 => Rak811Error::UnknownCommand,
            2 => Rak811Error::BadParameter,
            80 => Rak811Error::Busy,
            81 => Rak811Error::NotAllowedInMode,
            82 | 83 => Rak811Error::BadLoraParameter(code),
            87 => Rak811Error::TooLong,
            90 => Rak811Error::DutyCycleLimit,
            94 => Rak811Error::TxTimeout,
            other => Rak811Error::Other(other),
        }
    }

    /// The numeric code as the module prints it.
    pub fn code(self) -> u16 {
        match self {
            Rak811Error::UnknownCommand => 1,
            Rak811Error::BadParameter => 2,
            Rak811Error::Busy => 80,
            Rak811Error::NotAllowedInMode => 81,
            Rak811Error::BadLoraParameter(c) => c,
            Rak811Error::TooLong => 87,
            Rak811Error::DutyCycleLimit => 90,
            Rak811Error::TxTimeout => 94,
            Rak811Error::Other(c) => c,
        }
    }

    /// A human-readable explanation for error messages.
    pub fn describe(self) -> String {
        let what = match self {
            Rak811Error::UnknownCommand => "unknown command",
            Rak811Error::BadParameter => "bad parameter",
            Rak811Error::Busy => "module busy",
            Rak811Error::NotAllowedInMode => "not allowed in the current work mode",
            Rak811Error::BadLoraParameter(_) => "bad LoRa parameter",
            Rak811Error::TooLong => "payload too long",
            Rak811Error::DutyCycleLimit => "module's own duty-cycle limit reached",
            Rak811Error::TxTimeout => "transmit timeout",
            Rak811Error::Other(_) => "undocumented error",
        };
        format!("ERROR: {} ({what})", self.code())
    }
}

/// Turns RAK811 serial output into [`Rak811Event`]s.
///
/// Memory: one [`LineSplitter`] (≤ 1 KiB).
#[derive(Debug, Default)]
pub struct Rak811Parser {
    lines: LineSplitter,
    scratch: Vec<Lines>,
}

impl Rak811Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes from the port; appends events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Rak811Event>) {
        self.lines.push(bytes, &mut self.scratch);
        for item in self.scratch.drain(..) {
            out.push(match item {
                Lines::Overlong => Rak811Event::Overlong,
                Lines::Line(line) => parse_line(&line),
            });
        }
    }
}

fn parse_line(line: &str) -> Rak811Event {
    if line == "OK" {
        return Rak811Event::Ok(String::new());
    }
    if let Some(info) = line.strip_prefix("OK ") {
        return Rak811Event::Ok(info.trim().to_string());
    }
    if let Some(code) = line.strip_prefix("ERROR") {
        let code = code.trim_start_matches([':', ' ']).trim();
        return match code.parse() {
            Ok(c) => Rak811Event::Error(Rak811Error::from_code(c)),
            Err(_) => Rak811Event::Text(line.to_string()),
        };
    }
    if let Some(rest) = line.strip_prefix("at+recv=") {
        return parse_recv(rest).unwrap_or_else(|| Rak811Event::Malformed(line.to_string()));
    }
    if line.contains("Initialization OK") {
        return Rak811Event::Initialized;
    }
    Rak811Event::Text(line.to_string())
}

/// `<rssi>,<snr>,<len>:<hex>`.
fn parse_recv(rest: &str) -> Option<Rak811Event> {
    let (meta, data) = rest.split_once(':')?;
    let mut nums = meta.split(',');
    let rssi = nums.next()?.trim().parse().ok()?;
    let snr = nums.next()?.trim().parse().ok()?;
    let len: usize = nums.next()?.trim().parse().ok()?;
    if nums.next().is_some() {
        return None;
    }
    let payload = hex::decode(data.trim())?;
    (payload.len() == len).then_some(Rak811Event::Received { rssi, snr, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(input: &[u8]) -> Vec<Rak811Event> {
        let mut p = Rak811Parser::new();
        let mut out = Vec::new();
        p.push(input, &mut out);
        out
    }

    #[test]
    fn ok_error_and_receive() {
        assert_eq!(
            parse(
                b"OK V3.0.0.14.H\r\nERROR: 80\r\nat+recv=-40,9,3:010203\r\nInitialization OK\r\n"
            ),
            vec![
                Rak811Event::Ok("V3.0.0.14.H".into()),
                Rak811Event::Error(Rak811Error::Busy),
                Rak811Event::Received {
                    rssi: -40,
                    snr: 9,
                    payload: vec![1, 2, 3]
                },
                Rak811Event::Initialized
            ]
        );
    }

    #[test]
    fn error_codes_map() {
        for (code, want) in [
            (1, Rak811Error::UnknownCommand),
            (2, Rak811Error::BadParameter),
            (81, Rak811Error::NotAllowedInMode),
            (82, Rak811Error::BadLoraParameter(82)),
            (83, Rak811Error::BadLoraParameter(83)),
            (87, Rak811Error::TooLong),
            (90, Rak811Error::DutyCycleLimit),
            (94, Rak811Error::TxTimeout),
            (7, Rak811Error::Other(7)),
        ] {
            assert_eq!(Rak811Error::from_code(code), want);
            assert_eq!(want.code(), code);
        }
    }

    #[test]
    fn length_mismatch_is_malformed() {
        assert_eq!(
            parse(b"at+recv=-40,9,4:010203\r\n"),
            vec![Rak811Event::Malformed("at+recv=-40,9,4:010203".into())]
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..6)) {
            let mut p = Rak811Parser::new();
            let mut out = Vec::new();
            for c in &chunks { p.push(c, &mut out); }
        }

        #[test]
        fn recv_like_lines_never_panic(body in "[-0-9A-Fa-f:, ]{0,80}") {
            let _ = parse(format!("at+recv={body}\r\nERROR{body}\r\n").as_bytes());
        }

        #[test]
        fn any_payload_round_trips(rssi in -150i16..0, snr in -30i16..30, payload in proptest::collection::vec(any::<u8>(), 1..118)) {
            let line = format!("at+recv={rssi},{snr},{}:{}\r\n", payload.len(), hex::encode(&payload));
            prop_assert_eq!(parse(line.as_bytes()), vec![Rak811Event::Received { rssi, snr, payload }]);
        }
    }
}
