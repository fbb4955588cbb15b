//! A RAK3172 with RUI3 firmware, as its AT command manual describes it (P2P subset).
//!
//! Listen-before-talk: firmware 4.0.6 and later has `AT+CAD=<0|1>` (query `AT+CAD=?`). With it
//! on, `AT+PSEND` first runs one channel activity detection; when that finds another frame on
//! air the send is refused with `AT_BUSY_ERROR` and nothing is transmitted (RUI3's P2P
//! service returns "busy" from the send when CAD detects activity), so the host must try
//! again later. Older firmware does not know the command.

use lorabridge_hardware::Modulation;
use lorabridge_radio::at::{LineSplitter, hex};

use super::at_firmware::{AtFirmware, P2pSettings};
use super::{Effects, Personality, Reception};

/// Receive mode after `AT+PRECV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rx {
    Off,
    /// 65534: until stopped.
    Continuous,
    /// 65535: until one packet.
    Single,
    /// 1–65533 ms: until one packet or the window closes (`+EVT:RXP2P RECEIVE TIMEOUT`).
    Window,
}

/// The first firmware with `AT+CAD`.
pub(crate) const FIRST_WITH_CAD: [u8; 3] = [4, 0, 6];

/// Settings kept in the module's flash (they survive a replug).
struct Flash {
    nwm: u8,
    /// Bandwidth in kHz, coding rate 0–3 for 4/5–4/8.
    p2p: P2pSettings,
    /// `AT+CAD`: sense the channel before every send.
    cad: bool,
}

pub(crate) struct Rui3Module {
    /// Firmware version (major, minor, patch).
    version: [u8; 3],
    flash: Flash,
    rx: Rx,
    transmitting: bool,
    lines: LineSplitter,
}

impl Default for Rui3Module {
    fn default() -> Self {
        Self::new(FIRST_WITH_CAD)
    }
}

impl Rui3Module {
    pub(crate) fn new(version: [u8; 3]) -> Self {
        Self {
            version,
            // As shipped: LoRaWAN mode, P2P defaults from the manual's example.
            flash: Flash {
                nwm: 1,
                p2p: P2pSettings {
                    frequency_hz: 868_000_000,
                    sf: 7,
                    bw: 125,
                    cr: 0,
                    preamble: 10,
                    power: 14,
                },
                cad: false,
            },
            rx: Rx::Off,
            transmitting: false,
            lines: LineSplitter::new(),
        }
    }

    fn has_cad(&self) -> bool {
        self.version >= FIRST_WITH_CAD
    }

    fn modulation(&self) -> Modulation {
        let p = &self.flash.p2p;
        p.modulation(p.bw * 1000, p.cr + 5)
    }

    /// Takes `AT+P2P` settings if the firmware accepts them.
    fn set_p2p(&mut self, v: &str) -> bool {
        let accepted = P2pSettings::parse(v).filter(|p| {
            (150_000_000..=960_000_000).contains(&p.frequency_hz)
                && (5..=12).contains(&p.sf)
                && [125, 250, 500].contains(&p.bw)
                && p.cr <= 3
                && p.preamble >= 5
                && (5..=22).contains(&p.power)
        });
        let Some(p) = accepted else {
            return false;
        };
        self.flash.p2p = p;
        true
    }
}

impl AtFirmware for Rui3Module {
    fn lines(&mut self) -> &mut LineSplitter {
        &mut self.lines
    }

    fn overlong(&mut self, fx: &mut Effects) {
        fx.line("AT_ERROR");
    }

