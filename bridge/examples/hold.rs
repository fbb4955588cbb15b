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
//! cargo build --release --ignore-rust-version -p lorabridge --bins --examples
//! target/release/examples/hold [OPS] [CLIENTS]
//! ```
//!
//! Defaults: 100 000 operations of 64 bytes, published by 16 concurrent clients. rnsd comes
//! from the venv of `tests/reticulum/setup.sh` (or `$RNS_VENV`), started as the Reticulum
//! tests start it.

mod common;
#[path = "../../tests/reticulum/harness.rs"]
mod harness;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{APP, arg, memory};
use harness::{Reaped, Rnsd};
use lorabridge::grpc::panda::PublishRequest;
use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge::grpc::status::StatusRequest;
use lorabridge::grpc::status::status_client::StatusClient;

const REGION: &str = "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";
const PAYLOAD_BYTES: usize = 64;
/// Longest wait for a process to listen or a bridge to answer.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let ops = arg(1, "OPS", 100_000)?;
    let clients = arg(2, "CLIENTS", 16)?.max(1);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rnsd = Rnsd::start();
    let station = Station::configure(dir.path(), rnsd.port)?;
    let mut bridge = station.start().await?;
    println!("bridge started: {}", memory(&bridge.0.id().to_string()));

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
                memory(&bridge.0.id().to_string())
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
        station.held().await?,
        memory(&bridge.0.id().to_string())
    );

    stop(&mut bridge);
    let restarted = Instant::now();
    let bridge = station.start().await?;
    let held = station.held().await?;
    println!(
        "restarted in {:.1} s, held: {held}; {}",
        restarted.elapsed().as_secs_f64(),
        memory(&bridge.0.id().to_string())
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!("10 s later: {}", memory(&bridge.0.id().to_string()));
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// SIGTERM, then waits for the bridge's shutdown to finish.
fn stop(bridge: &mut Reaped) {
    let _ = Command::new("kill")
        .args(["-TERM", &bridge.0.id().to_string()])
        .status();
    let _ = bridge.0.wait();
}

/// One bridge's config and files, started as often as asked.
struct Station {
    config: PathBuf,
    grpc: SocketAddr,
    status: SocketAddr,
}

impl Station {
    fn configure(dir: &Path, rnsd_port: u16) -> Result<Self, String> {
        let grpc = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let status = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = dir.join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                "network = \"hold\"\n\
                 grpc_listen = \"{grpc}\"\n\
                 status_listen = \"{status}\"\n\
                 [iroh]\nenabled = false\n\
                 [[regions]]\nid = \"{REGION}\"\napps = [\"{APP}\"]\nadmin_topic = false\n\
                 lora = false\n\
                 [reticulum]\nrnsd = [\"127.0.0.1:{rnsd_port}\"]\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            grpc,
            status,
        })
    }

    /// Starts `lorabridge run` (built beside this example) and waits until it answers.
    async fn start(&self) -> Result<Reaped, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let binary = exe
            .parent()
            .and_then(Path::parent)
            .map(|profile| profile.join("lorabridge"))
            .filter(|binary| binary.exists())
            .ok_or("no lorabridge beside target/<profile>/examples: build with --bins")?;
        let process = Reaped(
            Command::new(binary)
                .arg("run")
                .arg("--config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("lorabridge: {e}"))?,
        );
        let deadline = Instant::now() + PATIENCE;
        while self.held().await.is_err() {
            if Instant::now() > deadline {
                return Err("the bridge did not answer its status".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(process)
    }

    /// The operations the bridge's node holds, from its status.
    async fn held(&self) -> Result<u64, String> {
        let mut client = StatusClient::connect(format!("http://{}", self.status))
            .await
            .map_err(|e| e.to_string())?;
        let reply = client
            .get_status(StatusRequest {})
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        Ok(reply.topics.iter().map(|t| t.operations).sum())
    }
}
