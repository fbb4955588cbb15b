//! One-shot module detection for stewards setting up hardware (`lorabridge radio probe`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::driver::dialect::Dialect;
use crate::driver::link::{FrameSink, Link};
use crate::driver::{Connector, DriverConfig};
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
pub async fn probe(
    kind: ModuleKind,
    connector: &dyn Connector,
    cfg: &DriverConfig,
) -> Result<ModuleInfo, RadioError> {
    match kind {
        ModuleKind::Rui3 => probe_with::<Rui3>(connector, cfg).await,
        ModuleKind::Rak811 => probe_with::<Rak811>(connector, cfg).await,
        ModuleKind::Rnode => probe_with::<Rnode>(connector, cfg).await,
    }
}

async fn probe_with<D: Dialect>(
    connector: &dyn Connector,
    cfg: &DriverConfig,
) -> Result<ModuleInfo, RadioError> {
    let port = connector.open().await?;
    let (tx, _rx) = mpsc::channel(4);
    let sink = FrameSink {
        tx,
        stats: Arc::default(),
    };
    let mut link = Link::<D::Decoder>::new(port, sink);
    let mut dialect = D::default();
    let mut info = dialect
        .probe(&mut link, cfg)
        .await
        .map_err(|e| e.into_radio(cfg.command_timeout))?;
    info.port = connector.describe();
    Ok(info)
}
