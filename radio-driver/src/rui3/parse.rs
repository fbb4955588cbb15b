//! Pure parser for RUI3 AT output: bytes in, events out.

use crate::at::{LineSplitter, Lines, hex};

/// One thing the module said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rui3Event {
    /// `OK`: the last command succeeded.
    Ok,
    /// A status code other than `OK` (`AT_BUSY_ERROR`, `AT_PARAM_ERROR`, ...).
    Status(Rui3Status),
    /// `+EVT:TXP2P DONE`: the frame left the antenna.
    TxDone,
    /// `+EVT:RXP2P RECEIVE TIMEOUT`: a timed receive window closed.
    RxTimeout,
    /// `+EVT:RXP2P RECEIVE ERROR` (CRC or header error on air).
    RxError,
    /// A received frame.
    Received {
        rssi: i16,
        snr: i16,
        payload: Vec<u8>,
    },
    /// An `+EVT:RXP2P` report we could not read (bad numbers or hex).
    Malformed(String),
    /// A line over the length bound was dropped.
    Overlong,
    /// Any other line: query values (`AT+P2P=...`), banners, echoes.
    Text(String),
}

/// RUI3 status codes that are not `OK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rui3Status {
    Error,
    ParamError,
    Busy,
    ParamOverflow,
    NoClassB,
    NotJoined,
    RxError,
    ModeNotSupported,
}

impl Rui3Status {
    fn from_line(line: &str) -> Option<Self> {
        Some(match line {
            "AT_ERROR" => Rui3Status::Error,
            "AT_PARAM_ERROR" => Rui3Status::ParamError,
            "AT_BUSY_ERROR" => Rui3Status::Busy,
            "AT_TEST_PARAM_OVERFLOW" => Rui3Status::ParamOverflow,
            "AT_NO_CLASSB_ENABLE" => Rui3Status::NoClassB,
            "AT_NO_NETWORK_JOINED" => Rui3Status::NotJoined,
            "AT_RX_ERROR" => Rui3Status::RxError,
            "AT_MODE_NO_SUPPORT" => Rui3Status::ModeNotSupported,
            _ => return None,
        })
    }

    /// The status as the module prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Rui3Status::Error => "AT_ERROR",
            Rui3Status::ParamError => "AT_PARAM_ERROR",
            Rui3Status::Busy => "AT_BUSY_ERROR",
            Rui3Status::ParamOverflow => "AT_TEST_PARAM_OVERFLOW",
            Rui3Status::NoClassB => "AT_NO_CLASSB_ENABLE",
            Rui3Status::NotJoined => "AT_NO_NETWORK_JOINED",
            Rui3Status::RxError => "AT_RX_ERROR",
            Rui3Status::ModeNotSupported => "AT_MODE_NO_SUPPORT",
        }
    }
}

/// Turns RUI3 serial output into [`Rui3Event`]s.
///
/// Memory: one [`LineSplitter`] (≤ 1 KiB) and, for the early two-line receive format, the
/// RSSI/SNR of one pending report.
#[derive(Debug, Default)]
pub struct Rui3Parser {
    lines: LineSplitter,
    scratch: Vec<Lines>,
    /// RSSI and SNR from an early-format `+EVT:RXP2P, RSSI x, SNR y` line whose payload line
    /// has not arrived yet.
    pending_meta: Option<(i16, i16)>,
}

