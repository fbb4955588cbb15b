//! The Reticulum transport's async shell: TCP connections to `rnsd` transport nodes around the
//! sans-IO [`Endpoint`] from `lorabridge_reticulum`, and the peers' engine links
//! ([`PeerLinks`], in `peers.rs`).
//!
//! The owner (the daemon's loop) holds the [`Reticulum`] and with it the endpoint, the clock
//! and the random seed; one task per configured rnsd only moves HDLC frames and reconnects
//! with backoff. Every packet we make goes to every connected rnsd (the endpoint does not
//! track interfaces: with one rnsd that is exact, with several it costs duplicates that
//! receivers drop by hash).
//!
//! ```ignore
//! let mut rns = Reticulum::start(config, network_tag, topic_tags)?;
//! while let Some(event) = rns.next_event().await { /* PeerAnnounced → PeerLinks::on_peer … */ }
//! rns.send(peer, &frame)?;   // a mesh frame ≤ MAX_FRAME from engine.poll_transmit
//! ```

mod connection;
mod identity_file;
mod peers;

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_reticulum::{Endpoint, EndpointConfig, EndpointStats, Event, Hash16};
use tokio::sync::mpsc;

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
    /// Frames the endpoint refused ([`SendError::Endpoint`]: no path, frame too large).
    pub send_errors: u64,
    /// Packets dropped because a connection's write queue was full (a stalled rnsd).
    pub dropped: u64,
}

/// Why [`Reticulum::send`] did not take a frame. The frame is not sent; the caller keeps it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("no rnsd connected")]
    NotConnected,
    #[error(transparent)]
    Endpoint(#[from] lorabridge_reticulum::SendError),
}

/// The running transport: the endpoint, owned by whoever drives it (the daemon's loop owns it
/// beside the sync engine, so a frame to a peer is a call that says whether it was taken),
/// and the connection tasks, which only move bytes. Dropping it stops the connections.
pub struct Reticulum {
    endpoint: Endpoint,
    servers: Vec<String>,
    /// The write queue of each connection that is up.
    writers: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    connections: mpsc::Receiver<ConnEvent>,
    /// Connection changes not yet taken by `next_event` (at most one per connection event).
    changes: VecDeque<ReticulumEvent>,
    /// When the endpoint's timers are looked at next at the latest (`CLOCK_CHECK`). Kept
    /// across calls of `next_event`, so that an owner woken more often does not put it off.
    check_at: tokio::time::Instant,
    stats: TransportStats,
    _tasks: AbortOnDrop,
}

/// Aborts the connection tasks when the transport is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|t| t.abort());
    }
}

impl Reticulum {
    /// Loads (or creates) the identity and starts connecting. Must run inside a tokio runtime.
    pub fn start(
        config: ReticulumConfig,
        network: NetworkTag,
        topics: Vec<TopicTag>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let identity = load_or_create(&config.identity_path)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(ConfigError::Random)?;
        let mut endpoint_config = EndpointConfig::new(network, topics);
        endpoint_config.announce_interval = config.announce_interval;
        endpoint_config.path_lifetime =
            (config.announce_interval * 4).max(endpoint_config.path_lifetime);
        endpoint_config.prove = config.prove;
        let (conn_tx, connections) = mpsc::channel(connection::WRITE_QUEUE);
        let tasks = config
            .servers
            .iter()
            .enumerate()
            .map(|(i, address)| tokio::spawn(connection::run(i, address.clone(), conn_tx.clone())))
            .collect();
        Ok(Self {
            endpoint: Endpoint::new(identity, endpoint_config, seed),
            writers: vec![None; config.servers.len()],
            servers: config.servers,
            connections,
            changes: VecDeque::new(),
            check_at: tokio::time::Instant::now() + CLOCK_CHECK,
            stats: TransportStats::default(),
            _tasks: AbortOnDrop(tasks),
        })
    }

    /// Our SINGLE destination (`p2panda.bridge.<network tag>`).
    pub fn destination(&self) -> Hash16 {
        self.endpoint.destination()
    }

    /// Whether any rnsd connection is up (a frame can go out).
    pub fn is_connected(&self) -> bool {
        self.writers.iter().any(Option::is_some)
    }

