//! Pure parser for RNode KISS output: bytes in, events out.

use super::cmd;
use super::kiss::{KissDecoder, KissItem};

/// One thing the RNode said.
#[derive(Clone, Debug, PartialEq)]
pub enum RnodeEvent {
    /// A received packet, with the RSSI/SNR reports that preceded it (if any).
    Received {
        payload: Vec<u8>,
        rssi: Option<i16>,
        snr: Option<f32>,
    },
    /// Answer to detect: `true` when the device said 0x46.
    Detected(bool),
    /// Firmware version, major and minor.
    FirmwareVersion(u8, u8),
    /// Platform byte (0x90 AVR, 0x80 ESP32, 0x70 nRF52).
    Platform(u8),
    /// MCU byte.
    Mcu(u8),
    /// Echoed frequency in Hz.
    Frequency(u32),
    /// Echoed bandwidth in Hz.
    Bandwidth(u32),
    /// Echoed transmit power in dBm.
    TxPower(i8),
    /// Echoed spreading factor.
    SpreadingFactor(u8),
    /// Echoed coding rate (5–8).
    CodingRate(u8),
    /// Echoed radio state (0 off, 1 on).
    RadioState(u8),
    /// Error report (1 radio init, 2 tx failed, 3 EEPROM locked, 4 queue full, 5 memory low,
    /// 6 modem timeout).
    Error(u8),
    /// The device is ready for the next packet.
    Ready,
    /// A known command whose payload has the wrong length.
    Malformed { cmd: u8, len: usize },
    /// A command we do not use (statistics, channel load, ...).
    Other { cmd: u8 },
    /// A frame over the size bound was dropped.
    Overlong,
    /// A frame with a broken escape was dropped.
    Corrupt,
}

/// Turns RNode serial output into [`RnodeEvent`]s.
///
/// Memory: one [`KissDecoder`] (≤ 1 KiB) and the last RSSI/SNR reports.
#[derive(Debug, Default)]
pub struct RnodeParser {
    kiss: KissDecoder,
    scratch: Vec<KissItem>,
    rssi: Option<i16>,
    snr: Option<f32>,
}

impl RnodeParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes from the port; appends events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<RnodeEvent>) {
        self.kiss.push(bytes, &mut self.scratch);
        let items = std::mem::take(&mut self.scratch);
        for item in &items {
            match item {
                KissItem::Overlong => out.push(RnodeEvent::Overlong),
                KissItem::Corrupt => out.push(RnodeEvent::Corrupt),
                KissItem::Frame { cmd, payload } => {
                    if let Some(ev) = self.frame(*cmd, payload) {
                        out.push(ev);
                    }
                }
            }
        }
        self.scratch = items;
        self.scratch.clear();
    }

    fn frame(&mut self, cmd: u8, p: &[u8]) -> Option<RnodeEvent> {
        let malformed = RnodeEvent::Malformed { cmd, len: p.len() };
        let u32_be = |p: &[u8]| -> Option<u32> { Some(u32::from_be_bytes(p.try_into().ok()?)) };
        let one = |p: &[u8]| -> Option<u8> { (p.len() == 1).then(|| p[0]) };
        Some(match cmd {
            cmd::DATA => {
                if p.is_empty() {
                    return Some(malformed);
                }
                RnodeEvent::Received {
                    payload: p.to_vec(),
                    rssi: self.rssi.take(),
                    snr: self.snr.take(),
                }
            }
            cmd::STAT_RSSI => {
                self.rssi = Some(i16::from(one(p)?) - cmd::RSSI_OFFSET);
                return None;
            }
            cmd::STAT_SNR => {
                self.snr = Some(f32::from(one(p)? as i8) * 0.25);
                return None;
            }
            cmd::DETECT => match one(p) {
                Some(b) => RnodeEvent::Detected(b == cmd::DETECT_RESP),
                None => malformed,
            },
            cmd::FW_VERSION => match p {
                [major, minor] => RnodeEvent::FirmwareVersion(*major, *minor),
                _ => malformed,
            },
            cmd::PLATFORM => one(p).map(RnodeEvent::Platform).unwrap_or(malformed),
            cmd::MCU => one(p).map(RnodeEvent::Mcu).unwrap_or(malformed),
            cmd::FREQUENCY => u32_be(p).map(RnodeEvent::Frequency).unwrap_or(malformed),
            cmd::BANDWIDTH => u32_be(p).map(RnodeEvent::Bandwidth).unwrap_or(malformed),
            cmd::TXPOWER => one(p)
                .map(|b| RnodeEvent::TxPower(b as i8))
                .unwrap_or(malformed),
            cmd::SF => one(p).map(RnodeEvent::SpreadingFactor).unwrap_or(malformed),
            cmd::CR => one(p).map(RnodeEvent::CodingRate).unwrap_or(malformed),
            cmd::RADIO_STATE => one(p).map(RnodeEvent::RadioState).unwrap_or(malformed),
            cmd::ERROR => one(p).map(RnodeEvent::Error).unwrap_or(malformed),
            cmd::READY => RnodeEvent::Ready,
            other => RnodeEvent::Other { cmd: other },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::kiss::encode;
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Vec<RnodeEvent> {
        let mut p = RnodeParser::new();
        let mut out = Vec::new();
        p.push(bytes, &mut out);
        out
    }

    #[test]
    fn rssi_and_snr_attach_to_the_next_packet_only() {
        let mut wire = encode(cmd::STAT_RSSI, &[100]);
        wire.extend(encode(cmd::STAT_SNR, &[(-10i8) as u8]));
        wire.extend(encode(cmd::DATA, b"hi"));
        wire.extend(encode(cmd::DATA, b"again"));
        assert_eq!(
            parse(&wire),
            vec![
                RnodeEvent::Received {
                    payload: b"hi".to_vec(),
                    rssi: Some(-57),
                    snr: Some(-2.5)
                },
                RnodeEvent::Received {
                    payload: b"again".to_vec(),
                    rssi: None,
                    snr: None
                }
            ]
        );
    }

    #[test]
    fn config_echoes_and_reports() {
        let mut wire = encode(cmd::DETECT, &[cmd::DETECT_RESP]);
        wire.extend(encode(cmd::FW_VERSION, &[1, 74]));
        wire.extend(encode(cmd::FREQUENCY, &869_525_000u32.to_be_bytes()));
        wire.extend(encode(cmd::BANDWIDTH, &[1, 2]));
        wire.extend(encode(cmd::ERROR, &[2]));
        assert_eq!(
            parse(&wire),
            vec![
                RnodeEvent::Detected(true),
                RnodeEvent::FirmwareVersion(1, 74),
                RnodeEvent::Frequency(869_525_000),
                RnodeEvent::Malformed {
                    cmd: cmd::BANDWIDTH,
                    len: 2
                },
                RnodeEvent::Error(2)
            ]
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..6)) {
            let mut p = RnodeParser::new();
            let mut out = Vec::new();
            for c in &chunks { p.push(c, &mut out); }
        }

        #[test]
        fn random_frames_never_panic(frames in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..20)) {
            let mut wire = Vec::new();
            for (c, p) in &frames { wire.extend(encode(*c, p)); }
            let _ = parse(&wire);
        }
    }
}
