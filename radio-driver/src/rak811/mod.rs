//! RAK811 modules with AT firmware v3.0.x in LoRa P2P mode.
//!
//! Exchange: `at+version` (detect) → `at+set_config=lora:work_mode:1` (the module reboots and
//! prints `Initialization OK`) → `at+set_config=lorap2p:<Hz>:<sf>:<bw 0/1/2>:<cr 1-4>:<pre>:<dBm>`
//! → `at+set_config=lorap2p:transfer_mode:1` (receive). A send switches to transfer mode 2,
//! sends `at+send=lorap2p:<hex>`, and switches back to receive. `ERROR: 80` (busy) is retried.

pub mod parse;

use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::time::Instant;

use crate::at::hex;
use crate::at_command::{
    self, AtDecoder, AtEvent, AtLink, AtParser, BusyRetry, command, greet, rejected, send_line,
};
use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::open_port::StepError;
use crate::{ModuleInfo, ModuleKind, RadioError};
pub use parse::{Rak811Error, Rak811Event, Rak811Parser};

/// Largest payload: lines are limited to 255 characters, `at+send=lorap2p:` takes 16 and the
/// line end 2, leaving 237 hex digits, so 118 bytes.
pub const MTU: usize = 118;

/// The firmware has no sync-word command; the SX1276 keeps its private default.
pub const SYNC_WORD: u8 = 0x12;

impl AtParser for Rak811Parser {
    type Event = Rak811Event;
    const MAX_TEXT_LINES: usize = 32;

    fn push(&mut self, bytes: &[u8], out: &mut Vec<Rak811Event>) {
        Rak811Parser::push(self, bytes, out)
    }

    fn sort(event: Rak811Event) -> AtEvent<Rak811Event> {
        match event {
            Rak811Event::Ok(info) => AtEvent::Ok(info),
            Rak811Event::Error(code) => AtEvent::Refused(code.describe()),
            Rak811Event::Text(t) => AtEvent::Text(t),
            Rak811Event::Received { rssi, snr, payload } => AtEvent::Frame { rssi, snr, payload },
            Rak811Event::Malformed(_) | Rak811Event::Overlong => AtEvent::Noise,
            other @ Rak811Event::Initialized => AtEvent::Other(other),
        }
    }

    fn is_busy(reply: &str) -> bool {
        reply == Rak811Error::Busy.describe()
    }
}

/// The RAK811 dialect (stateless between exchanges).
#[derive(Debug, Default)]
pub(crate) struct Rak811;

/// Runs a command, asking again while the module answers `ERROR: 80` (busy).
async fn command_retry_busy(
    link: &mut AtLink<Rak811Parser>,
    line: &str,
    timeout: Duration,
    cfg: &DriverConfig,
) -> Result<(), StepError> {
    let retry = BusyRetry {
        retries: cfg.busy_retries,
        pause: &|n| Duration::from_millis(50) * n,
        wait_with: None,
        clear: None,
    };
    at_command::command_retrying_busy(link, line, timeout, &retry).await?;
    Ok(())
}

/// Bandwidth index for `lorap2p`.
fn bandwidth_index(hz: u32) -> Option<u8> {
    match hz {
        125_000 => Some(0),
        250_000 => Some(1),
        500_000 => Some(2),
        _ => None,
    }
}

/// `lorap2p` parameters for a modulation (already checked).
pub fn lorap2p_params(m: &Modulation) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}",
        m.frequency_hz,
        m.spreading_factor,
        bandwidth_index(m.bandwidth_hz).unwrap_or(0),
        m.coding_rate - 4,
        m.preamble_symbols,
        m.tx_power_dbm
    )
}

impl Rak811 {
    /// The firmware version, which is also how the module is recognised.
    async fn version(
        link: &mut AtLink<Rak811Parser>,
        cfg: &DriverConfig,
    ) -> Result<String, StepError> {
        Ok(greet(link, "at+version", cfg.command_timeout).await?.info)
    }
}

