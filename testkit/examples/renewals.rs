//! What one renewal of a topic's p2panda stream costs in memory, without the rest of the
//! bridge: two p2panda nodes on loopback that know each other, and node A opens its stream,
//! publishes one operation, lets the sync sessions start, and drops the stream, RENEWALS
//! times (the bridge renews a stream to push imported operations to iroh peers; see
//! `actor::topics`). Prints the resident memory of the process, both nodes, every tenth of
//! the way.
//!
//! ```text
//! cargo build --release --ignore-rust-version -p lorabridge-testkit --examples
//! target/release/examples/renewals [RENEWALS] [PEERS] [B_RENEWS_EVERY]
//! ```
//!
//! Defaults: 1000 renewals, with a peer (PEERS = 1); PEERS = 0 renews with nobody to sync.
//! B keeps its stream open all along unless B_RENEWS_EVERY = N > 0: then B renews its own
//! stream after every N of A's renewals, as a bridge does after enough sync sessions
//! (`actor::sessions`), to see what that gives back.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{arg, memory};
use lorabridge::node::{NodeSpec, spawn};
use p2panda::SigningKey;

/// Long enough for the live sync sessions of a new stream to open.
const SETTLE: Duration = Duration::from_millis(300);

fn free_addr() -> SocketAddr {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    socket.local_addr().expect("its address")
}

fn spec(key: &SigningKey, bind: SocketAddr, peer: Option<(&SigningKey, SocketAddr)>) -> NodeSpec {
    NodeSpec {
        key: key.clone(),
        database: None,
        network_id: [0x33; 32],
        mdns: false,
        bind: Some(bind),
        relay: None,
        bootstrap: peer
            .map(|(k, a)| (k.verifying_key(), Some(a)))
            .into_iter()
            .collect(),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let renewals: usize = arg(1, "RENEWALS", 1000)?;
    let peers: usize = arg(2, "PEERS", 1)?;
    let b_renews_every: usize = arg(3, "B_RENEWS_EVERY", 0)?;
    let (key_a, key_b) = (SigningKey::generate(), SigningKey::generate());
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let with_b = (peers > 0).then_some((&key_b, addr_b));
    let (a, _store_a) = spawn(&spec(&key_a, addr_a, with_b)).await?;
    let b = match peers {
        0 => None,
        _ => Some(spawn(&spec(&key_b, addr_b, Some((&key_a, addr_a)))).await?),
    };
    let topic = p2panda_core::Topic::from([0x44; 32]);
    // B listens all along, as an iroh peer of a bridge does.
    let mut b_stream = match &b {
        Some((node, _)) => Some(
            node.stream::<Vec<u8>>(topic)
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    println!("start: {}", memory("self"));
    let started = Instant::now();
    for i in 0..renewals {
        let (publisher, subscription) = a
            .stream::<Vec<u8>>(topic)
            .await
            .map_err(|e| e.to_string())?;
        publisher
            .publish(format!("renewal {i}").into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(SETTLE).await;
        drop((publisher, subscription));
        if let Some((node, _)) = &b
            && b_renews_every > 0
            && (i + 1) % b_renews_every == 0
        {
            drop(b_stream.take());
            b_stream = Some(
                node.stream::<Vec<u8>>(topic)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        if (i + 1) % (renewals / 10).max(1) == 0 {
            println!(
                "{:>6} renewals, {:>5.0} s: {}",
                i + 1,
                started.elapsed().as_secs_f64(),
                memory("self")
            );
        }
    }
    Ok(())
}
