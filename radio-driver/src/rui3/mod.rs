//! RAK3172 and other RUI3 modules in LoRa P2P mode.
//!
//! Exchange: `AT` (detect) → `AT+NWM=0` if not already in P2P mode (the module restarts) →
//! `AT+PRECV=0` → `AT+VER=?`, then `AT+CAD=1` on 4.0.6 and later →
//! `AT+P2P=<Hz>:<sf>:<bw kHz>:<cr 0-3>:<preamble>:<dBm>` → `AT+PRECV=65534` (continuous
//! receive). A send stops the receiver first (`AT+PRECV=0`: the module answers
//! `AT_BUSY_ERROR` to `AT+PSEND` while it is armed), waits for `OK` and `+EVT:TXP2P DONE`, and
//! re-arms. A busy answer to the send itself is retried after stopping the receiver again.
//!
//! Listen-before-talk: firmware 4.0.6 and later has `AT+CAD`. With it on, every `AT+PSEND`
//! first runs one channel activity detection, and a frame on air makes the module refuse the
//! send with `AT_BUSY_ERROR` (nothing is transmitted). The driver reads the version
//! (`AT+VER=?`) when it configures the module, turns CAD on where there is one, and answers a
//! busy channel with a random binary exponential back-off (from a quarter of a full frame's
//! airtime), listening meanwhile so that the frame on air is heard, up to the driver's
//! `busy_retries`; then the send fails with [`RadioError::ChannelBusy`]. Older firmware sends
//! blind; the driver says so once.

pub mod parse;

use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::time::Instant;

use crate::RadioError;
use crate::at::hex;
use crate::at_command::{
    AtDecoder, AtEvent, AtLink, AtParser, BusyRetry, RetryError, command, command_retrying_busy,
    greet, is_busy,
};
use crate::backoff::random_between;
use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::open_port::StepError;
use crate::{ModuleInfo, ModuleKind};
pub use parse::{Rui3Event, Rui3Parser, Rui3Status, firmware_version};

/// The first firmware with `AT+CAD`.
pub const CAD_SINCE: [u16; 3] = [4, 0, 6];

/// Bounds on the back-off unit (a quarter of a full frame's airtime): never shorter than a
/// serial round trip, never longer than an SF12 frame.
const BACKOFF_UNIT: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(10));

/// The back-off doubles with every retry, at most this many times.
const BACKOFF_DOUBLINGS: u32 = 3;

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

