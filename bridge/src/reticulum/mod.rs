//! The Reticulum transport's async shell: TCP connections to `rnsd` transport nodes around the
//! sans-IO [`Endpoint`] from `lorabridge_reticulum`, and the peers' engine links
//! ([`PeerLinks`], in `peers.rs`).
//!
//! One driver task owns the endpoint, the clock and the random seed; one task per configured
//! rnsd moves HDLC frames and reconnects with backoff. Every packet we make goes to every
//! connected rnsd (the endpoint does not track interfaces: with one rnsd that is exact, with
//! several it costs duplicates that receivers drop by hash).
//!
//! ```ignore
//! let (rns, mut events) = Reticulum::start(config, network_tag, topic_tags)?;
//! while let Some(event) = events.recv().await { /* PeerAnnounced → PeerLinks::on_peer … */ }
//! rns.send(peer, frame);   // a mesh frame ≤ MAX_FRAME from engine.poll_transmit
//! ```

mod connection;
mod identity_file;
mod peers;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_reticulum::{Endpoint, EndpointConfig, EndpointStats, Event, Hash16};
use tokio::sync::{mpsc, oneshot};

use connection::ConnEvent;
pub use identity_file::{IdentityFileError, load_or_create};
pub use lorabridge_reticulum::MAX_FRAME;
pub use peers::{PeerLinkError, PeerLinks};

/// The `[reticulum]` settings (the config file's keys: `rnsd`, `identity`,
/// `announce_interval_secs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReticulumConfig {
    /// rnsd `TCPServerInterface` addresses, `host:port`.
    pub servers: Vec<String>,
    /// Where the identity's 64 secret bytes live (created if missing).
    pub identity_path: PathBuf,
    pub announce_interval: Duration,
    /// Prove every packet received (83 bytes each): senders learn delivery.
    pub prove: bool,
}

/// Announce intervals accepted, in seconds: more often than once a minute floods a shared
/// LoRa Reticulum network (an announce costs ~200 bytes of airtime, and transport nodes
/// rate-limit them); less often than once a day and peers forget the bridge.
pub const ANNOUNCE_INTERVAL_SECS: RangeInclusive<u32> = 60..=86_400;

/// The endpoint runs on the wall clock; waking at least this often lets it notice the clock
/// being set back (see `Endpoint::handle_timeout`).
const CLOCK_CHECK: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reticulum: no rnsd servers configured")]
    NoServers,
    #[error("reticulum: server {0}")]
    BadServer(String),
    #[error(
        "reticulum: announce interval {interval:?} is outside {min}..={max} s",
        interval = .0,
        min = ANNOUNCE_INTERVAL_SECS.start(),
        max = ANNOUNCE_INTERVAL_SECS.end()
    )]
    AnnounceInterval(Duration),
    #[error(transparent)]
    Identity(#[from] IdentityFileError),
    #[error("reticulum: no OS randomness: {0}")]
    Random(getrandom::Error),
}

impl ReticulumConfig {
    /// Checks the values without touching the network or the disk.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        for server in &self.servers {
            crate::config::check_host_port(server).map_err(ConfigError::BadServer)?;
        }
        let secs = u32::try_from(self.announce_interval.as_secs());
        if !secs.is_ok_and(|secs| ANNOUNCE_INTERVAL_SECS.contains(&secs)) {
            return Err(ConfigError::AnnounceInterval(self.announce_interval));
        }
        Ok(())
    }
}

/// What the transport tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReticulumEvent {
    /// The endpoint's events: peers announced or expired, frames received, deliveries.
    Endpoint(Event),
    Connected {
        server: String,
    },
    Disconnected {
        server: String,
        error: String,
    },
}

/// Counters: the endpoint's, plus the shell's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub endpoint: EndpointStats,
    /// HDLC-framed bytes written to / read from all rnsd connections.
    pub wire_bytes_out: u64,
    pub wire_bytes_in: u64,
    pub connected: usize,
    /// Sends refused (no path, frame too large), packets and events dropped on full queues.
    pub send_errors: u64,
    pub dropped: u64,
    /// Frames given to [`Reticulum::send`] while its queue was full.
    pub sends_dropped: u64,
}

enum Command {
    Send { to: Hash16, frame: Vec<u8> },
    Announce,
    Stats(oneshot::Sender<TransportStats>),
}

/// Handle to the running transport. Dropping it stops the driver and its connections.
pub struct Reticulum {
    commands: mpsc::Sender<Command>,
    sends_dropped: Arc<AtomicU64>,
    destination: Hash16,
    task: tokio::task::JoinHandle<()>,
}

/// Events waiting for the daemon; past this they are dropped (and counted), so a daemon that
/// stalls costs frames, which the sync engine recovers, never unbounded memory.
const EVENT_QUEUE: usize = 1024;
/// Frames (and other commands) waiting for the driver: one engine answer is at most a few
/// dozen frames per peer, so this absorbs bursts for many peers at once.
const COMMAND_QUEUE: usize = 1024;

impl Reticulum {
    /// Loads (or creates) the identity and starts connecting. Must run inside a tokio runtime.
    pub fn start(
        config: ReticulumConfig,
        network: NetworkTag,
        topics: Vec<TopicTag>,
    ) -> Result<(Self, mpsc::Receiver<ReticulumEvent>), ConfigError> {
        config.validate()?;
        let identity = load_or_create(&config.identity_path)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(ConfigError::Random)?;
        let mut endpoint_config = EndpointConfig::new(network, topics);
        endpoint_config.announce_interval = config.announce_interval;
        endpoint_config.path_lifetime =
            (config.announce_interval * 4).max(endpoint_config.path_lifetime);
        endpoint_config.prove = config.prove;
        let endpoint = Endpoint::new(identity, endpoint_config, seed);
        let destination = endpoint.destination();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(drive(endpoint, config.servers, command_rx, events_tx));
        Ok((
            Self {
                commands,
                sends_dropped: Arc::new(AtomicU64::new(0)),
                destination,
                task,
            },
            events,
        ))
    }

