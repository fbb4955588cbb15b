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
use crate::at_command::{
    AtDecoder, AtEvent, AtLink, AtParser, BusyRetry, RetryError, command, command_retrying_busy,
    greet,
};
use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::link::StepError;
use crate::{ModuleInfo, ModuleKind};
pub use parse::{Rui3Event, Rui3Parser, Rui3Status};

/// Largest payload: the documented 500 hex digits, i.e. 250 bytes.
pub const MTU: usize = 250;

/// The only sync word the driver can set today: the module's private default. (`AT+SYNCWORD`
/// exists on RUI3 but its value format is not pinned down in our facts; not implemented.)
pub const SYNC_WORD: u8 = 0x12;

impl AtParser for Rui3Parser {
    type Event = Rui3Event;
    const MAX_TEXT_LINES: usize = 16;

    fn push(&mut self, bytes: &[u8], out: &mut Vec<Rui3Event>) {
        Rui3Parser::push(self, bytes, out)
    }

    fn sort(event: Rui3Event) -> AtEvent<Rui3Event> {
        match event {
            Rui3Event::Ok => AtEvent::Ok(String::new()),
            Rui3Event::Status(s) => AtEvent::Refused(s.as_str().into()),
            Rui3Event::Text(t) => AtEvent::Text(t),
            Rui3Event::Received { rssi, snr, payload } => AtEvent::Frame { rssi, snr, payload },
            Rui3Event::Malformed(_) | Rui3Event::Overlong => AtEvent::Noise,
            other @ (Rui3Event::TxDone | Rui3Event::RxTimeout | Rui3Event::RxError) => {
                AtEvent::Other(other)
            }
        }
    }

    fn is_busy(reply: &str) -> bool {
        reply == Rui3Status::Busy.as_str()
    }
}

/// The RUI3 dialect's own state: whether continuous receive is armed.
#[derive(Debug, Default)]
pub(crate) struct Rui3 {
    rx_armed: bool,
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
    /// Checks that the module answers at all.
    async fn detect_once(
        link: &mut AtLink<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        greet(link, "AT", cfg.command_timeout).await?;
        Ok(())
    }
}

/// Asks for a setting (`AT+X=?`) and returns its value.
async fn query(
    link: &mut AtLink<Rui3Parser>,
    key: &str,
    timeout: Duration,
) -> Result<Option<String>, StepError> {
    let answer = command(link, &format!("{key}=?"), timeout).await?;
    Ok(query_value(key, &answer.texts))
}

impl Dialect for Rui3 {
    type Decoder = AtDecoder<Rui3Parser>;
    const KIND: ModuleKind = ModuleKind::Rui3;

    fn mtu(&self) -> usize {
        MTU
    }

    async fn detect(
        &mut self,
        link: &mut AtLink<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        self.rx_armed = false;
        Self::detect_once(link, cfg).await
    }

    async fn configure(
        &mut self,
        link: &mut AtLink<Rui3Parser>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let t = cfg.command_timeout;
        if query(link, "AT+NWM", t).await?.as_deref() != Some("0") {
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
        link: &mut AtLink<Rui3Parser>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let t = cfg.command_timeout;
        if self.rx_armed {
            command(link, "AT+PRECV=0", t).await?;
            self.rx_armed = false;
        }
        let line = format!("AT+PSEND={}", hex::encode(frame));
        let retry = BusyRetry {
            retries: cfg.busy_retries,
            pause: Duration::from_millis(20),
            // Busy usually means the receiver is armed after all: stop it and retry.
            clear: Some("AT+PRECV=0"),
        };
        let result = match command_retrying_busy(link, &line, t, &retry).await {
            Ok(_) => link
                .wait_for(Instant::now() + cfg.tx_timeout, |ev| {
                    matches!(ev, AtEvent::Other(Rui3Event::TxDone)).then_some(())
                })
                .await
                .map_err(|e| StepError::link_after(e, "+EVT:TXP2P DONE", cfg.tx_timeout)),
            Err(RetryError::Command(e)) => Err(e),
            // The receiver would not stop: give up without re-arming it.
            Err(RetryError::Clear(e)) => return Err(e),
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
        link: &mut AtLink<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        command(link, "AT+PRECV=0", cfg.command_timeout).await?;
        self.rx_armed = false;
        Ok(())
    }

    async fn probe(
        &mut self,
        link: &mut AtLink<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        let t = cfg.command_timeout;
        Self::detect_once(link, cfg).await?;
        let mut info = ModuleInfo::new(ModuleKind::Rui3, MTU);
        info.firmware = query(link, "AT+VER", t).await?;
        if let Some(mode) = query(link, "AT+NWM", t).await? {
            let name = match mode.as_str() {
                "0" => "0 (LoRa P2P)",
                "1" => "1 (LoRaWAN)",
                "2" => "2 (FSK)",
                _ => mode.as_str(),
            };
            info.settings
                .insert("network_mode".into(), name.to_string());
            if mode == "0"
                && let Some(p2p) = query(link, "AT+P2P", t).await?
            {
                describe_p2p(&p2p, &mut info);
            }
        }
        Ok(info)
    }
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
            spreading_factor: 7,
            ..Modulation::eu868_default()
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