/// The RUI3 dialect's own state.
#[derive(Debug, Default)]
pub(crate) struct Rui3 {
    /// Whether continuous receive is armed.
    rx_armed: bool,
    /// Whether the module senses the channel before sending (`AT+CAD=1` taken).
    cad: bool,
    /// The modulation configured: a busy channel's back-off scales with its airtime.
    modulation: Option<Modulation>,
    /// Whether the log already says that this module sends without listen-before-talk (said
    /// once per driver, not at every reconnect).
    told_no_cad: bool,
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
    /// Turns channel activity detection on where the firmware has it; whether it is on.
    async fn enable_cad(
        &mut self,
        link: &mut AtLink<Rui3Parser>,
        cfg: &DriverConfig,
    ) -> Result<bool, StepError> {
        let version = query(link, "AT+VER", cfg.command_timeout).await?;
        let has_cad = version
            .as_deref()
            .and_then(firmware_version)
            .is_some_and(|v| v >= CAD_SINCE);
        let refused = if has_cad {
            match command(link, "AT+CAD=1", cfg.command_timeout).await {
                Ok(_) => return Ok(true),
                Err(StepError::Radio(e)) => Some(e.to_string()),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        if !self.told_no_cad {
            self.told_no_cad = true;
            tracing::warn!(
                firmware = version.as_deref().unwrap_or("unknown"),
                refused = refused.as_deref().unwrap_or(""),
                "RUI3 module without channel activity detection (AT+CAD needs RUI 4.0.6 or \
                 later): sending without listen-before-talk"
            );
        }
        Ok(false)
    }

    /// The wait before the nth retry of a send the module refused as busy. With CAD a busy
    /// answer means another frame is on air, of a length we cannot know: binary exponential
    /// back-off from a unit of a quarter of a full frame's airtime. The nth wait is random
    /// between half and all of 2^(n-1) units (doubling at most [`BACKOFF_DOUBLINGS`] times):
    /// the first retry comes soon after a short frame, stations deferring to the same frame
    /// spread apart, and the default four retries outlast almost two full frames even when
    /// every draw is short. Without CAD busy means our receiver was still armed: a short
    /// pause does.
    fn backoff(&self) -> impl Fn(u32) -> Duration + Sync + use<> {
        let unit = match (self.cad, self.modulation) {
            (true, Some(m)) if m.validate().is_ok() => {
                Some((m.time_on_air(MTU) / 4).clamp(BACKOFF_UNIT.0, BACKOFF_UNIT.1))
            }
            (true, _) => Some(BACKOFF_UNIT.0),
            (false, _) => None,
        };
        move |n: u32| match unit {
            Some(unit) => {
                let span = unit * (1 << n.saturating_sub(1).min(BACKOFF_DOUBLINGS));
                random_between(span / 2, span)
            }
            None => Duration::from_millis(20) * n,
        }
    }

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
                .map_err(|e| StepError::port(e, "AT+NWM=0"))?;
            let deadline = Instant::now() + cfg.reset_timeout;
            while let Err(e) = Self::detect_once(link, cfg).await {
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
        }
        command(link, "AT+PRECV=0", t).await?;
        self.rx_armed = false;
        self.cad = self.enable_cad(link, cfg).await?;
        command(link, &format!("AT+P2P={}", p2p_params(m)), t).await?;
        self.modulation = Some(*m);
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
        let pause = self.backoff();
        let retry = BusyRetry {
            retries: cfg.busy_retries,
            pause: &pause,
            // While CAD holds us back, listen: the frame on air may be for us.
            wait_with: self.cad.then_some("AT+PRECV=65534"),
            // Stop the receiver before every retry (without CAD, busy usually means it is
            // armed after all).
            clear: Some("AT+PRECV=0"),
        };
        let started = Instant::now();
        let result = match command_retrying_busy(link, &line, t, &retry).await {
            Ok(_) => link
                .wait_for(Instant::now() + cfg.tx_timeout, |ev| {
                    matches!(ev, AtEvent::Other(Rui3Event::TxDone)).then_some(())
                })
                .await
                .map_err(|e| StepError::port_after(e, "+EVT:TXP2P DONE", cfg.tx_timeout)),
            Err(RetryError::Command(e)) if self.cad && is_busy::<Rui3Parser>(&e) => {
                Err(StepError::Radio(RadioError::ChannelBusy {
                    attempts: cfg.busy_retries + 1,
                    waited: started.elapsed(),
                }))
            }
            Err(RetryError::Command(e)) => Err(e),
            // The receiver would not stop: give up without re-arming it.
            Err(RetryError::Clear(e)) => return Err(e),
        };
        // Re-arm the receiver whatever happened to the send (unless the port is gone).
        if !matches!(result, Err(StepError::Port(..))) {
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
            let has_cad = info
                .firmware
                .as_deref()
                .and_then(firmware_version)
                .is_some_and(|v| v >= CAD_SINCE);
            let lbt = if !has_cad {
                "unavailable (AT+CAD needs RUI 4.0.6 or later)".to_string()
            } else if mode == "0" {
                match query(link, "AT+CAD", t).await?.as_deref() {
                    Some("1") => "on (AT+CAD=1)".to_string(),
                    Some("0") => "off (the driver turns it on)".to_string(),
                    other => format!("unknown (AT+CAD={})", other.unwrap_or("")),
                }
            } else {
                "available (AT+CAD, set in P2P mode)".to_string()
            };
            info.settings.insert("listen_before_talk".into(), lbt);
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