    fn command(&mut self, line: &str, fx: &mut Effects) {
        let upper = line.to_ascii_uppercase();
        let (cmd, arg) = match upper.split_once('=') {
            Some((c, _)) => (c.to_string(), Some(line[c.len() + 1..].to_string())),
            None => (upper.clone(), None),
        };
        let p2p = self.flash.nwm == 0;
        match (cmd.as_str(), arg.as_deref()) {
            ("AT", None) => fx.line("OK"),
            ("AT+VER", Some("?")) => {
                let [major, minor, patch] = self.version;
                fx.line(&format!("AT+VER=RUI_{major}.{minor}.{patch}_RAK3172-E"));
                fx.line("OK");
            }
            ("AT+NWM", Some("?")) => {
                fx.line(&format!("AT+NWM={}", self.flash.nwm));
                fx.line("OK");
            }
            ("AT+NWM", Some(v)) => match v.parse::<u8>() {
                Ok(n) if n <= 2 => {
                    fx.line("OK");
                    if n != self.flash.nwm {
                        // Changing the work mode restarts the module.
                        self.flash.nwm = n;
                        self.power_on(fx);
                    }
                }
                _ => fx.line("AT_PARAM_ERROR"),
            },
            ("AT+P2P", Some("?")) if p2p => {
                fx.line(&format!("AT+P2P={}", self.flash.p2p.value()));
                fx.line("OK");
            }
            ("AT+P2P", Some(v)) if p2p => {
                if self.rx != Rx::Off || self.transmitting {
                    fx.line("AT_BUSY_ERROR");
                } else if self.set_p2p(v) {
                    fx.line("OK");
                } else {
                    fx.line("AT_PARAM_ERROR");
                }
            }
            ("AT+PRECV", Some(v)) if p2p => match v.parse::<u32>() {
                Ok(0) => {
                    self.rx = Rx::Off;
                    fx.timer = Some(None);
                    fx.line("OK");
                }
                Ok(65534) if !self.transmitting => {
                    self.rx = Rx::Continuous;
                    fx.line("OK");
                }
                Ok(65535) if !self.transmitting => {
                    self.rx = Rx::Single;
                    fx.line("OK");
                }
                Ok(ms @ 1..=65533) if !self.transmitting => {
                    self.rx = Rx::Window;
                    fx.timer = Some(Some(std::time::Duration::from_millis(u64::from(ms))));
                    fx.line("OK");
                }
                Ok(1..=65535) => fx.line("AT_BUSY_ERROR"),
                _ => fx.line("AT_PARAM_ERROR"),
            },
            ("AT+CAD", Some("?")) if p2p && self.has_cad() => {
                fx.line(&format!("AT+CAD={}", u8::from(self.flash.cad)));
                fx.line("OK");
            }
            ("AT+CAD", Some(v)) if p2p && self.has_cad() => match v {
                "0" | "1" => {
                    self.flash.cad = v == "1";
                    fx.line("OK");
                }
                _ => fx.line("AT_PARAM_ERROR"),
            },
            ("AT+PSEND", Some(v)) if p2p => {
                if fx.take_busy() || self.rx != Rx::Off || self.transmitting {
                    fx.line("AT_BUSY_ERROR");
                    return;
                }
                match hex::decode(v) {
                    Some(payload) if (1..=250).contains(&payload.len()) => {
                        let m = self.modulation();
                        if self.flash.cad && fx.channel_busy(&m) {
                            // CAD found a frame on air: refused, nothing sent.
                            fx.line("AT_BUSY_ERROR");
                            return;
                        }
                        fx.line("OK");
                        self.transmitting = true;
                        fx.transmit = Some((m, payload));
                    }
                    _ => fx.line("AT_PARAM_ERROR"),
                }
            }
            ("AT+CAD", _) if self.has_cad() => fx.line("AT_MODE_NO_SUPPORT"),
            ("AT+P2P" | "AT+PRECV" | "AT+PSEND", _) => fx.line("AT_MODE_NO_SUPPORT"),
            _ => fx.line("AT_ERROR"),
        }
    }
}

impl Personality for Rui3Module {
    fn host(&mut self, bytes: &[u8], fx: &mut Effects) {
        self.read_commands(bytes, fx);
    }

    fn air(&mut self, rx: &Reception, fx: &mut Effects) {
        if self.rx == Rx::Off {
            return;
        }
        let snr = rx.snr_db.round() as i32;
        let data = hex::encode(&rx.payload);
        if fx.two_line_rx() {
            fx.line(&format!("+EVT:RXP2P, RSSI {}, SNR {snr}", rx.rssi_dbm));
            fx.line(&format!("+EVT:{data}"));
        } else {
            fx.line(&format!("+EVT:RXP2P:{}:{snr}:{data}", rx.rssi_dbm));
        }
        if matches!(self.rx, Rx::Single | Rx::Window) {
            self.rx = Rx::Off;
            fx.timer = Some(None);
        }
    }

    fn tx_done(&mut self, fx: &mut Effects) {
        self.transmitting = false;
        fx.line("+EVT:TXP2P DONE");
    }

    fn timer(&mut self, fx: &mut Effects) {
        if self.rx == Rx::Window {
            self.rx = Rx::Off;
            fx.line("+EVT:RXP2P RECEIVE TIMEOUT");
        }
    }

    fn power_on(&mut self, fx: &mut Effects) {
        self.rx = Rx::Off;
        fx.timer = Some(None);
        self.transmitting = false;
        self.lines = LineSplitter::new();
        fx.line("RAKwireless RAK3172-E Example");
        fx.line("------------------------------------------------------");
        fx.line(if self.flash.nwm == 0 {
            "Current Work Mode: LoRa P2P."
        } else {
            "Current Work Mode: LoRaWAN."
        });
    }

