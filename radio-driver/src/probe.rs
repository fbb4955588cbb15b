//! One-shot module detection for stewards setting up hardware (`lorabridge radio probe`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::driver::dialect::Dialect;
use crate::driver::open_port::{FrameSink, OpenPort};
use crate::driver::{Connector, DriverConfig};
use crate::e22::{E22, E22Settings, ModePins};
use crate::rak811::Rak811;
use crate::rnode::Rnode;
use crate::rui3::Rui3;
use crate::{ModuleKind, RadioError};

/// What a module says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleInfo {
    /// The dialect that answered.
    pub driver: ModuleKind,
    /// The port it answered on.
    pub port: String,
    /// Firmware version as the module reports it.
    pub firmware: Option<String>,
    /// Largest frame the driver sends through this module.
    pub mtu: usize,
    /// Current settings and other facts, by name, as the module reported them.
    pub settings: BTreeMap<String, String>,
}

impl ModuleInfo {
    /// An empty report for `kind`.
    pub fn new(kind: ModuleKind, mtu: usize) -> Self {
        Self {
            driver: kind,
            port: String::new(),
            firmware: None,
            mtu,
            settings: BTreeMap::new(),
        }
    }
}

/// Opens the port once, detects the module in `kind`'s dialect and reads its settings.
/// Nothing is changed on the module; nothing is retried beyond the per-command retries.
/// An E22 also needs its pins: probe it with [`probe_e22`].
pub async fn probe(
    kind: ModuleKind,
    connector: &dyn Connector,
    cfg: &DriverConfig,
) -> Result<ModuleInfo, RadioError> {
    match kind {
        ModuleKind::Rui3 => probe_with(Rui3::default(), connector, cfg).await,
        ModuleKind::Rak811 => probe_with(Rak811, connector, cfg).await,
        ModuleKind::Rnode => probe_with(Rnode, connector, cfg).await,
        ModuleKind::E22 => Err(RadioError::Unsupported {
            module: ModuleKind::E22.module_name(),
            reason: "an E22 needs its M0/M1/AUX pins: probe it with probe_e22".into(),
        }),
        ModuleKind::Sx126x | ModuleKind::Sx127x => Err(crate::driver::not_serial(kind)),
    }
}

/// [`probe`] for an Ebyte E22: reads its registers in configuration mode and leaves it in
/// normal mode. Registers are not changed.
pub async fn probe_e22(
    connector: &dyn Connector,
    pins: impl ModePins,
    cfg: &DriverConfig,
) -> Result<ModuleInfo, RadioError> {
    let dialect = E22::new(Box::new(pins), E22Settings::default());
    probe_with(dialect, connector, cfg).await
}

async fn probe_with<D: Dialect>(
    mut dialect: D,
    connector: &dyn Connector,
    cfg: &DriverConfig,
) -> Result<ModuleInfo, RadioError> {
    let port = connector.open().await?;
    let (tx, _rx) = mpsc::channel(4);
    let sink = FrameSink {
        tx,
        stats: Arc::default(),
    };
    let mut link = OpenPort::<D::Decoder>::new(port, sink);
    let mut info = dialect
        .probe(&mut link, cfg)
        .await
        .map_err(|e| e.into_radio(cfg.command_timeout))?;
    info.port = connector.describe();
    Ok(info)
}
