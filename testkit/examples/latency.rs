//! Delivery latency through whole bridges, over many messages: how long from an app's gRPC
//! Publish call until another bridge has processed the operation.
//!
//! A and B share iroh on loopback; B and C share only a simulated LoRa channel (emulated
//! RAK3172 modules on pseudo-terminals, SF7/BW125, the real serial driver). Each round
//! publishes one message at A and one at C and records when A, B and C have it:
//!
//! - `A -> B (iroh)`: publish at A, processed at its iroh peer B;
//! - `C -> B (radio)`: publish at C, processed at B, heard over the radio;
//! - `C -> A (radio, then iroh)`: the same message at A, after B's import went on over iroh.
//!
//! `cargo run --release --ignore-rust-version -p lorabridge-testkit --example latency -- [ROUNDS]
//! [GAP_MS]` (defaults 20 rounds, 4000 ms). GAP_MS is the pause after each publish: with
//! less than the radio's hold-off plus a frame's airtime, C's frame can overlap B's forwarding
//! of A's message on the shared channel, and both are lost until the summaries repair them.
//! Prints p50/p95/max per path and any message that did not arrive in 30 s.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{APP, arg};
use lorabridge::actor::topics::AppEvent;
use lorabridge::lores::Carried;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood};
use tokio::sync::broadcast::Receiver;

const NETWORK: [u8; 32] = [0x4c; 32];
const REGION: [u8; 32] = [0x5d; 32];
/// Longest wait for one message before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let rounds: usize = arg(1, "ROUNDS", 20)?;
    let gap = Duration::from_millis(arg(2, "GAP_MS", 4000)?);
    let carried = Carried {
        lora: true,
        ..Carried::app(REGION, APP)
    };
    let topic = carried.topic;
    let members = [
        Member::new("A", true, false),
        Member::new("B", true, true),
        Member::new("C", false, true),
    ];
    let hood = Neighbourhood::start(NETWORK, &members, &[carried]).await?;
    let mut watch: HashMap<&str, Receiver<AppEvent>> = ["A", "B", "C"]
        .into_iter()
        .map(|name| (name, hood.bridge(name).watch(&topic).expect("carried")))
        .collect();
    let mut samples: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut lost = Vec::new();
    for round in 0..rounds {
        for (from, paths) in [
            ("A", &[("B", "A -> B (iroh)")][..]),
            (
                "C",
                &[("B", "C -> B (radio)"), ("A", "C -> A (radio, then iroh)")][..],
            ),
        ] {
            let payload = format!("round {round} from {from}").into_bytes();
            let sent = Instant::now();
            publish(&hood, from, &payload).await?;
            for (to, path) in paths {
                match arrival(watch.get_mut(to).expect("watched"), &payload, sent).await {
                    Some(latency) => samples.entry(path).or_default().push(latency),
                    None => lost.push(format!("{path}: round {round}")),
                }
            }
            tokio::time::sleep(gap).await;
        }
    }
    hood.stop().await;

    println!(
        "{rounds} rounds, {} ms between publishes; latency from the Publish call to the \
         operation processed there:",
        gap.as_millis()
    );
    let mut paths: Vec<_> = samples.into_iter().collect();
    paths.sort();
    for (path, mut values) in paths {
        values.sort();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {path:<28} n={:<3} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms",
            values.len(),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(at(1.0)),
        );
    }
    for miss in &lost {
        println!("  lost (not there within {PATIENCE:?}): {miss}");
    }
    Ok(())
}

async fn publish(hood: &Neighbourhood, name: &str, payload: &[u8]) -> Result<(), String> {
    common::publish(hood.bridge(name).grpc_addr, "latency", payload.to_vec()).await
}

/// Time from `sent` until `events` carries `payload`; events seen earlier are skipped, so each
/// receiver must be drained in publishing order.
async fn arrival(
    events: &mut Receiver<AppEvent>,
    payload: &[u8],
    sent: Instant,
) -> Option<Duration> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(event) if event.payload == payload => return Some(sent.elapsed()),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