impl Dialect for Rak811 {
    type Decoder = AtDecoder<Rak811Parser>;
    const KIND: ModuleKind = ModuleKind::Rak811;

    fn mtu(&self) -> usize {
        MTU
    }

    async fn detect(
        &mut self,
        link: &mut AtLink<Rak811Parser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let version = Self::version(link, cfg).await?;
        if !version.trim_start_matches('V').starts_with('3') {
            return Err(StepError::Radio(RadioError::Protocol(format!(
                "RAK811 firmware {version:?}: only the v3 AT command set is supported"
            ))));
        }
        Ok(())
    }

    async fn configure(
        &mut self,
        link: &mut AtLink<Rak811Parser>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let line = "at+set_config=lora:work_mode:1";
        send_line(link, line, cfg.command_timeout)
            .await
            .map_err(|e| StepError::port(e, line))?;
        // The module reboots and prints a banner ending in `Initialization OK`.
        let outcome = link
            .wait_for(Instant::now() + cfg.reset_timeout, |ev| match ev {
                AtEvent::Other(Rak811Event::Initialized) | AtEvent::Ok(_) => Some(Ok(())),
                AtEvent::Refused(reply) => Some(Err(reply)),
                _ => None,
            })
            .await
            .map_err(|e| StepError::port(e, line))?;
        outcome.map_err(|reply| rejected(line, reply))?;
        link.settle(Duration::from_millis(200))
            .await
            .map_err(|e| StepError::port(e, line))?;
        let t = cfg.command_timeout;
        let params = format!("at+set_config=lorap2p:{}", lorap2p_params(m));
        command_retry_busy(link, &params, t, cfg).await?;
        command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:1", t, cfg).await?;
        Ok(())
    }

    async fn transmit(
        &mut self,
        link: &mut AtLink<Rak811Parser>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let t = cfg.command_timeout;
        command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:2", t, cfg).await?;
        let line = format!("at+send=lorap2p:{}", hex::encode(frame));
        let sent = command_retry_busy(link, &line, cfg.tx_timeout, cfg).await;
        if !matches!(sent, Err(StepError::Port(..))) {
            command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:1", t, cfg).await?;
        }
        sent
    }

    async fn close(
        &mut self,
        _link: &mut AtLink<Rak811Parser>,
        _cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        // Nothing to switch off: in receive mode the module only listens.
        Ok(())
    }

    async fn probe(
        &mut self,
        link: &mut AtLink<Rak811Parser>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        let mut info = ModuleInfo::new(ModuleKind::Rak811, MTU);
        info.firmware = Some(Self::version(link, cfg).await?);
        let status = command(link, "at+get_config=lora:status", cfg.command_timeout).await?;
        let mut lines = status.texts;
        // The status listing continues after `OK`: collect what arrives in a short pause.
        let deadline = Instant::now() + Duration::from_millis(300);
        while let Ok(ev) = link.next_event(deadline).await {
            if let AtEvent::Text(t) = ev
                && lines.len() < Rak811Parser::MAX_TEXT_LINES
            {
                lines.push(t);
            }
        }
        lines.insert(0, status.info);
        for l in lines.iter().filter(|l| !l.is_empty()) {
            if let Some((k, v)) = l.split_once(':') {
                info.settings.insert(
                    k.trim().to_lowercase().replace(' ', "_"),
                    v.trim().to_string(),
                );
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lorap2p_uses_indexes() {
        let m = Modulation {
            frequency_hz: 869_525_000,
            spreading_factor: 12,
            bandwidth_hz: 250_000,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: 20,
            sync_word: 0x12,
        };
        assert_eq!(lorap2p_params(&m), "869525000:12:1:1:8:20");
        assert!(Rak811::check(&m).is_ok());
        assert!(
            Rak811::check(&Modulation {
                spreading_factor: 6,
                ..m
            })
            .is_err()
        );
    }
}
