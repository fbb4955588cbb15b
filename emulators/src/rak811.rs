//! A RAK811 with AT firmware v3.0.0.14, as its AT command manual describes it (P2P subset).

use lorabridge_hardware::Modulation;
use lorabridge_radio::at::{LineSplitter, hex};

use super::at_firmware::{AtFirmware, P2pSettings};
use super::{Effects, Personality, Reception};
#[cfg(test)]
use std::sync::atomic::Ordering;

/// Longest command line the firmware accepts, in characters.
const MAX_LINE: usize = 255;
/// Largest P2P payload (what fits in a 255-character line).
const MAX_PAYLOAD: usize = 118;

pub(crate) struct Rak811Module {
    /// 0 LoRaWAN, 1 P2P (kept in flash).
    work_mode: u8,
    /// Bandwidth as an index (0 125 kHz, 1 250 kHz, 2 500 kHz), coding rate 1–4 for 4/5–4/8.
    p2p: P2pSettings,
    /// 1 receive, 2 send.
    transfer_mode: u8,
    transmitting: bool,
    lines: LineSplitter,
}

impl Default for Rak811Module {
    fn default() -> Self {
        // The manual's defaults: 869525000:12:0:1:8:20, transfer mode 2 (send).
        Self {
            work_mode: 0,
            p2p: P2pSettings {
                frequency_hz: 869_525_000,
                sf: 12,
                bw: 0,
                cr: 1,
                preamble: 8,
                power: 20,
            },
            transfer_mode: 2,
            transmitting: false,
            lines: LineSplitter::new(),
        }
    }
}

impl Rak811Module {
    fn modulation(&self) -> Modulation {
        let p = &self.p2p;
        let bandwidth_hz = [125_000, 250_000, 500_000][p.bw.min(2) as usize];
        p.modulation(bandwidth_hz, p.cr + 4)
    }

    /// Takes `lorap2p` settings if the firmware accepts them.
    fn set_lorap2p(&mut self, v: &str) -> bool {
        let accepted = P2pSettings::parse(v).filter(|p| {
            (7..=12).contains(&p.sf)
                && p.bw <= 2
                && (1..=4).contains(&p.cr)
                && p.preamble >= 5
                && (5..=20).contains(&p.power)
        });
        let Some(p) = accepted else {
            return false;
        };
        self.p2p = p;
        true
    }

    fn error(fx: &mut Effects, code: u16) {
        fx.line(&format!("ERROR: {code}"));
    }
}

impl AtFirmware for Rak811Module {
    fn lines(&mut self) -> &mut LineSplitter {
        &mut self.lines
    }

    fn overlong(&mut self, fx: &mut Effects) {
        Self::error(fx, 87);
    }

    fn command(&mut self, line: &str, fx: &mut Effects) {
        if line.len() > MAX_LINE {
            return Self::error(fx, 87);
        }
        let p2p = self.work_mode == 1;
        if line == "at+version" {
            fx.line("OK V3.0.0.14.H");
        } else if let Some(mode) = line.strip_prefix("at+set_config=lora:work_mode:") {
            match mode {
                "0" | "1" => {
                    self.work_mode = if mode == "1" { 1 } else { 0 };
                    self.power_on(fx);
                }
                _ => Self::error(fx, 2),
            }
        } else if let Some(mode) = line.strip_prefix("at+set_config=lorap2p:transfer_mode:") {
            match mode {
                _ if !p2p => Self::error(fx, 81),
                _ if self.transmitting => Self::error(fx, 80),
                "1" | "2" => {
                    self.transfer_mode = if mode == "1" { 1 } else { 2 };
                    fx.line("OK");
                }
                _ => Self::error(fx, 2),
            }
        } else if let Some(params) = line.strip_prefix("at+set_config=lorap2p:") {
            if !p2p {
                Self::error(fx, 81)
            } else if self.transmitting {
                Self::error(fx, 80)
            } else if self.set_lorap2p(params) {
                fx.line("OK")
            } else {
                Self::error(fx, 2)
            }
        } else if let Some(data) = line.strip_prefix("at+send=lorap2p:") {
            if !p2p || self.transfer_mode != 2 {
                return Self::error(fx, 81);
            }
            if fx.take_busy() || self.transmitting {
                return Self::error(fx, 80);
            }
            match hex::decode(data) {
                Some(p) if p.len() > MAX_PAYLOAD => Self::error(fx, 87),
                Some(p) if !p.is_empty() => {
                    // `OK` follows when the frame has been sent.
                    self.transmitting = true;
                    fx.transmit = Some((self.modulation(), p));
                }
                _ => Self::error(fx, 2),
            }
        } else if line == "at+get_config=lora:status" {
            let m = self.modulation();
            fx.line(if p2p {
                "OK Work Mode: LoRaP2P"
            } else {
                "OK Work Mode: LoRaWAN"
            });
            fx.line(&format!("Frequency: {}", m.frequency_hz));
            fx.line(&format!("Spreadfact: {}", m.spreading_factor));
            fx.line(&format!("Bandwidth: {}", self.p2p.bw));
            fx.line(&format!("Codingrate: {}", self.p2p.cr));
            fx.line(&format!("Preamlen: {}", m.preamble_symbols));
            fx.line(&format!("Powerdbm: {}", m.tx_power_dbm));
            fx.line(&format!("Transfer mode: {}", self.transfer_mode));
        } else {
            Self::error(fx, 1);
        }
    }
}