    fn listening(&self) -> Option<Modulation> {
        (self.flash.nwm == 0 && self.rx != Rx::Off && !self.transmitting).then(|| self.modulation())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Faults;
    use super::super::at_firmware::test_support::host;
    use super::super::test_support::{step, step_sensing, text};
    use super::*;

    #[test]
    fn p2p_commands_need_p2p_mode_and_psend_is_busy_while_receiving() {
        let (mut m, f) = (Rui3Module::default(), Faults::default());
        assert_eq!(
            host(&mut m, &f, "AT+PSEND=00\r\n"),
            "AT_MODE_NO_SUPPORT\r\n"
        );
        assert!(host(&mut m, &f, "AT+NWM=0\r\n").starts_with("OK\r\nRAKwireless"));
        assert_eq!(
            host(&mut m, &f, "AT+P2P=869525000:7:125:0:8:14\r\n"),
            "OK\r\n"
        );
        assert_eq!(
            host(&mut m, &f, "AT+P2P=869525000:7:62:0:8:14\r\n"),
            "AT_PARAM_ERROR\r\n"
        );
        assert_eq!(host(&mut m, &f, "AT+PRECV=65534\r\n"), "OK\r\n");
        assert_eq!(host(&mut m, &f, "AT+PSEND=00\r\n"), "AT_BUSY_ERROR\r\n");
        assert_eq!(
            host(&mut m, &f, "AT+PRECV=0\r\nAT+PSEND=0102\r\n"),
            "OK\r\nOK\r\n"
        );
        assert_eq!(text(&step(&f, |fx| m.tx_done(fx)).0), "+EVT:TXP2P DONE\r\n");
        assert_eq!(host(&mut m, &f, "AT+BOGUS\r\n"), "AT_ERROR\r\n");
    }

    #[test]
    fn receive_window_closes_with_a_timeout_event() {
        let (mut m, f) = (Rui3Module::default(), Faults::default());
        host(&mut m, &f, "AT+NWM=0\r\n");
        let (out, _, timer) = step(&f, |fx| m.host(b"AT+PRECV=100\r\n", fx));
        assert_eq!(
            (text(&out).as_str(), timer),
            ("OK\r\n", Some(Some(std::time::Duration::from_millis(100))))
        );
        assert!(m.listening().is_some());
        assert_eq!(
            text(&step(&f, |fx| m.timer(fx)).0),
            "+EVT:RXP2P RECEIVE TIMEOUT\r\n"
        );
        assert!(m.listening().is_none());
    }

    /// A module in P2P mode, receiver off, with `version`.
    fn p2p(version: [u8; 3], f: &Faults) -> Rui3Module {
        let mut m = Rui3Module::new(version);
        host(&mut m, f, "AT+NWM=0\r\n");
        m
    }

    #[test]
    fn cad_is_known_from_4_0_6_and_kept_in_flash() {
        let f = Faults::default();
        let mut old = p2p([4, 0, 5], &f);
        assert_eq!(host(&mut old, &f, "AT+CAD=1\r\n"), "AT_ERROR\r\n");
        assert_eq!(
            host(&mut old, &f, "AT+VER=?\r\n"),
            "AT+VER=RUI_4.0.5_RAK3172-E\r\nOK\r\n"
        );
        let mut m = p2p([4, 1, 0], &f);
        assert_eq!(host(&mut m, &f, "AT+CAD=?\r\n"), "AT+CAD=0\r\nOK\r\n");
        assert_eq!(host(&mut m, &f, "AT+CAD=2\r\n"), "AT_PARAM_ERROR\r\n");
        assert_eq!(host(&mut m, &f, "AT+CAD=1\r\n"), "OK\r\n");
        step(&f, |fx| m.power_on(fx));
        assert_eq!(host(&mut m, &f, "AT+CAD=?\r\n"), "AT+CAD=1\r\nOK\r\n");
    }

    #[test]
    fn with_cad_a_send_on_a_busy_channel_is_refused_and_nothing_goes_on_air() {
        let f = Faults::default();
        let mut m = p2p(FIRST_WITH_CAD, &f);
        // CAD off: the module sends over whatever is on air.
        let (out, tx, _) = step_sensing(&f, true, |fx| m.host(b"AT+PSEND=01\r\n", fx));
        assert_eq!((text(&out).as_str(), tx.is_some()), ("OK\r\n", true));
        step(&f, |fx| m.tx_done(fx));
        host(&mut m, &f, "AT+CAD=1\r\n");
        let (out, tx, _) = step_sensing(&f, true, |fx| m.host(b"AT+PSEND=02\r\n", fx));
        assert_eq!((text(&out).as_str(), tx), ("AT_BUSY_ERROR\r\n", None));
        assert!(!m.transmitting, "a refused send leaves the radio free");
        let (out, tx, _) = step_sensing(&f, false, |fx| m.host(b"AT+PSEND=03\r\n", fx));
        assert_eq!(text(&out), "OK\r\n");
        assert_eq!(tx.map(|t| t.1), Some(vec![3]));
    }
}
