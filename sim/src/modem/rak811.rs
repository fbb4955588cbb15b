//! A RAK811 with AT firmware v3.0.0.14, as its AT command manual describes it (P2P subset).

use lorabridge_hardware::Modulation;
use lorabridge_radio::at::{LineSplitter, Lines, hex};

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
    frequency_hz: u32,
    sf: u8,
    bw_index: u8,
    cr: u8,
    preamble: u16,
    power: i8,
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
            frequency_hz: 869_525_000,
            sf: 12,
            bw_index: 0,
            cr: 1,
            preamble: 8,
            power: 20,
            transfer_mode: 2,
            transmitting: false,
            lines: LineSplitter::new(),
        }
    }
}

impl Rak811Module {
    fn modulation(&self) -> Modulation {
        Modulation {
            frequency_hz: self.frequency_hz,
            spreading_factor: self.sf,
            bandwidth_hz: [125_000, 250_000, 500_000][usize::from(self.bw_index.min(2))],
            coding_rate: self.cr + 4,
            preamble_symbols: self.preamble,
            tx_power_dbm: self.power,
            sync_word: 0x12,
        }
    }

    fn set_lorap2p(&mut self, v: &str) -> bool {
        let parts: Vec<&str> = v.split(':').collect();
        let [f, sf, bw, cr, pre, pwr] = parts.as_slice() else {
            return false;
        };
        let (Ok(f), Ok(sf), Ok(bw), Ok(cr), Ok(pre), Ok(pwr)) = (
            f.parse::<u32>(),
            sf.parse::<u8>(),
            bw.parse::<u8>(),
            cr.parse::<u8>(),
            pre.parse::<u16>(),
            pwr.parse::<i8>(),
        ) else {
            return false;
        };
        let ok = (7..=12).contains(&sf)
            && bw <= 2
            && (1..=4).contains(&cr)
            && pre >= 5
            && (5..=20).contains(&pwr);
        if ok {
            (
                self.frequency_hz,
                self.sf,
                self.bw_index,
                self.cr,
                self.preamble,
                self.power,
            ) = (f, sf, bw, cr, pre, pwr);
        }
        ok
    }

    fn error(fx: &mut Effects, code: u16) {
        fx.line(&format!("ERROR: {code}"));
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
            fx.line(&format!("Bandwidth: {}", self.bw_index));
            fx.line(&format!("Codingrate: {}", self.cr));
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
        let mut items = Vec::new();
        self.lines.push(bytes, &mut items);
        for item in items {
            match item {
                Lines::Line(line) => self.command(&line, fx),
                Lines::Overlong => Self::error(fx, 87),
            }
        }
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
    use super::super::test_support::{step, text};
    use super::*;

    fn host(m: &mut Rak811Module, faults: &Faults, input: &str) -> String {
        text(&step(faults, |fx| m.host(input.as_bytes(), fx)).0)
    }

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
