//! One `lorabridge run` process as a steward runs it: its own folder and config file, started,
//! stopped with SIGTERM or killed with SIGKILL, and started again on the same files. For the
//! crash tests and the `hold` example, which need the real binary rather than a bridge in
//! this process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lorabridge::grpc::status::status_client::StatusClient;
use lorabridge::grpc::status::{StatusReply, StatusRequest};

use crate::rns::Reaped;

/// The longest wait for a started process to answer on its status service.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// What went wrong with a station's process.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error(
        "no lorabridge binary at {0}: build it, e.g. cargo build --ignore-rust-version -p lorabridge"
    )]
    NoBinary(PathBuf),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the bridge did not answer on its status service within {PATIENCE:?}")]
    NoAnswer,
}

/// One bridge with a config of its own that carries one app's topic of one region over
/// Reticulum only (iroh and radio off), through an rnsd at `rnsd` ("host:port").
pub struct Station {
    config: PathBuf,
    pub grpc: SocketAddr,
    pub status: SocketAddr,
    process: Option<Reaped>,
}

impl Station {
    /// Writes the config into `dir` (made if missing), on free loopback ports; starts nothing.
    pub fn configure(
        dir: &Path,
        network: &str,
        region: &str,
        app: &str,
        rnsd: &str,
    ) -> Result<Self, StationError> {
        std::fs::create_dir_all(dir)?;
        let grpc = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let status = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = dir.join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                "network = \"{network}\"\n\
                 grpc_listen = \"{grpc}\"\n\
                 status_listen = \"{status}\"\n\
                 [iroh]\nenabled = false\n\
                 [[regions]]\nid = \"{region}\"\napps = [\"{app}\"]\nadmin_topic = false\n\
                 lora = false\n\
                 [reticulum]\nrnsd = [\"{rnsd}\"]\nannounce_interval_secs = 60\n"
            ),
        )?;
        Ok(Self {
            config,
            grpc,
            status,
            process: None,
        })
    }

    /// Starts the process and waits until its status service answers. Its log goes to this
    /// process's stderr when RUST_LOG is set, and nowhere otherwise.
    pub async fn run(&mut self) -> Result<(), StationError> {
        let logs = std::env::var_os("RUST_LOG").is_some();
        let child = Command::new(binary()?)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(if logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()?;
        self.process = Some(Reaped(child));
        tokio::time::timeout(PATIENCE, async {
            while self.status().await.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .map_err(|_| StationError::NoAnswer)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|Reaped(child)| child.id())
    }

    /// SIGTERM, then waits for the process to finish its shutdown.
    pub fn stop(&mut self) {
        if let Some(Reaped(child)) = &mut self.process {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        self.process = None;
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(&mut self) {
        // Dropping the reaper kills and reaps.
        self.process = None;
    }

    /// The bridge's status, or `None` while it does not answer.
    pub async fn status(&self) -> Option<StatusReply> {
        let mut client = StatusClient::connect(format!("http://{}", self.status))
            .await
            .ok()?;
        Some(client.get_status(StatusRequest {}).await.ok()?.into_inner())
    }

    /// The operations its node holds, over all topics (0 while it does not answer).
    pub async fn operations(&self) -> u64 {
        self.status()
            .await
            .map_or(0, |s| s.topics.iter().map(|t| t.operations).sum())
    }

    /// Whether its Reticulum transport is connected to rnsd.
    pub async fn connected(&self) -> bool {
        self.status().await.is_some_and(|s| {
            s.transports
                .iter()
                .any(|t| t.name == "reticulum" && t.state == "connected")
        })
    }
}

/// The `lorabridge` binary cargo built beside the running test or example:
/// target/<profile>/lorabridge, next to target/<profile>/deps and target/<profile>/examples.
///
/// Cargo builds another package's binary only for that package's own integration tests:
/// `cargo test --workspace` builds it for `bridge/tests/cli.rs`, and an example needs
/// `-p lorabridge --bins` beside it.
pub fn binary() -> Result<PathBuf, StationError> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("lorabridge"))
        .unwrap_or_default();
    if binary.exists() {
        Ok(binary)
    } else {
        Err(StationError::NoBinary(binary))
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
