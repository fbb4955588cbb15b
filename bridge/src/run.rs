//! `lorabridge run`: a bridge from a config file, until SIGINT or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use lorabridge_radio::{DriverConfig, SerialConnector, SerialRadio};

use crate::bridge::{Bridge, BridgeSpec, Carried, RadioSpec};
use crate::config::Config;
use crate::node::NodeSpec;

pub async fn run(config_path: &Path) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let key = crate::node_key::load_or_create(&config.node_key_path)?;
    let relay = match &config.iroh.relay_url {
        Some(url) => {
            let url = url
                .parse()
                .map_err(|e| format!("config key `iroh.relay_url`: {e}"))?;
            let bootstrap = config
                .iroh
                .bootstrap
                .iter()
                .map(|id| {
                    p2panda::NodeId::from_bytes(id)
                        .map_err(|e| format!("config key `iroh.bootstrap`: {e}"))
                })
                .collect::<Result<_, _>>()?;
            Some((url, bootstrap))
        }
        None => None,
    };
    let node = NodeSpec {
        key,
        database: Some(config.database_path.clone()),
        network_id: config.network_id,
        mdns: config.iroh.enabled && config.iroh.mdns,
        bind: config
            .iroh
            .bind_port
            .map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
        direct_peers: Vec::new(),
        relay,
    };
    let radio = match &config.radio {
        Some(r) => {
            let connector = SerialConnector::new(r.port.clone(), r.baud);
            let radio = SerialRadio::open(r.driver, connector, DriverConfig::default())
                .await
                .map_err(|e| format!("radio on {} ({}): {e}", r.port.display(), r.driver))?;
            Some(RadioSpec {
                radio: Arc::new(radio),
                modulation: r.modulation,
                plan: r.plan.clone(),
                mtu: r.mtu,
            })
        }
        None => None,
    };
    let topics = config
        .topics()
        .into_iter()
        .map(|t| Carried {
            topic: t.topic,
            region: t.region,
            app_id: t.app_id,
            lora: t.lora,
            reticulum: t.reticulum,
        })
        .collect();
    let spec = BridgeSpec {
        node,
        topics,
        grpc: config.grpc_listen,
        status: Some(config.status_listen),
        radio,
        reticulum: config.reticulum,
        region_key: config.region_key,
        trickle: None,
    };
    let bridge = Bridge::start(spec).await?;
    tracing::info!(node = %bridge.node.id(), grpc = %bridge.grpc_addr, "bridge running");
    wait_for_signal().await;
    tracing::info!("stopping: finishing the transmission in flight");
    bridge.stop().await;
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
