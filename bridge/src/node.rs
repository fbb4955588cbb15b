//! The bridge's p2panda node: one `Node` on a SQLite file whose pool the bridge shares, so
//! it can read what the node stores (to serve the mesh) without replaying streams.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use p2panda::network::MdnsDiscoveryMode;
use p2panda::node::AckPolicy;
use p2panda::{Node, NodeId, SigningKey};
use p2panda_net::addrs::NodeInfo;
use p2panda_store::address_book::AddressBookStore;
use p2panda_store::sqlite::SqliteStoreBuilder;
use p2panda_store::{SqliteStore, Transaction};

/// How to start the node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub key: SigningKey,
    /// SQLite file; `None` keeps everything in memory (the demo).
    pub database: Option<std::path::PathBuf>,
    pub network_id: [u8; 32],
    pub mdns: bool,
    pub bind: Option<SocketAddr>,
    /// Peers reachable directly at a known address (no relay needed).
    pub direct_peers: Vec<(NodeId, SocketAddr)>,
    /// An iroh relay for reaching nodes across the internet, and bootstrap nodes behind it.
    pub relay: Option<(p2panda::RelayUrl, Vec<NodeId>)>,
}

impl NodeSpec {
    /// Whether iroh has any way to find peers: mDNS, known addresses or a relay.
    pub fn finds_peers(&self) -> bool {
        self.mdns || !self.direct_peers.is_empty() || self.relay.is_some()
    }
}

/// Spawns the node; returns it with a store on the same database.
pub async fn spawn(spec: &NodeSpec) -> Result<(Node, SqliteStore), String> {
    let store = match &spec.database {
        Some(path) => {
            SqliteStoreBuilder::new()
                .database_url(&sqlite_url(path))
                .build()
                .await
        }
        None => SqliteStoreBuilder::memory().build().await,
    }
    .map_err(|e| format!("cannot open the database: {e}"))?;
    if !spec.direct_peers.is_empty() {
        let permit = store.begin().await.map_err(|e| e.to_string())?;
        for (peer, addr) in &spec.direct_peers {
            let endpoint =
                p2panda::EndpointAddr::new(p2panda_net::utils::from_verifying_key(*peer))
                    .with_ip_addr(*addr);
            AddressBookStore::<NodeId, NodeInfo>::insert_node_info(
                &store,
                NodeInfo::from(endpoint).bootstrap(),
            )
            .await
            .map_err(|e| format!("cannot record peer {peer}: {e}"))?;
        }
        store.commit(permit).await.map_err(|e| e.to_string())?;
    }
    let mut builder = p2panda::builder()
        // The bridge acknowledges an operation once its subscribers have it (see
        // `actor::topics`), so that nothing processed is lost to them on a stream renewal.
        .ack_policy(AckPolicy::Explicit)
        .signing_key(spec.key.clone())
        .network_id(spec.network_id)
        .mdns_mode(if spec.mdns {
            MdnsDiscoveryMode::Active
        } else {
            MdnsDiscoveryMode::Disabled
        })
        .database_pool(store.pool().clone());
    if let Some((relay, bootstrap)) = &spec.relay {
        builder = builder.relay_url(relay.clone());
        for node in bootstrap {
            builder = builder.bootstrap(*node, relay.clone());
        }
    }
    if let Some(bind) = spec.bind {
        let ip = match bind.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        builder = builder.bind_ip_v4(ip).bind_port_v4(bind.port());
    }
    let node = builder
        .spawn()
        .await
        .map_err(|e| format!("cannot start the p2panda node: {e}"))?;
    Ok((node, store))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
