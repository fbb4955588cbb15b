//! A board running RNode firmware 1.74 (ESP32), as the RNode fact sheet describes its KISS
//! interface.
//!
//! On air the firmware prefixes every LoRa packet with one header byte (upper nibble a random
//! sequence number, bit 0 = "split": the host frame continues in the next packet), so host
//! frames of up to 508 bytes travel as one or two packets. The emulator does the same, which
//! is what makes an RNode and an AT module disagree by one byte on a shared channel.
//!
//! Listen-before-talk: the firmware does CSMA by itself. Before each packet it senses the
//! channel; while another frame is on air it waits a random slot of 24–100 ms and senses
//! again, so the host needs to do nothing.

use std::collections::VecDeque;

use std::time::Duration;

use lorabridge_hardware::Modulation;
use lorabridge_radio::backoff::random_between;
use lorabridge_radio::rnode::air::AIR_CHUNK;
use lorabridge_radio::rnode::cmd;
use lorabridge_radio::rnode::kiss::{self, KissDecoder, KissItem};

use super::{Effects, Personality, Reception};

/// Host frames the firmware queues while one is on air.
const TX_QUEUE: usize = 8;
/// The firmware chooses the preamble itself.
const PREAMBLE: u16 = cmd::MIN_PREAMBLE;
/// The CSMA slot: how long the firmware waits, at random between these, after finding the
/// channel busy.
const CSMA_SLOT: (Duration, Duration) = (Duration::from_millis(24), Duration::from_millis(100));

#[derive(Default)]
pub(crate) struct RnodeModule {
    frequency_hz: Option<u32>,
    bandwidth_hz: Option<u32>,
    power: Option<i8>,
    sf: Option<u8>,
    cr: Option<u8>,
    radio_on: bool,
    kiss: KissDecoder,
    /// Host frames waiting for the air (bounded by [`TX_QUEUE`]).
    queue: VecDeque<Vec<u8>>,
    /// Second half of a split frame, sent after the first.
    pending_half: Option<Vec<u8>>,
    transmitting: bool,
    /// Waiting out a CSMA slot: the channel was busy when a packet was due.
    deferring: bool,
    sequence: u8,
    /// First half of a split frame being received: (sequence nibble, bytes).
    partial: Option<(u8, Vec<u8>)>,
}

impl RnodeModule {
    fn modulation(&self) -> Option<Modulation> {
        Some(Modulation {
            frequency_hz: self.frequency_hz?,
            spreading_factor: self.sf?,
            bandwidth_hz: self.bandwidth_hz?,
            coding_rate: self.cr?,
            preamble_symbols: PREAMBLE,
            tx_power_dbm: self.power?,
            sync_word: 0x12,
        })
    }

    fn frame(&mut self, command: u8, p: &[u8], fx: &mut Effects) {
        let reply = |fx: &mut Effects, c: u8, v: &[u8]| fx.out.extend(kiss::encode(c, v));
        match (command, p) {
            (cmd::DETECT, [cmd::DETECT_REQ]) => reply(fx, cmd::DETECT, &[cmd::DETECT_RESP]),
            (cmd::FW_VERSION, _) => reply(fx, cmd::FW_VERSION, &[1, 74]),
            (cmd::PLATFORM, _) => reply(fx, cmd::PLATFORM, &[0x80]),
            (cmd::MCU, _) => reply(fx, cmd::MCU, &[0x81]),
            (cmd::FREQUENCY, [a, b, c, d]) => {
                let f = u32::from_be_bytes([*a, *b, *c, *d]);
                // Out-of-range values are not taken; the echo then shows what is set.
                if (137_000_000..=1_020_000_000).contains(&f) {
                    self.frequency_hz = Some(f);
                }
                reply(
                    fx,
                    cmd::FREQUENCY,
                    &self.frequency_hz.unwrap_or(0).to_be_bytes(),
                );
            }
            (cmd::BANDWIDTH, [a, b, c, d]) => {
                let bw = u32::from_be_bytes([*a, *b, *c, *d]);
                if (7_800..=1_625_000).contains(&bw) {
                    self.bandwidth_hz = Some(bw);
                }
                reply(
                    fx,
                    cmd::BANDWIDTH,
                    &self.bandwidth_hz.unwrap_or(0).to_be_bytes(),
                );
            }
            (cmd::TXPOWER, [p]) => {
                self.power = Some(*p as i8);
                reply(fx, cmd::TXPOWER, &[*p]);
            }
            (cmd::SF, [sf]) => {
                if (5..=12).contains(sf) {
                    self.sf = Some(*sf);
                }
                reply(fx, cmd::SF, &[self.sf.unwrap_or(0)]);
            }
            (cmd::CR, [cr]) => {
                if (5..=8).contains(cr) {
                    self.cr = Some(*cr);
                }
                reply(fx, cmd::CR, &[self.cr.unwrap_or(0)]);
            }
            (cmd::RADIO_STATE, [cmd::RADIO_QUERY]) => {
                reply(fx, cmd::RADIO_STATE, &[u8::from(self.radio_on)])
            }
            (cmd::RADIO_STATE, [state]) => {
                if *state == cmd::RADIO_ON && self.modulation().is_none() {
                    reply(fx, cmd::ERROR, &[1]); // radio initialisation failed: not configured
                } else {
                    self.radio_on = *state == cmd::RADIO_ON;
                }
                reply(fx, cmd::RADIO_STATE, &[u8::from(self.radio_on)]);
            }
            (cmd::LEAVE, _) => self.radio_on = false,
            (cmd::DATA, payload) if !payload.is_empty() => {
                if !self.radio_on || payload.len() > cmd::HOST_MTU {
                    reply(fx, cmd::ERROR, &[2]);
                } else if fx.take_busy() || self.queue.len() >= TX_QUEUE {
                    reply(fx, cmd::ERROR, &[4]);
                } else {
                    self.queue.push_back(payload.to_vec());
                    self.start_next(fx);
                }
            }
            _ => {}
        }
    }

