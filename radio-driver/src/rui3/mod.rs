//! RAK3172 and other RUI3 modules in LoRa P2P mode.
//!
//! Exchange: `AT` (detect) → `AT+NWM=0` if not already in P2P mode (the module restarts) →
//! `AT+PRECV=0` → `AT+P2P=<Hz>:<sf>:<bw kHz>:<cr 0-3>:<preamble>:<dBm>` → `AT+PRECV=65534`
//! (continuous receive). A send stops the receiver first (`AT+PRECV=0`: the module answers
//! `AT_BUSY_ERROR` to `AT+PSEND` while it is armed), waits for `OK` and `+EVT:TXP2P DONE`, and
//! re-arms. A busy answer to the send itself is retried after stopping the receiver again.

pub mod parse;

use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::time::Instant;

use crate::at::hex;
use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::link::{Classified, Decode, Link, StepError};
use crate::{ModuleInfo, ModuleKind, RadioError};
pub use parse::{Rui3Event, Rui3Parser, Rui3Status};

/// Largest payload: the documented 500 hex digits, i.e. 250 bytes.
pub const MTU: usize = 250;

/// The only sync word the driver can set today: the module's private default. (`AT+SYNCWORD`
/// exists on RUI3 but its value format is not pinned down in our facts; not implemented.)
pub const SYNC_WORD: u8 = 0x12;

impl Decode for Rui3Parser {
    type Event = Rui3Event;
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Rui3Event>) {
        Rui3Parser::push(self, bytes, out)
    }
    fn classify(event: Rui3Event) -> Classified<Rui3Event> {
        match event {
            Rui3Event::Received { rssi, snr, payload } => Classified::Frame {
                payload,
                rssi: Some(rssi),
                snr: Some(f32::from(snr)),
            },
            Rui3Event::Malformed(_) | Rui3Event::Overlong => Classified::Noise,
            other => Classified::Event(other),
        }
    }
}

/// The RUI3 dialect's own state: whether continuous receive is armed.
#[derive(Debug, Default)]
pub(crate) struct Rui3 {
    rx_armed: bool,
}

/// Runs one command; returns the non-status lines before `OK` (query values).
async fn command(
    link: &mut Link<Rui3Parser>,
    line: &str,
    timeout: Duration,
) -> Result<Vec<String>, StepError> {
    link.clear_events();
    link.write(format!("{line}\r\n").as_bytes(), timeout)
        .await
        .map_err(|e| StepError::link_after(e, line, timeout))?;
    let deadline = Instant::now() + timeout;
    let mut texts = Vec::new();
    loop {
        match link
            .next_event(deadline)
            .await
            .map_err(|e| StepError::link_after(e, line, timeout))?
        {
            Rui3Event::Ok => return Ok(texts),
            Rui3Event::Status(s) => {
                return Err(StepError::Radio(RadioError::Rejected {
                    command: line.into(),
                    reply: s.as_str().into(),
                }));
            }
            Rui3Event::Text(t) if texts.len() < 16 => texts.push(t),
            _ => {}
        }
    }
}

fn is_busy(e: &StepError) -> bool {
    matches!(e, StepError::Radio(RadioError::Rejected { reply, .. }) if reply == Rui3Status::Busy.as_str())
}

/// The value of a query (`AT+X=?`): the last line, without an `AT+X=` prefix if echoed.
fn query_value(key: &str, lines: &[String]) -> Option<String> {
    let last = lines.iter().rev().find(|l| !l.is_empty())?;
    let prefix = format!("{key}=");
    Some(last.strip_prefix(&prefix).unwrap_or(last).to_string())
}

/// `AT+P2P` parameters for a modulation.
pub fn p2p_params(m: &Modulation) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}",
        m.frequency_hz,
        m.spreading_factor,
        m.bandwidth_hz / 1000,
        m.coding_rate - 5,
        m.preamble_symbols,
        m.tx_power_dbm
    )
}

impl Rui3 {
    async fn detect_once(link: &mut Link<Rui3Parser>, cfg: &DriverConfig) -> Result<(), StepError> {
        // The first `AT` may meet garbage left in the module's input buffer: try a few times.
        let mut last = None;
        for _ in 0..3 {
            match command(link, "AT", cfg.command_timeout).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(StepError::Radio(RadioError::Protocol(
            "no answer to AT".into(),
        ))))
    }
}

impl Dialect for Rui3 {
    type Decoder = Rui3Parser;
    const KIND: ModuleKind = ModuleKind::Rui3;
    const MTU: usize = MTU;

    async fn detect(
        &mut self,
        link: &mut Link<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        self.rx_armed = false;
        Self::detect_once(link, cfg).await
    }

