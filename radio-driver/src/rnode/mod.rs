//! Boards running the RNode firmware, over KISS.
//!
//! Exchange: detect (`08 73` → `08 46`) with firmware version (`50`, must be ≥ 1.52), platform
//! (`48`) and MCU (`49`) → frequency, bandwidth, power, SF, CR (each echoed; the echo is
//! compared) → radio on (`06 01`). Data goes out as `00` frames; received packets arrive as
//! `00` frames preceded by RSSI (`23`) and SNR (`24`) reports. Shutdown turns the radio off
//! and sends leave (`0A FF`).
//!
//! The firmware has no preamble or sync-word command: it picks its own preamble, and the sync
//! word stays at the private default 0x12.

pub mod air;
pub mod cmd;
pub mod kiss;
pub mod parse;

use lorabridge_hardware::Modulation;
use tokio::time::Instant;

use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::open_port::{Classified, Decode, OpenPort, StepError};
use crate::{ModuleInfo, ModuleKind, RadioError};
pub use parse::{RnodeEvent, RnodeParser};

/// Host-side MTU (the firmware splits frames over 254 bytes into two LoRa packets).
pub const MTU: usize = cmd::HOST_MTU;

/// The sync word RNode firmware uses.
pub const SYNC_WORD: u8 = 0x12;

impl Decode for RnodeParser {
    type Event = RnodeEvent;
    fn push(&mut self, bytes: &[u8], out: &mut Vec<RnodeEvent>) {
        RnodeParser::push(self, bytes, out)
    }
    fn classify(event: RnodeEvent) -> Classified<RnodeEvent> {
        match event {
            RnodeEvent::Received { payload, rssi, snr } => Classified::Frame { payload, rssi, snr },
            RnodeEvent::Malformed { .. } | RnodeEvent::Overlong | RnodeEvent::Corrupt => {
                Classified::Noise
            }
            other => Classified::Event(other),
        }
    }
}

/// The RNode dialect (stateless between exchanges).
#[derive(Debug, Default)]
pub(crate) struct Rnode;

/// What detect learns.
#[derive(Debug, Default)]
struct Identity {
    detected: bool,
    firmware: Option<(u8, u8)>,
    platform: Option<u8>,
    mcu: Option<u8>,
}

async fn identify(
    link: &mut OpenPort<RnodeParser>,
    cfg: &DriverConfig,
) -> Result<Identity, StepError> {
    link.clear_events();
    let mut wire = kiss::encode(cmd::DETECT, &[cmd::DETECT_REQ]);
    wire.extend(kiss::encode(cmd::FW_VERSION, &[0]));
    wire.extend(kiss::encode(cmd::PLATFORM, &[0]));
    wire.extend(kiss::encode(cmd::MCU, &[0]));
    link.write(&wire, cfg.command_timeout)
        .await
        .map_err(|e| StepError::port(e, "detect"))?;
    let deadline = Instant::now() + cfg.command_timeout;
    let mut id = Identity::default();
    while !(id.detected && id.firmware.is_some() && id.platform.is_some() && id.mcu.is_some()) {
        match link.next_event(deadline).await {
            Ok(RnodeEvent::Detected(ok)) => {
                if !ok {
                    return Err(StepError::Radio(RadioError::Protocol(
                        "device answered detect wrongly".into(),
                    )));
                }
                id.detected = true;
            }
            Ok(RnodeEvent::FirmwareVersion(a, b)) => id.firmware = Some((a, b)),
            Ok(RnodeEvent::Platform(p)) => id.platform = Some(p),
            Ok(RnodeEvent::Mcu(m)) => id.mcu = Some(m),
            Ok(_) => {}
            // Platform and MCU are informative; detect and version are required.
            Err(_) if id.detected && id.firmware.is_some() => break,
            Err(e) => return Err(StepError::port(e, "detect")),
        }
    }
    Ok(id)
}

/// Sends one setting and compares the echo.
async fn set(
    link: &mut OpenPort<RnodeParser>,
    command: u8,
    value: &[u8],
    want: RnodeEvent,
    name: &str,
    cfg: &DriverConfig,
) -> Result<(), StepError> {
    link.clear_events();
    link.write(&kiss::encode(command, value), cfg.command_timeout)
        .await
        .map_err(|e| StepError::port(e, name))?;
    let deadline = Instant::now() + cfg.command_timeout;
    loop {
        let ev = link
            .next_event(deadline)
            .await
            .map_err(|e| StepError::port(e, name))?;
        if std::mem::discriminant(&ev) == std::mem::discriminant(&want) {
            if ev == want {
                return Ok(());
            }
            return Err(StepError::Radio(RadioError::Protocol(format!(
                "{name}: asked for {want:?}, device echoed {ev:?}"
            ))));
        }
        if let RnodeEvent::Error(code) = ev {
            return Err(StepError::Radio(RadioError::Rejected {
                command: name.into(),
                reply: format!("error {code} ({})", cmd::error_name(code)),
            }));
        }
    }
}