    fn start_next(&mut self, fx: &mut Effects) {
        if self.transmitting || self.deferring {
            return;
        }
        let Some(m) = self.modulation() else { return };
        if self.pending_half.is_none() && self.queue.is_empty() {
            return;
        }
        if fx.channel_busy(&m) {
            self.deferring = true;
            fx.timer = Some(Some(random_between(CSMA_SLOT.0, CSMA_SLOT.1)));
            return;
        }
        let packet = if let Some(half) = self.pending_half.take() {
            half
        } else if let Some(frame) = self.queue.pop_front() {
            self.sequence = self.sequence.wrapping_add(1);
            let seq = (self.sequence & 0x0F) << 4;
            if frame.len() > AIR_CHUNK {
                let split = seq | 1;
                let mut second = vec![split];
                second.extend_from_slice(&frame[AIR_CHUNK..]);
                self.pending_half = Some(second);
                let mut first = vec![split];
                first.extend_from_slice(&frame[..AIR_CHUNK]);
                first
            } else {
                let mut p = vec![seq];
                p.extend_from_slice(&frame);
                p
            }
        } else {
            return;
        };
        self.transmitting = true;
        fx.transmit = Some((m, packet));
    }
}

impl Personality for RnodeModule {
    fn host(&mut self, bytes: &[u8], fx: &mut Effects) {
        let mut items = Vec::new();
        self.kiss.push(bytes, &mut items);
        for item in items {
            if let KissItem::Frame { cmd, payload } = item {
                self.frame(cmd, &payload, fx);
            }
        }
    }

    fn air(&mut self, rx: &Reception, fx: &mut Effects) {
        let Some((&header, body)) = rx.payload.split_first() else {
            return;
        };
        let payload = if header & 1 == 1 {
            match self.partial.take() {
                Some((seq, mut first)) if seq == header & 0xF0 => {
                    first.extend_from_slice(body);
                    first
                }
                _ => {
                    self.partial = Some((header & 0xF0, body.to_vec()));
                    return;
                }
            }
        } else {
            self.partial = None;
            body.to_vec()
        };
        if payload.is_empty() {
            return;
        }
        let rssi = (rx.rssi_dbm + cmd::RSSI_OFFSET).clamp(0, 255) as u8;
        let snr = (rx.snr_db * 4.0).round().clamp(-128.0, 127.0) as i8;
        fx.out.extend(kiss::encode(cmd::STAT_RSSI, &[rssi]));
        fx.out.extend(kiss::encode(cmd::STAT_SNR, &[snr as u8]));
        fx.out.extend(kiss::encode(cmd::DATA, &payload));
    }

    fn tx_done(&mut self, fx: &mut Effects) {
        self.transmitting = false;
        self.start_next(fx);
    }

    fn timer(&mut self, fx: &mut Effects) {
        // The slot is over: sense again.
        self.deferring = false;
        self.start_next(fx);
    }

    fn power_on(&mut self, fx: &mut Effects) {
        self.radio_on = false;
        self.transmitting = false;
        self.deferring = false;
        fx.timer = Some(None);
        self.queue.clear();
        self.pending_half = None;
        self.partial = None;
        self.kiss = KissDecoder::new();
    }