impl Rui3Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes from the port; appends events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Rui3Event>) {
        self.lines.push(bytes, &mut self.scratch);
        let items = std::mem::take(&mut self.scratch);
        for item in &items {
            match item {
                Lines::Overlong => {
                    self.drop_pending(out);
                    out.push(Rui3Event::Overlong)
                }
                Lines::Line(line) => self.line(line, out),
            }
        }
        self.scratch = items;
        self.scratch.clear();
    }

    fn drop_pending(&mut self, out: &mut Vec<Rui3Event>) {
        if let Some((rssi, snr)) = self.pending_meta.take() {
            out.push(Rui3Event::Malformed(format!(
                "receive report (RSSI {rssi}, SNR {snr}) without payload line"
            )));
        }
    }

    fn line(&mut self, line: &str, out: &mut Vec<Rui3Event>) {
        if let Some((rssi, snr)) = self.pending_meta {
            // Early two-line format: the payload follows as `+EVT:<hex>`.
            if let Some(rest) = line.strip_prefix("+EVT:")
                && !rest.is_empty()
                && let Some(payload) = hex::decode(rest)
            {
                self.pending_meta = None;
                out.push(Rui3Event::Received { rssi, snr, payload });
                return;
            }
            self.drop_pending(out);
        }
        if line == "OK" {
            out.push(Rui3Event::Ok);
        } else if let Some(status) = Rui3Status::from_line(line) {
            out.push(Rui3Event::Status(status));
        } else if let Some(rest) = line.strip_prefix("+EVT:") {
            out.push(self.event(rest, line));
        } else {
            out.push(Rui3Event::Text(line.to_string()));
        }
    }

    fn event(&mut self, rest: &str, line: &str) -> Rui3Event {
        if rest.starts_with("TXP2P") {
            return Rui3Event::TxDone;
        }
        if let Some(body) = rest.strip_prefix("RXP2P") {
            let body = body.trim();
            if body.contains("TIMEOUT") {
                return Rui3Event::RxTimeout;
            }
            if body.contains("ERROR") {
                return Rui3Event::RxError;
            }
            if let Some(fields) = body.strip_prefix(':') {
                return parse_one_line(fields)
                    .unwrap_or_else(|| Rui3Event::Malformed(line.to_string()));
            }
            if let Some(meta) = body.strip_prefix(',') {
                return match parse_early_meta(meta) {
                    Some(m) => {
                        self.pending_meta = Some(m);
                        // The event is complete only with the next line; nothing to report yet.
                        Rui3Event::Text(line.to_string())
                    }
                    None => Rui3Event::Malformed(line.to_string()),
                };
            }
            return Rui3Event::Malformed(line.to_string());
        }
        Rui3Event::Text(line.to_string())
    }
}

/// `<rssi>:<snr>[:<len>...]:<hex>`: numbers first, payload after the last `:`.
fn parse_one_line(fields: &str) -> Option<Rui3Event> {
    let mut parts = fields.split(':');
    let rssi = parts.next()?.trim().parse().ok()?;
    let snr = parts.next()?.trim().parse().ok()?;
    let payload_text = fields.rsplit(':').next()?;
    if fields.matches(':').count() < 2 {
        return None;
    }
    let payload = hex::decode(payload_text.trim())?;
    Some(Rui3Event::Received { rssi, snr, payload })
}

/// ` RSSI -50, SNR 7` from the early format.
fn parse_early_meta(meta: &str) -> Option<(i16, i16)> {
    let mut rssi = None;
    let mut snr = None;
    for part in meta.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("RSSI") {
            rssi = v.trim().trim_start_matches(':').trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("SNR") {
            snr = v.trim().trim_start_matches(':').trim().parse().ok();
        }
    }
    Some((rssi?, snr?))
}

