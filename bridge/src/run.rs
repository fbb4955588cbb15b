//! `lorabridge run`: a bridge from a config file, until SIGINT or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use lorabridge_radio::e22::cdev::CdevPins;
use lorabridge_radio::{
    DriverConfig, Radio, SerialConnector, SerialRadio, Sx127xSettings, shared, sx126x, sx127x,
};
use p2panda::SigningKey;

use crate::bridge::{Bridge, BridgeSpec, RadioSpec};
use crate::config::{Config, Wiring};
use crate::node::NodeSpec;

pub async fn run(config_path: &Path) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let key = crate::node_key::load_or_create(&config.node_key_path)?;
    let node = node_spec(&config, key);
    let radio = match &config.radio {
        Some(r) => {
            let connector = SerialConnector::new(r.port.clone(), r.baud);
            let failed = |e: &dyn std::fmt::Display| {
                format!("radio on {} ({}): {e}", r.port.display(), r.driver)
            };
            let cfg = DriverConfig::default();
            let radio: Arc<dyn Radio> = match &r.wiring {
                // The configuration refuses RNode framing on an E22.
                Wiring::E22(e22) => {
                    let pins = CdevPins::open(&e22.pins).map_err(|e| failed(&e))?;
                    let radio = SerialRadio::open_e22(connector, pins, e22.settings, cfg).await;
                    Arc::new(radio.map_err(|e| failed(&e))?)
                }
                Wiring::Sx126x(spi) => {
                    let bus = lorabridge_radio::sx126x::linux::open(&r.port, &spi.lines)
                        .map_err(|e| failed(&e))?;
                    let radio = sx126x::open(bus, spi.settings, cfg).await;
                    shared(radio.map_err(|e| failed(&e))?, r.rnode_framing)
                }
                Wiring::Sx127x(lines) => {
                    let bus = lorabridge_radio::sx127x::linux::open(&r.port, lines)
                        .map_err(|e| failed(&e))?;
                    let radio = sx127x::open(bus, Sx127xSettings::default(), cfg).await;
                    shared(radio.map_err(|e| failed(&e))?, r.rnode_framing)
                }
                Wiring::Serial => {
                    let radio = SerialRadio::open(r.driver, connector, cfg).await;
                    shared(radio.map_err(|e| failed(&e))?, r.rnode_framing)
                }
            };
            Some(RadioSpec {
                radio,
                modulation: r.modulation,
                plan: r.plan.clone(),
                mtu: r.mtu,
            })
        }
        None => None,
    };
    let spec = BridgeSpec {
        node,
        topics: config.topics(),
        bindings: config.bindings().clone(),
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

/// The node as `[iroh]` describes it. With `enabled = false` iroh finds no peers at all: no
/// mDNS, no relay, no bootstrap nodes.
fn node_spec(config: &Config, key: SigningKey) -> NodeSpec {
    let iroh = &config.iroh;
    NodeSpec {
        key,
        database: Some(config.database_path.clone()),
        network_id: config.network_id,
        mdns: iroh.enabled && iroh.mdns,
        bind: iroh
            .bind_port
            .map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
        relay: iroh.relay_url.clone().filter(|_| iroh.enabled),
        bootstrap: match iroh.enabled {
            true => iroh.bootstrap.iter().map(|p| (p.id, p.addr)).collect(),
            false => Vec::new(),
        },
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use p2panda::NodeId;

    use super::*;

    fn id(seed: u8) -> NodeId {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    fn spec(iroh: &str) -> NodeSpec {
        let text = format!(
            "network = \"lores\"\n[[regions]]\nid = \"{}\"\n[iroh]\n{iroh}\n\
             bootstrap = [\"{}\", \"{}@192.0.2.7:41641\"]",
            "11".repeat(32),
            id(1),
            id(2)
        );
        let config = Config::from_toml_str(&text, Path::new("/srv")).expect("valid");
        node_spec(&config, SigningKey::from_bytes(&[9; 32]))
    }

    #[test]
    fn the_default_relay_and_bootstrap_ids_and_addresses() {
        let node = spec("");
        let relay = node.relay.as_ref().expect("the default relay");
        assert_eq!(
            relay.as_str(),
            "https://euc1-1.relay.n0.iroh-canary.iroh.link/"
        );
        assert_eq!(
            node.bootstrap,
            vec![
                (id(1), None),
                (id(2), Some("192.0.2.7:41641".parse().unwrap()))
            ]
        );
        assert!(node.mdns && node.finds_peers());
        assert_eq!(
            node.database.as_deref(),
            Some(Path::new("/srv/lorabridge.sqlite"))
        );
        assert_eq!(node.network_id, crate::lores::network_id("lores"));
    }

    #[test]
    fn without_a_relay_ids_still_bootstrap() {
        let node = spec("relay_url = \"\"\nmdns = false\nbind_port = 41641");
        assert!(node.relay.is_none());
        assert_eq!(node.bootstrap.len(), 2);
        assert!(!node.mdns);
        assert_eq!(node.bind, Some("0.0.0.0:41641".parse().unwrap()));
    }

    #[test]
    fn iroh_switched_off_finds_no_peers() {
        let node = spec("enabled = false");
        assert!(node.relay.is_none() && node.bootstrap.is_empty());
        assert!(!node.mdns && !node.finds_peers());
    }
}