    fn listening(&self) -> Option<Modulation> {
        if self.radio_on && !self.transmitting {
            self.modulation()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{step, step_sensing};
    use super::super::{Faults, Reception};
    use super::*;
    use lorabridge_radio::rnode::parse::{RnodeEvent, RnodeParser};

    fn host(
        m: &mut RnodeModule,
        f: &Faults,
        frames: &[(u8, &[u8])],
    ) -> (Vec<RnodeEvent>, Option<Vec<u8>>) {
        let mut wire = Vec::new();
        for (c, p) in frames {
            wire.extend(kiss::encode(*c, p));
        }
        let (out, tx, _) = step(f, |fx| m.host(&wire, fx));
        let mut events = Vec::new();
        RnodeParser::new().push(&out, &mut events);
        (events, tx.map(|t| t.1))
    }

    #[test]
    fn configures_with_echoes_and_splits_long_frames_on_air() {
        let (mut m, f) = (RnodeModule::default(), Faults::default());
        let (ev, _) = host(
            &mut m,
            &f,
            &[(cmd::DETECT, &[cmd::DETECT_REQ]), (cmd::FW_VERSION, &[0])],
        );
        assert_eq!(
            ev,
            vec![
                RnodeEvent::Detected(true),
                RnodeEvent::FirmwareVersion(1, 74)
            ]
        );
        let (ev, _) = host(&mut m, &f, &[(cmd::RADIO_STATE, &[cmd::RADIO_ON])]);
        assert_eq!(
            ev,
            vec![RnodeEvent::Error(1), RnodeEvent::RadioState(0)],
            "not configured yet"
        );
        let (ev, _) = host(
            &mut m,
            &f,
            &[
                (cmd::FREQUENCY, &869_525_000u32.to_be_bytes()),
                (cmd::BANDWIDTH, &125_000u32.to_be_bytes()),
                (cmd::TXPOWER, &[14]),
                (cmd::SF, &[7]),
                (cmd::CR, &[5]),
                (cmd::RADIO_STATE, &[cmd::RADIO_ON]),
            ],
        );
        assert_eq!(ev.last(), Some(&RnodeEvent::RadioState(1)));
        let frame = vec![7u8; 300];
        let (_, first) = host(&mut m, &f, &[(cmd::DATA, &frame)]);
        let first = first.expect("on air");
        assert_eq!((first.len(), first[0] & 1), (255, 1));
        let (_, second, _) = step(&f, |fx| m.tx_done(fx));
        let second = second.expect("second half").1;
        assert_eq!((second.len(), second[0]), (300 - 254 + 1, first[0]));

        // Another RNode hears both halves and hands the host one frame.
        let mut other = RnodeModule::default();
        let rx = |p: Vec<u8>| Reception {
            payload: p,
            rssi_dbm: -80,
            snr_db: 2.5,
            modulation: m.modulation().expect("set"),
        };
        assert!(step(&f, |fx| other.air(&rx(first), fx)).0.is_empty());
        let (out, _, _) = step(&f, |fx| other.air(&rx(second), fx));
        let mut events = Vec::new();
        RnodeParser::new().push(&out, &mut events);
        assert_eq!(
            events,
            vec![RnodeEvent::Received {
                payload: frame,
                rssi: Some(-80),
                snr: Some(2.5)
            }]
        );
    }

    /// A configured module with its radio on.
    fn on_air() -> RnodeModule {
        let (mut m, f) = (RnodeModule::default(), Faults::default());
        host(
            &mut m,
            &f,
            &[
                (cmd::FREQUENCY, &869_525_000u32.to_be_bytes()),
                (cmd::BANDWIDTH, &125_000u32.to_be_bytes()),
                (cmd::TXPOWER, &[14]),
                (cmd::SF, &[7]),
                (cmd::CR, &[5]),
                (cmd::RADIO_STATE, &[cmd::RADIO_ON]),
            ],
        );
        m
    }

    #[test]
    fn csma_defers_a_random_slot_while_the_channel_is_busy() {
        let (mut m, f) = (on_air(), Faults::default());
        let wire = kiss::encode(cmd::DATA, b"hi");
        let (_, tx, timer) = step_sensing(&f, true, |fx| m.host(&wire, fx));
        assert_eq!(tx, None, "nothing on air while the channel is busy");
        let slot = timer.flatten().expect("a slot timer");
        assert!((CSMA_SLOT.0..=CSMA_SLOT.1).contains(&slot), "{slot:?}");
        assert!(m.listening().is_some(), "it keeps receiving while it waits");
        // Still busy when the slot ends: another slot.
        let (_, tx, timer) = step_sensing(&f, true, |fx| m.timer(fx));
        assert_eq!((tx, timer.flatten().is_some()), (None, true));
        // A second frame from the host waits its turn behind the first.
        let (_, tx, _) = step_sensing(&f, false, |fx| m.host(&kiss::encode(cmd::DATA, b"yo"), fx));
        assert_eq!(tx, None, "the slot is not cut short");
        let (_, tx, _) = step_sensing(&f, false, |fx| m.timer(fx));
        assert_eq!(tx.map(|t| t.1[1..].to_vec()), Some(b"hi".to_vec()));
    }
}