impl Dialect for Rnode {
    type Decoder = RnodeParser;
    const KIND: ModuleKind = ModuleKind::Rnode;

    fn mtu(&self) -> usize {
        MTU
    }

    async fn detect(
        &mut self,
        link: &mut OpenPort<RnodeParser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let id = identify(link, cfg).await?;
        let version = id.firmware.unwrap_or((0, 0));
        if version < cmd::MIN_FIRMWARE {
            return Err(StepError::Radio(RadioError::Protocol(format!(
                "RNode firmware {}.{:02} is older than the required {}.{}",
                version.0,
                version.1,
                cmd::MIN_FIRMWARE.0,
                cmd::MIN_FIRMWARE.1
            ))));
        }
        Ok(())
    }

    async fn configure(
        &mut self,
        link: &mut OpenPort<RnodeParser>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let f = m.frequency_hz.to_be_bytes();
        let b = m.bandwidth_hz.to_be_bytes();
        set(
            link,
            cmd::FREQUENCY,
            &f,
            RnodeEvent::Frequency(m.frequency_hz),
            "frequency",
            cfg,
        )
        .await?;
        set(
            link,
            cmd::BANDWIDTH,
            &b,
            RnodeEvent::Bandwidth(m.bandwidth_hz),
            "bandwidth",
            cfg,
        )
        .await?;
        set(
            link,
            cmd::TXPOWER,
            &[m.tx_power_dbm as u8],
            RnodeEvent::TxPower(m.tx_power_dbm),
            "tx power",
            cfg,
        )
        .await?;
        set(
            link,
            cmd::SF,
            &[m.spreading_factor],
            RnodeEvent::SpreadingFactor(m.spreading_factor),
            "spreading factor",
            cfg,
        )
        .await?;
        set(
            link,
            cmd::CR,
            &[m.coding_rate],
            RnodeEvent::CodingRate(m.coding_rate),
            "coding rate",
            cfg,
        )
        .await?;
        set(
            link,
            cmd::RADIO_STATE,
            &[cmd::RADIO_ON],
            RnodeEvent::RadioState(cmd::RADIO_ON),
            "radio on",
            cfg,
        )
        .await
    }

    async fn transmit(
        &mut self,
        link: &mut OpenPort<RnodeParser>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        // The firmware queues the packet and reports no completion over KISS; failures come
        // back later as error frames, which the driver counts as noise.
        link.write(&kiss::encode(cmd::DATA, frame), cfg.command_timeout)
            .await
            .map_err(|e| StepError::port(e, "data"))
    }

    async fn close(
        &mut self,
        link: &mut OpenPort<RnodeParser>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        set(
            link,
            cmd::RADIO_STATE,
            &[cmd::RADIO_OFF],
            RnodeEvent::RadioState(cmd::RADIO_OFF),
            "radio off",
            cfg,
        )
        .await?;
        link.write(
            &kiss::encode(cmd::LEAVE, &[cmd::LEAVE_VALUE]),
            cfg.command_timeout,
        )
        .await
        .map_err(|e| StepError::port(e, "leave"))
    }

    async fn probe(
        &mut self,
        link: &mut OpenPort<RnodeParser>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        let id = identify(link, cfg).await?;
        let mut info = ModuleInfo::new(ModuleKind::Rnode, MTU);
        info.firmware = id.firmware.map(|(a, b)| format!("{a}.{b:02}"));
        if let Some(p) = id.platform {
            info.settings.insert(
                "platform".into(),
                format!("{p:#04x} ({})", cmd::platform_name(p)),
            );
        }
        if let Some(m) = id.mcu {
            info.settings.insert("mcu".into(), format!("{m:#04x}"));
        }
        link.clear_events();
        link.write(
            &kiss::encode(cmd::RADIO_STATE, &[cmd::RADIO_QUERY]),
            cfg.command_timeout,
        )
        .await
        .map_err(|e| StepError::port(e, "radio state"))?;
        let state = link
            .wait_for(Instant::now() + cfg.command_timeout, |ev| match ev {
                RnodeEvent::RadioState(s) => Some(s),
                _ => None,
            })
            .await
            .map_err(|e| StepError::port(e, "radio state"))?;
        info.settings.insert(
            "radio".into(),
            if state == cmd::RADIO_ON { "on" } else { "off" }.into(),
        );
        Ok(info)
    }
}
