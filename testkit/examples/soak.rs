//! A soak of four bridges under steady traffic: delivery, latency and memory over a long run.
//!
//! A and B share iroh on loopback; B, C and D share one simulated LoRa channel (emulated
//! RAK3172 modules on pseudo-terminals, SF7/BW125, the real serial driver, EU868's duty
//! cycle). Every GAP_MS one bridge, in turn, publishes a 64-byte message through its gRPC
//! API; every other bridge must process it. So A's messages reach C and D over iroh and then
//! the radio, and C's reach A over the radio and then iroh.
//!
//! `cargo run --release --ignore-rust-version -p lorabridge-testkit --example soak -- [MINUTES]
//! [GAP_MS] [LINKS]` (defaults 30 minutes, 5000 ms, `mixed`). With LINKS `radio`, all four
//! share only the radio channel, and with `iroh` only iroh: to tell which part of a bridge
//! a change in memory comes from. Prints, every five minutes and at the end, the delivery so
//! far, latency p50/p99 per path (from the Publish call until the bridge processed the
//! operation), and the resident memory of the process that runs all four bridges.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{APP, arg, memory};
use lorabridge::actor::topics::AppEvent;
use lorabridge::lores::Carried;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

const NETWORK: [u8; 32] = [0x50; 32];
const REGION: [u8; 32] = [0x6b; 32];
const NAMES: [&str; 4] = ["A", "B", "C", "D"];
/// Longest wait at the end for messages still on their way.
const PATIENCE: Duration = Duration::from_secs(60);
const REPORT_EVERY: Duration = Duration::from_secs(300);

/// When each message was published, and where and when it was processed.
#[derive(Default)]
struct Ledger {
    sent: HashMap<Vec<u8>, (usize, Instant)>,
    /// (from, to) -> latencies.
    arrived: HashMap<(usize, usize), Vec<Duration>>,
    /// Events a bridge's app channel dropped because the reader lagged.
    lagged: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let minutes: u64 = arg(1, "MINUTES", 30)?;
    let gap = Duration::from_millis(arg(2, "GAP_MS", 5000)?);
    let carried = Carried {
        lora: true,
        ..Carried::app(REGION, APP)
    };
    let links: String = arg(3, "LINKS", "mixed".to_string())?;
    let members = match links.as_str() {
        "mixed" => [(true, false), (true, true), (false, true), (false, true)],
        "radio" => [(false, true); 4],
        "iroh" => [(true, false); 4],
        other => return Err(format!("LINKS {other:?}: mixed, radio or iroh")),
    };
    let members: Vec<Member> = NAMES
        .iter()
        .zip(members)
        .map(|(name, (iroh, radio))| Member::new(name, iroh, radio))
        .collect();
    let hood = Neighbourhood::start(NETWORK, &members, &[carried.clone()]).await?;
    println!("4 bridges started: {}", memory("self"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for (to, name) in NAMES.iter().enumerate() {
        let events = hood.bridge(name).watch(&carried.topic).expect("carried");
        tokio::spawn(record(events, to, ledger.clone()));
    }

    let started = Instant::now();
    let run = Duration::from_secs(minutes * 60);
    let mut next_report = REPORT_EVERY;
    let mut published = 0usize;
    while started.elapsed() < run {
        let from = published % NAMES.len();
        let mut payload = format!("soak {published} from {}", NAMES[from]).into_bytes();
        payload.resize(64, b'.');
        ledger
            .lock()
            .unwrap()
            .sent
            .insert(payload.clone(), (from, Instant::now()));
        publish(&hood, NAMES[from], payload).await?;
        published += 1;
        tokio::time::sleep(gap).await;
        if started.elapsed() >= next_report {
            next_report += REPORT_EVERY;
            report(&ledger, started.elapsed(), "so far");
        }
    }
    let expected = published * (NAMES.len() - 1);
    let deadline = Instant::now() + PATIENCE;
    while arrivals(&ledger) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    report(&ledger, started.elapsed(), "at the end");
    hood.stop().await;
    Ok(())
}

/// Records when each message reaches the bridge `to`.
async fn record(mut events: Receiver<AppEvent>, to: usize, ledger: Arc<Mutex<Ledger>>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let mut ledger = ledger.lock().unwrap();
                if let Some(&(from, sent)) = ledger.sent.get(&event.payload)
                    && from != to
                {
                    ledger
                        .arrived
                        .entry((from, to))
                        .or_default()
                        .push(sent.elapsed());
                }
            }
            Err(RecvError::Lagged(n)) => ledger.lock().unwrap().lagged += n,
            Err(RecvError::Closed) => return,
        }
    }
}

fn arrivals(ledger: &Mutex<Ledger>) -> usize {
    ledger.lock().unwrap().arrived.values().map(Vec::len).sum()
}

fn report(ledger: &Mutex<Ledger>, elapsed: Duration, when: &str) {
    let ledger = ledger.lock().unwrap();
    let published = ledger.sent.len();
    let expected = published * (NAMES.len() - 1);
    let arrived: usize = ledger.arrived.values().map(Vec::len).sum();
    println!(
        "{when} ({:.1} min): {published} published, {arrived}/{expected} deliveries \
         ({:.2} %), {} app events lagged; {}",
        elapsed.as_secs_f64() / 60.0,
        100.0 * arrived as f64 / expected.max(1) as f64,
        ledger.lagged,
        memory("self")
    );
    let mut paths: Vec<_> = ledger.arrived.iter().collect();
    paths.sort_by_key(|(path, _)| **path);
    for ((from, to), values) in paths {
        let mut values = values.clone();
        values.sort();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {} -> {}  n={:<4} p50 {:>7.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
            NAMES[*from],
            NAMES[*to],
            values.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
        );
    }
}

async fn publish(hood: &Neighbourhood, name: &str, payload: Vec<u8>) -> Result<(), String> {
    common::publish(hood.bridge(name).grpc_addr, "soak", payload).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