    /// Our SINGLE destination (`p2panda.bridge.<network tag>`).
    pub fn destination(&self) -> Hash16 {
        self.destination
    }

    /// Queues a mesh frame for a peer. Never waits: a full queue drops the frame (counted in
    /// `sends_dropped`; the engine's summaries recover it) and returns false.
    pub fn send(&self, to: Hash16, frame: Vec<u8>) -> bool {
        let queued = self.commands.try_send(Command::Send { to, frame }).is_ok();
        if !queued {
            self.sends_dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Announces now (the timer also announces every `announce_interval`).
    pub fn announce(&self) {
        let _ = self.commands.try_send(Command::Announce);
    }

    pub async fn stats(&self) -> Option<TransportStats> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stats(tx)).await.ok()?;
        let mut stats = rx.await.ok()?;
        stats.sends_dropped = self.sends_dropped.load(Ordering::Relaxed);
        Some(stats)
    }
}

impl Drop for Reticulum {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

struct Driver {
    endpoint: Endpoint,
    servers: Vec<String>,
    writers: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    events: mpsc::Sender<ReticulumEvent>,
    stats: TransportStats,
}

async fn drive(
    endpoint: Endpoint,
    servers: Vec<String>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ReticulumEvent>,
) {
    let (conn_tx, mut conn_rx) = mpsc::channel(connection::WRITE_QUEUE);
    let connections: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, address)| tokio::spawn(connection::run(i, address.clone(), conn_tx.clone())))
        .collect();
    drop(conn_tx);
    // Abort the connection tasks when the driver ends (or is aborted).
    struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.iter().for_each(|t| t.abort());
        }
    }
    let _connections = AbortOnDrop(connections);
    let mut d = Driver {
        endpoint,
        writers: vec![None; servers.len()],
        servers,
        events,
        stats: TransportStats::default(),
    };
    loop {
        let wait = d
            .endpoint
            .poll_timeout()
            .saturating_sub(unix_now())
            .min(CLOCK_CHECK);
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => d.on_command(command),
                None => return,
            },
            event = conn_rx.recv() => match event {
                Some(event) => d.on_connection(event),
                None => return,
            },
            () = tokio::time::sleep(wait) => d.endpoint.handle_timeout(unix_now()),
        }
        d.flush();
    }
}

impl Driver {
    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { to, frame } => {
                if self.endpoint.send(unix_now(), &to, &frame).is_err() {
                    self.stats.send_errors += 1;
                }
            }
            Command::Announce => self.endpoint.announce(unix_now()),
            Command::Stats(reply) => {
                self.stats.endpoint = self.endpoint.stats();
                self.stats.connected = self.writers.iter().flatten().count();
                let _ = reply.send(self.stats);
            }
        }
    }

    fn on_connection(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Up { server, writer } => {
                self.writers[server] = Some(writer);
                self.endpoint.interface_up(unix_now());
                self.emit(ReticulumEvent::Connected {
                    server: self.servers[server].clone(),
                });
            }
            ConnEvent::Down { server, error } => {
                let was_up = self.writers[server].take().is_some();
                if was_up {
                    self.emit(ReticulumEvent::Disconnected {
                        server: self.servers[server].clone(),
                        error,
                    });
                }
            }
            ConnEvent::Packet { packet } => {
                self.stats.wire_bytes_in +=
                    lorabridge_reticulum::hdlc::encode(&packet).len() as u64;
                // Rejections are counted in the endpoint's stats; nothing else to do.
                let _ = self.endpoint.handle_packet(unix_now(), &packet);
            }
        }
    }

    /// Writes what the endpoint queued to every connection, and passes its events on.
    fn flush(&mut self) {
        while let Some(packet) = self.endpoint.poll_transmit() {
            let framed_len = lorabridge_reticulum::hdlc::encode(&packet).len() as u64;
            for writer in self.writers.iter().flatten() {
                match writer.try_send(packet.clone()) {
                    Ok(()) => self.stats.wire_bytes_out += framed_len,
                    Err(_) => self.stats.dropped += 1,
                }
            }
        }
        while let Some(event) = self.endpoint.poll_event() {
            self.emit(ReticulumEvent::Endpoint(event));
        }
    }

    fn emit(&mut self, event: ReticulumEvent) {
        if self.events.try_send(event).is_err() {
            self.stats.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReticulumConfig {
        ReticulumConfig {
            servers: vec!["127.0.0.1:4242".into()],
            identity_path: PathBuf::from("/nonexistent"),
            announce_interval: Duration::from_secs(600),
            prove: true,
        }
    }

    #[test]
    fn config_errors_are_specific() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.servers.clear();
        assert!(matches!(c.validate(), Err(ConfigError::NoServers)));
        for bad in ["localhost", ":4242", "host:0", "host:99999"] {
            let mut c = config();
            c.servers = vec![bad.into()];
            let Err(ConfigError::BadServer(reason)) = c.validate() else {
                panic!("{bad} accepted");
            };
            assert!(reason.contains(bad), "{reason} names {bad}");
        }
        let mut c = config();
        for bad in [1, 59, 86_401] {
            c.announce_interval = Duration::from_secs(bad);
            assert!(matches!(
                c.validate(),
                Err(ConfigError::AnnounceInterval(_))
            ));
        }
    }
}
