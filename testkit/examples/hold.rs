//! How much memory a bridge needs for what it holds: one `lorabridge run` process carrying a
//! topic over Reticulum (a real `rnsd` on loopback), filled through its gRPC API, then
//! restarted on the same files.
//!
//! Prints the publish rate while filling, the process's resident memory (VmRSS, and its peak
//! VmHWM) every tenth of the way, after the fill, and after the restart once the bridge
//! answers again, with how long the restart took. The restart is the number that matters for
//! a steward's Pi: it is what a bridge that has carried OPS operations costs from boot.
//!
//! ```text
//! tests/reticulum/setup.sh
//! cargo build --release --ignore-rust-version -p lorabridge -p lorabridge-testkit --bins --examples
//! target/release/examples/hold [OPS] [CLIENTS]
//! ```
//!
//! Defaults: 100 000 operations of 64 bytes, published by 16 concurrent clients. rnsd comes
//! from the venv of `tests/reticulum/setup.sh` (or `$RNS_VENV`), started as the Reticulum
//! tests start it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{APP, arg, memory};
use lorabridge::grpc::panda::PublishRequest;
use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge_testkit::rns::Rnsd;
use lorabridge_testkit::station::Station;

const REGION: &str = "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";
const PAYLOAD_BYTES: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let ops = arg(1, "OPS", 100_000)?;
    let clients = arg(2, "CLIENTS", 16)?.max(1);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rnsd = Rnsd::start();
    let mut station = Station::configure(dir.path(), "hold", REGION, APP, &rnsd.address())
        .map_err(|e| e.to_string())?;
    station.run().await.map_err(|e| e.to_string())?;
    let used = |station: &Station| memory(&station.pid().unwrap_or_default().to_string());
    println!("bridge started: {}", used(&station));

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut publishers = Vec::new();
    for _ in 0..clients {
        let (next, grpc) = (next.clone(), station.grpc);
        publishers.push(tokio::spawn(async move {
            let mut client = PandaClient::connect(format!("http://{grpc}"))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= ops {
                    return Ok::<_, String>(());
                }
                let mut payload = format!("hold {n} ").into_bytes();
                payload.resize(PAYLOAD_BYTES, b'.');
                client
                    .publish(PublishRequest {
                        app_id: APP.into(),
                        instance_id: "hold".into(),
                        payload,
                        idempotency_key: Vec::new(),
                    })
                    .await
                    .map_err(|e| format!("publish {n}: {e}"))?;
            }
        }));
    }
    let tenth = (ops / 10).max(1);
    let mut reported = 0;
    while publishers.iter().any(|p| !p.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = next.load(Ordering::Relaxed).min(ops);
        if done >= reported + tenth {
            reported = done - done % tenth;
            println!(
                "{done:>7} published in {:>6.1} s: {}",
                started.elapsed().as_secs_f64(),
                used(&station)
            );
        }
    }
    for publisher in publishers {
        publisher.await.map_err(|e| e.to_string())??;
    }
    let filled = started.elapsed();
    println!(
        "{ops} published in {:.1} s ({:.0}/s), held: {}; {}",
        filled.as_secs_f64(),
        ops as f64 / filled.as_secs_f64(),
        station.operations().await,
        used(&station)
    );

    station.stop();
    let restarted = Instant::now();
    station.run().await.map_err(|e| e.to_string())?;
    let held = station.operations().await;
    println!(
        "restarted in {:.1} s, held: {held}; {}",
        restarted.elapsed().as_secs_f64(),
        used(&station)
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!("10 s later: {}", used(&station));
    Ok(())
}