    /// Sends a mesh frame (≤ [`MAX_FRAME`]) to a peer, encrypted to it, through every
    /// connected rnsd. Never waits. On an error nothing was sent, and the caller keeps the
    /// frame (the engine puts it back in its queue).
    pub fn send(&mut self, to: Hash16, frame: &[u8]) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::NotConnected);
        }
        let sent = self.endpoint.send(unix_now(), &to, frame);
        if sent.is_err() {
            self.stats.send_errors += 1;
        }
        self.flush();
        sent.map(|_| ()).map_err(SendError::from)
    }

    /// Announces now (the endpoint also announces every `announce_interval`).
    pub fn announce(&mut self) {
        self.endpoint.announce(unix_now());
        self.flush();
    }

    pub fn stats(&self) -> TransportStats {
        TransportStats {
            endpoint: self.endpoint.stats(),
            connected: self.writers.iter().flatten().count(),
            ..self.stats
        }
    }

    /// Waits for what the transport has to say: a peer announced, a frame received, a
    /// connection up or down. Meanwhile it handles packets from rnsd and the endpoint's
    /// timers (announces, path requests). Cancel-safe: an event is never lost to a dropped
    /// future. Returns `None` only if every connection task ended, which they never do while
    /// the transport lives.
    pub async fn next_event(&mut self) -> Option<ReticulumEvent> {
        loop {
            if let Some(change) = self.changes.pop_front() {
                return Some(change);
            }
            if let Some(event) = self.endpoint.poll_event() {
                return Some(ReticulumEvent::Endpoint(event));
            }
            let due = self.endpoint.poll_timeout().saturating_sub(unix_now());
            let wake = self.check_at.min(tokio::time::Instant::now() + due);
            tokio::select! {
                event = self.connections.recv() => self.on_connection(event?),
                () = tokio::time::sleep_until(wake) => {
                    self.endpoint.handle_timeout(unix_now());
                    self.check_at = tokio::time::Instant::now() + CLOCK_CHECK;
                }
            }
            self.flush();
        }
    }

    fn on_connection(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Up { server, writer } => {
                self.writers[server] = Some(writer);
                self.endpoint.interface_up(unix_now());
                self.changes.push_back(ReticulumEvent::Connected {
                    server: self.servers[server].clone(),
                });
            }
            ConnEvent::Down { server, error } => {
                if self.writers[server].take().is_some() {
                    self.changes.push_back(ReticulumEvent::Disconnected {
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

    /// Writes what the endpoint queued to every connection. A full write queue (a stalled
    /// rnsd) drops the packet, counted: the engine's summaries recover lost frames.
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
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
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

    /// The transport in a temporary directory, connecting to `server`.
    fn transport(server: String, dir: &tempfile::TempDir) -> Reticulum {
        let config = ReticulumConfig {
            servers: vec![server],
            identity_path: dir.path().join("id"),
            ..config()
        };
        Reticulum::start(config, NetworkTag([1, 2]), vec![TopicTag([3, 4])]).unwrap()
    }

    #[tokio::test]
    async fn a_frame_is_refused_with_a_reason_while_it_cannot_go() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Hash16([9; 16]);
        // Nothing listens on a port just freed: no rnsd, so the frame stays with the caller.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut rns = transport(closed.local_addr().unwrap().to_string(), &dir);
        drop(closed);
        assert_eq!(rns.send(peer, b"frame"), Err(SendError::NotConnected));

        // Connected, but the peer never announced: the endpoint has no path and says so.
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut rns = transport(server.local_addr().unwrap().to_string(), &dir);
        let (_conn, _) = server.accept().await.unwrap();
        let connected = rns.next_event().await;
        assert!(matches!(connected, Some(ReticulumEvent::Connected { .. })));
        assert!(rns.is_connected());
        assert_eq!(
            rns.send(peer, b"frame"),
            Err(SendError::Endpoint(
                lorabridge_reticulum::SendError::NoPath(peer)
            ))
        );
        let stats = rns.stats();
        assert_eq!((stats.send_errors, stats.connected), (1, 1));
        assert_eq!(stats.endpoint.data_sent, 0);
    }
}
