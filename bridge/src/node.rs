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
    /// The relay that lets nodes across the internet reach this one. `None`: no relay.
    pub relay: Option<p2panda::RelayUrl>,
    /// Bootstrap nodes. One with an address is reached directly (no relay needed), and through
    /// the relay as well when there is one. One known by id alone is registered through the
    /// relay, as LoRes nodes register theirs; without a relay it waits in the address book
    /// until mDNS or discovery brings an address (p2panda 0.7.0 keeps such an entry).
    pub bootstrap: Vec<(NodeId, Option<SocketAddr>)>,
}

impl NodeSpec {
    /// Whether iroh has any way to find peers: mDNS, bootstrap nodes or a relay.
    pub fn finds_peers(&self) -> bool {
        self.mdns || !self.bootstrap.is_empty() || self.relay.is_some()
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
    index_logs(&store).await?;
    // Before spawning: p2panda's builder only takes bootstrap nodes behind a relay.
    let mut infos = Vec::new();
    for (peer, addr) in &spec.bootstrap {
        match (addr, &spec.relay) {
            (Some(addr), relay) => {
                let mut endpoint =
                    p2panda::EndpointAddr::new(p2panda_net::utils::from_verifying_key(*peer))
                        .with_ip_addr(*addr);
                if let Some(url) = relay {
                    endpoint = endpoint.with_relay_url(url.clone());
                }
                infos.push(NodeInfo::from(endpoint));
            }
            // Registered through the relay by the builder, below.
            (None, Some(_)) => {}
            (None, None) => {
                // Inserting replaces the whole entry, so start from what is known.
                let known = AddressBookStore::<NodeId, NodeInfo>::node_info(&store, peer)
                    .await
                    .map_err(|e| format!("cannot read the address book: {e}"))?;
                infos.push(known.unwrap_or_else(|| NodeInfo::new(*peer)));
            }
        }
    }
    record_bootstrap(&store, infos).await?;
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
    if let Some(relay) = &spec.relay {
        builder = builder.relay_url(relay.clone());
        for (node, _) in spec.bootstrap.iter().filter(|(_, addr)| addr.is_none()) {
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

/// Inserts `infos` into the address book as bootstrap nodes, in one transaction.
async fn record_bootstrap(store: &SqliteStore, infos: Vec<NodeInfo>) -> Result<(), String> {
    if infos.is_empty() {
        return Ok(());
    }
    let permit = store.begin().await.map_err(|e| e.to_string())?;
    for info in infos {
        let peer = info.node_id;
        AddressBookStore::<NodeId, NodeInfo>::insert_node_info(store, info.bootstrap())
            .await
            .map_err(|e| format!("cannot record peer {peer}: {e}"))?;
    }
    store.commit(permit).await.map_err(|e| e.to_string())
}

/// p2panda 0.7.0 keeps operations in a table without an index by log, so finding a log's
/// latest operation (at every publish and import) reads the whole table, and a bridge that
/// holds many operations publishes slower and slower (with 16 clients: 10 000 in 78 s, the
/// next 10 000 in 168 s). SQLite uses this index for p2panda's own queries. It is made
/// before the node starts, so no p2panda writer waits on it.
async fn index_logs(store: &SqliteStore) -> Result<(), String> {
    sqlx::query(
        "CREATE INDEX IF NOT EXISTS lorabridge_operations_by_log \
         ON operations_v1 (verifying_key, log_id, seq_num)",
    )
    .execute(store.pool())
    .await
    .map_err(|e| format!("cannot index the database's operations: {e}"))?;
    Ok(())
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u8) -> NodeId {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    async fn entry(path: &Path, id: &NodeId) -> Option<NodeInfo> {
        let store = SqliteStoreBuilder::new()
            .database_url(&sqlite_url(path))
            .build()
            .await
            .expect("database");
        AddressBookStore::<NodeId, NodeInfo>::node_info(&store, id)
            .await
            .expect("address book")
    }

    #[tokio::test]
    async fn a_logs_latest_operation_is_found_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let spec = NodeSpec {
            key: SigningKey::from_bytes(&[9; 32]),
            database: Some(dir.path().join("node.sqlite")),
            network_id: [7; 32],
            mdns: false,
            bind: None,
            relay: None,
            bootstrap: vec![],
        };
        let (node, store) = spawn(&spec).await.expect("node");
        // The query p2panda 0.7.0 runs for a log's latest operation.
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT hash, header, body FROM operations_v1 \
             WHERE verifying_key = ? AND log_id = ? ORDER BY seq_num DESC LIMIT 1",
        )
        .bind("author")
        .bind(vec![0u8])
        .fetch_all(store.pool())
        .await
        .expect("a plan");
        drop(node);
        store.pool().close().await;
        assert!(
            plan.iter()
                .any(|(.., detail)| detail.contains("lorabridge_operations_by_log")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn ids_alone_are_kept_as_bootstrap_nodes_and_what_is_known_stays() {
        let dir = std::env::temp_dir().join(format!("lorabridge-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("node.sqlite");
        let (bare, known) = (id(1), id(2));

        // An id with an address learnt before (as from mDNS or discovery).
        let addr: SocketAddr = "192.0.2.7:41641".parse().unwrap();
        let spec = NodeSpec {
            key: SigningKey::from_bytes(&[9; 32]),
            database: Some(path.clone()),
            network_id: [7; 32],
            mdns: false,
            bind: None,
            relay: None,
            bootstrap: vec![(known, Some(addr))],
        };
        let (node, store) = spawn(&spec).await.expect("node");
        drop(node);
        store.pool().close().await;

        // Then both by id alone, without a relay: p2panda 0.7.0 starts on an address book
        // holding an id without an address.
        let spec = NodeSpec {
            bootstrap: vec![(bare, None), (known, None)],
            ..spec
        };
        let (node, store) = spawn(&spec).await.expect("node with a bare bootstrap id");
        drop(node);
        store.pool().close().await;
        let bare_entry = entry(&path, &bare).await.expect("recorded");
        assert!(bare_entry.bootstrap);
        assert!(bare_entry.transports.is_none());
        let known_entry = entry(&path, &known).await.expect("kept");
        assert!(known_entry.bootstrap);
        let endpoint = p2panda::EndpointAddr::try_from(known_entry).expect("address kept");
        assert_eq!(endpoint.ip_addrs().copied().collect::<Vec<_>>(), vec![addr]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