impl Personality for Rak811Module {
    fn host(&mut self, bytes: &[u8], fx: &mut Effects) {
        self.read_commands(bytes, fx);
    }

    fn air(&mut self, rx: &Reception, fx: &mut Effects) {
        let snr = rx.snr_db.round() as i32;
        fx.line(&format!(
            "at+recv={},{snr},{}:{}",
            rx.rssi_dbm,
            rx.payload.len(),
            hex::encode(&rx.payload)
        ));
    }

    fn tx_done(&mut self, fx: &mut Effects) {
        self.transmitting = false;
        fx.line("OK");
    }

    fn power_on(&mut self, fx: &mut Effects) {
        self.transmitting = false;
        self.transfer_mode = 2;
        self.lines = LineSplitter::new();
        fx.line("UART1 work mode: RUI_UART_NORMAL");
        fx.line(if self.work_mode == 1 {
            "Current work_mode:P2P"
        } else {
            "Current work_mode:LoRaWAN"
        });
        fx.line("Initialization OK");
    }

    fn listening(&self) -> Option<Modulation> {
        (self.work_mode == 1 && self.transfer_mode == 1 && !self.transmitting)
            .then(|| self.modulation())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Faults;
    use super::super::at_firmware::test_support::host;
    use super::super::test_support::{step, text};
    use super::*;

    #[test]
    fn error_codes_follow_the_manual() {
        let (mut m, f) = (Rak811Module::default(), Faults::default());
        assert_eq!(host(&mut m, &f, "at+send=lorap2p:00\r\n"), "ERROR: 81\r\n");
        assert!(
            host(&mut m, &f, "at+set_config=lora:work_mode:1\r\n")
                .ends_with("Initialization OK\r\n")
        );
        assert_eq!(
            host(&mut m, &f, "at+set_config=lorap2p:869525000:6:0:1:8:20\r\n"),
            "ERROR: 2\r\n"
        );
        assert_eq!(host(&mut m, &f, "at+nonsense\r\n"), "ERROR: 1\r\n");
        let long = format!("at+send=lorap2p:{}\r\n", "00".repeat(119));
        assert_eq!(host(&mut m, &f, &long), "ERROR: 87\r\n");
        f.busy.store(1, Ordering::SeqCst);
        assert_eq!(host(&mut m, &f, "at+send=lorap2p:00\r\n"), "ERROR: 80\r\n");
        let (out, tx, _) = step(&f, |fx| m.host(b"at+send=lorap2p:0102\r\n", fx));
        assert_eq!(
            (out.len(), tx.map(|t| t.1)),
            (0, Some(vec![1, 2])),
            "OK comes when sent"
        );
        assert_eq!(text(&step(&f, |fx| m.tx_done(fx)).0), "OK\r\n");
    }
}