    async fn configure(
        &mut self,
        link: &mut Link<Rui3Parser>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let t = cfg.command_timeout;
        let mode = command(link, "AT+NWM=?", t).await?;
        if query_value("AT+NWM", &mode).as_deref() != Some("0") {
            command(link, "AT+NWM=0", t).await?;
            // The module restarts into P2P mode: let the banner pass, then check it answers.
            link.settle(Duration::from_millis(300))
                .await
                .map_err(|e| StepError::link(e, "AT+NWM=0"))?;
            let deadline = Instant::now() + cfg.reset_timeout;
            while let Err(e) = Self::detect_once(link, cfg).await {
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
        }
        command(link, "AT+PRECV=0", t).await?;
        self.rx_armed = false;
        command(link, &format!("AT+P2P={}", p2p_params(m)), t).await?;
        command(link, "AT+PRECV=65534", t).await?;
        self.rx_armed = true;
        Ok(())
    }

    async fn transmit(
        &mut self,
        link: &mut Link<Rui3Parser>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let t = cfg.command_timeout;
        if self.rx_armed {
            command(link, "AT+PRECV=0", t).await?;
            self.rx_armed = false;
        }
        let line = format!("AT+PSEND={}", hex::encode(frame));
        let mut attempt = 0;
        let sent = loop {
            match command(link, &line, t).await {
                Err(e) if is_busy(&e) && attempt < cfg.busy_retries => {
                    attempt += 1;
                    link_stats_busy(link);
                    // Busy usually means the receiver is armed after all: stop it and retry.
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    command(link, "AT+PRECV=0", t).await?;
                }
                other => break other,
            }
        };
        let result = match sent {
            Ok(_) => link
                .wait_for(Instant::now() + cfg.tx_timeout, |ev| {
                    matches!(ev, Rui3Event::TxDone).then_some(())
                })
                .await
                .map_err(|e| StepError::link_after(e, "+EVT:TXP2P DONE", cfg.tx_timeout)),
            Err(e) => Err(e),
        };
        // Re-arm the receiver whatever happened to the send (unless the port is gone).
        if !matches!(result, Err(StepError::Link(..))) {
            command(link, "AT+PRECV=65534", t).await?;
            self.rx_armed = true;
        }
        result
    }

    async fn close(
        &mut self,
        link: &mut Link<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        command(link, "AT+PRECV=0", cfg.command_timeout).await?;
        self.rx_armed = false;
        Ok(())
    }

    async fn probe(
        &mut self,
        link: &mut Link<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        let t = cfg.command_timeout;
        Self::detect_once(link, cfg).await?;
        let mut info = ModuleInfo::new(ModuleKind::Rui3, MTU);
        info.firmware = query_value("AT+VER", &command(link, "AT+VER=?", t).await?);
        if let Some(mode) = query_value("AT+NWM", &command(link, "AT+NWM=?", t).await?) {
            let name = match mode.as_str() {
                "0" => "0 (LoRa P2P)",
                "1" => "1 (LoRaWAN)",
                "2" => "2 (FSK)",
                _ => mode.as_str(),
            };
            info.settings
                .insert("network_mode".into(), name.to_string());
            if mode == "0"
                && let Some(p2p) = query_value("AT+P2P", &command(link, "AT+P2P=?", t).await?)
            {
                describe_p2p(&p2p, &mut info);
            }
        }
        Ok(info)
    }
}

fn link_stats_busy(link: &Link<Rui3Parser>) {
    link.stats()
        .busy_retries
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Names the fields of an `AT+P2P` value for the probe report.
fn describe_p2p(value: &str, info: &mut ModuleInfo) {
    info.settings.insert("p2p".into(), value.to_string());
    let names = [
        "frequency_hz",
        "spreading_factor",
        "bandwidth_khz",
        "coding_rate_index",
        "preamble_symbols",
        "tx_power_dbm",
    ];
    for (name, v) in names.iter().zip(value.split(':')) {
        info.settings.insert((*name).to_string(), v.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eu() -> Modulation {
        Modulation {
            frequency_hz: 869_525_000,
            spreading_factor: 7,
            bandwidth_hz: 125_000,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: 14,
            sync_word: 0x12,
        }
    }

    #[test]
    fn p2p_parameters_use_khz_and_cr_index() {
        assert_eq!(p2p_params(&eu()), "869525000:7:125:0:8:14");
        assert!(Rui3::check(&eu()).is_ok());
        assert!(
            Rui3::check(&Modulation {
                bandwidth_hz: 62_500,
                ..eu()
            })
            .is_err()
        );
        assert!(
            Rui3::check(&Modulation {
                sync_word: 0x34,
                ..eu()
            })
            .is_err()
        );
    }

    #[test]
    fn query_values_with_and_without_echo() {
        assert_eq!(
            query_value("AT+NWM", &["AT+NWM=0".into()]).as_deref(),
            Some("0")
        );
        assert_eq!(query_value("AT+NWM", &["1".into()]).as_deref(), Some("1"));
        assert_eq!(query_value("AT+NWM", &[]), None);
    }
}
