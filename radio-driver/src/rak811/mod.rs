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
use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::link::{Classified, Decode, Link, StepError};
use crate::{ModuleInfo, ModuleKind, RadioError};
pub use parse::{Rak811Error, Rak811Event, Rak811Parser};

/// Largest payload: lines are limited to 255 characters, `at+send=lorap2p:` takes 16 and the
/// line end 2, leaving 237 hex digits, so 118 bytes.
pub const MTU: usize = 118;

/// The firmware has no sync-word command; the SX1276 keeps its private default.
pub const SYNC_WORD: u8 = 0x12;

impl Decode for Rak811Parser {
    type Event = Rak811Event;
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Rak811Event>) {
        Rak811Parser::push(self, bytes, out)
    }
    fn classify(event: Rak811Event) -> Classified<Rak811Event> {
        match event {
            Rak811Event::Received { rssi, snr, payload } => Classified::Frame {
                payload,
                rssi: Some(rssi),
                snr: Some(f32::from(snr)),
            },
            Rak811Event::Malformed(_) | Rak811Event::Overlong => Classified::Noise,
            other => Classified::Event(other),
        }
    }
}

/// The RAK811 dialect (stateless between exchanges).
#[derive(Debug, Default)]
pub(crate) struct Rak811;

/// Runs one command; returns the information after `OK`, plus any text lines before it.
async fn command(
    link: &mut Link<Rak811Parser>,
    line: &str,
    timeout: Duration,
) -> Result<(String, Vec<String>), StepError> {
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
            Rak811Event::Ok(info) => return Ok((info, texts)),
            Rak811Event::Error(code) => {
                return Err(StepError::Radio(RadioError::Rejected {
                    command: line.into(),
                    reply: code.describe(),
                }));
            }
            Rak811Event::Text(t) if texts.len() < 32 => texts.push(t),
            _ => {}
        }
    }
}

/// Runs a command, retrying while the module answers `ERROR: 80` (busy).
async fn command_retry_busy(
    link: &mut Link<Rak811Parser>,
    line: &str,
    cfg: &DriverConfig,
) -> Result<String, StepError> {
    let mut attempt = 0;
    loop {
        match command(link, line, cfg.command_timeout).await {
            Ok((info, _)) => return Ok(info),
            Err(StepError::Radio(RadioError::Rejected { reply, .. }))
                if reply == Rak811Error::Busy.describe() && attempt < cfg.busy_retries =>
            {
                attempt += 1;
                link.stats()
                    .busy_retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
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
    async fn version(
        link: &mut Link<Rak811Parser>,
        cfg: &DriverConfig,
    ) -> Result<String, StepError> {
        let mut last = None;
        for _ in 0..3 {
            match command(link, "at+version", cfg.command_timeout).await {
                Ok((info, _)) => return Ok(info),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(StepError::Radio(RadioError::Protocol(
            "no answer to at+version".into(),
        ))))
    }
}

impl Dialect for Rak811 {
    type Decoder = Rak811Parser;
    const KIND: ModuleKind = ModuleKind::Rak811;
    const MTU: usize = MTU;

    async fn detect(
        &mut self,
        link: &mut Link<Rak811Parser>,
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
        link: &mut Link<Rak811Parser>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let line = "at+set_config=lora:work_mode:1";
        link.clear_events();
        link.write(format!("{line}\r\n").as_bytes(), cfg.command_timeout)
            .await
            .map_err(|e| StepError::link(e, line))?;
        // The module reboots and prints a banner ending in `Initialization OK`.
        let outcome = link
            .wait_for(Instant::now() + cfg.reset_timeout, |ev| match ev {
                Rak811Event::Initialized | Rak811Event::Ok(_) => Some(Ok(())),
                Rak811Event::Error(code) => Some(Err(code)),
                _ => None,
            })
            .await
            .map_err(|e| StepError::link(e, line))?;
        if let Err(code) = outcome {
            return Err(StepError::Radio(RadioError::Rejected {
                command: line.into(),
                reply: code.describe(),
            }));
        }
        link.settle(Duration::from_millis(200))
            .await
            .map_err(|e| StepError::link(e, line))?;
        command_retry_busy(
            link,
            &format!("at+set_config=lorap2p:{}", lorap2p_params(m)),
            cfg,
        )
        .await?;
        command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:1", cfg).await?;
        Ok(())
    }

    async fn transmit(
        &mut self,
        link: &mut Link<Rak811Parser>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:2", cfg).await?;
        let line = format!("at+send=lorap2p:{}", hex::encode(frame));
        let mut send_cfg = cfg.clone();
        send_cfg.command_timeout = cfg.tx_timeout;
        let sent = command_retry_busy(link, &line, &send_cfg).await;
        if !matches!(sent, Err(StepError::Link(..))) {
            command_retry_busy(link, "at+set_config=lorap2p:transfer_mode:1", cfg).await?;
        }
        sent.map(|_| ())
    }

    async fn close(
        &mut self,
        _link: &mut Link<Rak811Parser>,
        _cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        // Nothing to switch off: in receive mode the module only listens.
        Ok(())
    }

    async fn probe(
        &mut self,
        link: &mut Link<Rak811Parser>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        let mut info = ModuleInfo::new(ModuleKind::Rak811, MTU);
        info.firmware = Some(Self::version(link, cfg).await?);
        let (first, mut lines) =
            command(link, "at+get_config=lora:status", cfg.command_timeout).await?;
        // The status listing continues after `OK`: collect what arrives in a short pause.
        let deadline = Instant::now() + Duration::from_millis(300);
        while let Ok(ev) = link.next_event(deadline).await {
            if let Rak811Event::Text(t) = ev
                && lines.len() < 32
            {
                lines.push(t);
            }
        }
        lines.insert(0, first);
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