/// The first `major.minor.patch` in an `AT+VER=?` answer: `RUI_4.0.6_RAK3172-E` and
/// `3.2.0-p2_22q1_final.87` (early RUI3 builds) both read. `None` when there is none, or a
/// number does not fit; never panics.
pub fn firmware_version(text: &str) -> Option<[u16; 3]> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        // A run of digits and dots that does not continue an earlier one.
        if bytes[start].is_ascii_digit() && (start == 0 || bytes[start - 1] != b'.') {
            let end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .map_or(bytes.len(), |n| start + n);
            let parts: Vec<&str> = text[start..end].split('.').collect();
            if let [major, minor, patch, ..] = parts.as_slice()
                && let (Ok(major), Ok(minor), Ok(patch)) =
                    (major.parse(), minor.parse(), patch.parse())
            {
                return Some([major, minor, patch]);
            }
            start = end;
        } else {
            start += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(input: &[u8]) -> Vec<Rui3Event> {
        let mut p = Rui3Parser::new();
        let mut out = Vec::new();
        p.push(input, &mut out);
        out.retain(|e| !matches!(e, Rui3Event::Text(t) if t.starts_with("+EVT:RXP2P,")));
        out
    }

    #[test]
    fn status_lines_and_tx_done() {
        assert_eq!(
            parse(b"OK\r\nAT_BUSY_ERROR\r\n+EVT:TXP2P DONE\r\n+EVT:RXP2P RECEIVE TIMEOUT\r\n"),
            vec![
                Rui3Event::Ok,
                Rui3Event::Status(Rui3Status::Busy),
                Rui3Event::TxDone,
                Rui3Event::RxTimeout
            ]
        );
    }

    #[test]
    fn one_line_receive() {
        assert_eq!(
            parse(b"+EVT:RXP2P:-45:10:48656C6C6F\r\n"),
            vec![Rui3Event::Received {
                rssi: -45,
                snr: 10,
                payload: b"Hello".to_vec()
            }]
        );
    }

    #[test]
    fn clone_variant_with_length_field_takes_last_field() {
        assert_eq!(
            parse(b"+EVT:RXP2P:-101:-7:2:ABCD\r\n"),
            vec![Rui3Event::Received {
                rssi: -101,
                snr: -7,
                payload: vec![0xab, 0xcd]
            }]
        );
    }

    #[test]
    fn early_two_line_format() {
        assert_eq!(
            parse(b"+EVT:RXP2P, RSSI -60, SNR 5\r\n+EVT:0102\r\n"),
            vec![Rui3Event::Received {
                rssi: -60,
                snr: 5,
                payload: vec![1, 2]
            }]
        );
    }

    #[test]
    fn early_format_without_payload_is_reported_and_next_line_kept() {
        assert_eq!(
            parse(b"+EVT:RXP2P, RSSI -60, SNR 5\r\nOK\r\n"),
            vec![
                Rui3Event::Malformed(
                    "receive report (RSSI -60, SNR 5) without payload line".into()
                ),
                Rui3Event::Ok
            ]
        );
    }

    #[test]
    fn garbage_is_text_or_malformed() {
        assert_eq!(
            parse(b"+EVT:RXP2P:zz:1:00\r\n"),
            vec![Rui3Event::Malformed("+EVT:RXP2P:zz:1:00".into())]
        );
        assert_eq!(parse(b"\x01\x02junk\r\n").len(), 1);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..6)) {
            let mut p = Rui3Parser::new();
            let mut out = Vec::new();
            for c in &chunks { p.push(c, &mut out); }
        }

        #[test]
        fn event_like_lines_never_panic(body in "[-0-9A-Fa-f:, RSINX]{0,80}") {
            let mut p = Rui3Parser::new();
            let mut out = Vec::new();
            p.push(format!("+EVT:RXP2P{body}\r\n+EVT:{body}\r\n").as_bytes(), &mut out);
        }

        #[test]
        fn any_payload_round_trips(rssi in -150i16..0, snr in -30i16..30, payload in proptest::collection::vec(any::<u8>(), 1..250)) {
            let line = format!("+EVT:RXP2P:{rssi}:{snr}:{}\r\n", hex::encode(&payload));
            prop_assert_eq!(parse(line.as_bytes()), vec![Rui3Event::Received { rssi, snr, payload }]);
        }
    }

    #[test]
    fn firmware_versions_read_from_ver_answers() {
        assert_eq!(firmware_version("RUI_4.0.6_RAK3172-E"), Some([4, 0, 6]));
        assert_eq!(firmware_version("3.2.0-p2_22q1_final.87"), Some([3, 2, 0]));
        assert_eq!(
            firmware_version("AT+VER=RUI_4.1.10_RAK3172-T"),
            Some([4, 1, 10])
        );
        assert_eq!(firmware_version("V1.0.4"), Some([1, 0, 4]));
        for none in ["", "RUI", "4.0", "4..6", "99999.0.0", "."] {
            assert_eq!(firmware_version(none), None, "{none:?}");
        }
    }

    proptest! {
        #[test]
        fn firmware_version_never_panics(text in ".{0,64}") {
            let _ = firmware_version(&text);
        }
    }
}
