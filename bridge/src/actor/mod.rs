//! The bridge's one actor: it owns the p2panda topic streams, the sans-IO sync engine (with
//! its view of the node's database) and the mesh transports, and it never waits on slow work.
//!
//! Why one actor: the engine, the streams and the transports hand operations to each other
//! all the time (an op heard on the radio is imported, then offered to Reticulum peers; an op
//! synced over iroh is offered to the radio). Owned by one loop, each hand-off is a call, so
//! nothing can fill up between them and no two tasks can wait on each other. Everything slow
//! (publishes, imports and acks in p2panda, stream renewals, radio transmissions, database
//! reads) runs as a future in [`Work`] beside the loop, and its result comes back as a
//! [`Done`]. The loop itself only decides.
//!
//! One operation from Publish to the radio, in three hand-offs:
//! 1. the gRPC handler sends [`Command::Publish`] to the actor, which starts the publish;
//! 2. p2panda's stream delivers the processed operation; the actor hands it to subscribers
//!    and to the engine (`handle_local_op`), which queues it on every link;
//! 3. the engine's frame goes to the radio driver ([`radio::RadioPort`]).
//!
//! Back-pressure, so memory stays bounded whatever neighbours send: while more than
//! `MAX_IMPORT_BACKLOG` operations from the mesh wait to be imported, the actor stops reading
//! frames (the radio driver's bounded queue then drops frames as the air would, and the
//! engine's summaries repair the loss later).

pub mod radio;
pub mod reticulum;
mod sessions;
pub mod status;
pub mod store;
pub mod topics;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lorabridge_proto::RawOp;
use lorabridge_proto::compact::MAX_OP_BYTES;
use lorabridge_proto::engine::{Engine, EngineTime, Event, Rejection};
use lorabridge_radio::{RadioError, RxFrame};
use p2panda::Node;
use p2panda::streams::StreamPublisher;
use p2panda_store::SqliteStore;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::bridge_db::BridgeDbWriter;
use crate::error::PublishError;
use crate::reticulum::ReticulumEvent;
use radio::RadioPort;
use reticulum::ReticulumPort;
use status::{IrohView, TransportView, Transports};
use store::{NodeStore, OpKey};
use topics::{Import, News, Topics};

/// The transport name operations from the radio are recorded under.
pub const LORA: &str = "lora";
/// The transport name operations from Reticulum peers are recorded under.
pub const RETICULUM: &str = "reticulum";

/// Operations from the mesh waiting for the node, past which the actor stops reading frames.
pub const MAX_IMPORT_BACKLOG: usize = 1024;
/// An iroh peer counts as connected this long after it was last seen syncing with us or in
/// a discovery session: p2panda 0.7 tells when a session fails, but not when one ends well,
/// and its discovery walks meet every reachable peer every few minutes.
const IROH_PEER_MEMORY: Duration = Duration::from_secs(300);
/// Peers remembered before the ones not seen lately are forgotten.
const MAX_IROH_PEERS: usize = 1024;
/// Where the engine's clock starts: past the duty-cycle window, so that the radio's sends of
/// the hour before a restart are restored at their times.
pub const ENGINE_EPOCH: EngineTime = EngineTime::from_start(Duration::from_secs(2 * 3600));
/// How often the status is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Longest wait at shutdown for the work in flight (acks, publishes) to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Work running beside the loop.
pub type WorkItem = BoxFuture<'static, Done>;
pub type Work = FuturesUnordered<WorkItem>;

/// What a piece of [`Work`] came back with.
pub enum Done {
    Published {
        topic: [u8; 32],
        reply: oneshot::Sender<Result<[u8; 32], PublishError>>,
        result: Result<[u8; 32], PublishError>,
    },
    ImportStarted {
        topic: [u8; 32],
        result: Result<(), String>,
    },
    Opened {
        topic: [u8; 32],
        result: Result<
            (
                StreamPublisher<Vec<u8>>,
                p2panda::streams::StreamSubscription<Vec<u8>>,
            ),
            String,
        >,
    },
    Acked {
        topic: [u8; 32],
    },
    Fetched(Vec<(OpKey, Option<RawOp>)>),
    RadioSent(Result<(), RadioError>),
}

/// What the gRPC API asks of the actor.
pub enum Command {
    /// Publish `payload` as this node's next operation in `topic`; the reply comes once the
    /// node has persisted it.
    Publish {
        topic: [u8; 32],
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<[u8; 32], PublishError>>,
    },
}

/// What woke the loop.
enum Wake {
    Command(Command),
    Stream([u8; 32], Option<p2panda::streams::StreamEvent<Vec<u8>>>),
    Done(Done),
    Radio(Option<RxFrame>),
    Reticulum(Option<ReticulumEvent>),
    Discovery(Option<p2panda::streams::SystemEvent>),
    Timer,
    Shutdown,
}

/// See the module docs.
pub struct Actor {
    pub node: Arc<Node>,
    /// The node's database, for fetching operations the engine wants to send.
    pub db: SqliteStore,
    pub engine: Engine<NodeStore>,
    /// The topics carried over a mesh transport (the others are not offered to the engine).
    pub mesh_topics: HashSet<[u8; 32]>,
    pub topics: Topics,
    pub radio: Option<RadioPort>,
    pub reticulum: Option<ReticulumPort>,
    /// The bridge's own database: heard ids, radio sends.
    pub bridge_db: BridgeDbWriter,
    /// Whether iroh can find peers at all (for the status).
    pub iroh: bool,
    /// The node's discovery sessions, which tell which iroh peers are reachable.
    pub discovery: Option<futures_util::stream::BoxStream<'static, p2panda::streams::SystemEvent>>,
}

/// The actor's state while it runs.
struct Running {
    actor: Actor,
    work: Work,
    fetching: bool,
    /// iroh peers and when they were last seen syncing with us or in discovery.
    iroh_peers: HashMap<[u8; 32], Instant>,
    /// Operations rejected per mesh transport, for the status.
    ops_rejected: HashMap<&'static str, u64>,
    start: Instant,
}

impl Actor {
    /// Runs until `shutdown` flips: takes commands, publishes the status every second.
    pub async fn run(
        self,
        mut commands: mpsc::Receiver<Command>,
        status: watch::Sender<Transports>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut running = Running {
            actor: self,
            work: Work::new(),
            fetching: false,
            iroh_peers: HashMap::new(),
            ops_rejected: HashMap::new(),
            start: Instant::now(),
        };
        let mut next_status = Instant::now();
        loop {
            let now = Instant::now();
            let due = running.turn(now);
            if now >= next_status {
                status.send_replace(running.status(now));
                next_status = now + STATUS_EVERY;
            }
            let engine_due = running
                .actor
                .engine
                .poll_timeout()
                .map(|t| running.start + t.duration_since(ENGINE_EPOCH));
            let wake = [due, engine_due, Some(next_status)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_status);
            let accepting = running.actor.topics.backlog() < MAX_IMPORT_BACKLOG;
            let woke = running
                .wait(&mut commands, &mut shutdown, wake, accepting)
                .await;
            let now = Instant::now();
            match woke {
                Wake::Command(command) => running.on_command(command),
                Wake::Stream(topic, Some(event)) => {
                    let mut news = Vec::new();
                    running.actor.topics.on_event(topic, event, now, &mut news);
                    running.apply(now, news);
                }
                Wake::Stream(topic, None) => running.actor.topics.on_stream_ended(&topic, now),
                Wake::Done(done) => running.on_done(now, done),
                Wake::Radio(Some(frame)) => running.on_frame(now, frame),
                Wake::Radio(None) => {
                    tracing::error!("the radio driver stopped; the bridge goes on without it");
                    running.actor.radio = None;
                }
                Wake::Reticulum(Some(event)) => {
                    let elapsed = running.engine_time(now);
                    if let Some(port) = &mut running.actor.reticulum {
                        port.on_event(&mut running.actor.engine, elapsed, event);
                    }
                }
                Wake::Reticulum(None) => {
                    tracing::error!("the Reticulum transport stopped");
                    running.actor.reticulum = None;
                }
                Wake::Discovery(Some(p2panda::streams::SystemEvent::Discovery(event))) => {
                    use p2panda_net::discovery::DiscoveryEvent;
                    match event {
                        DiscoveryEvent::SessionEnded { remote_node_id, .. } => {
                            running.iroh_peer(now, *remote_node_id.as_bytes(), true)
                        }
                        DiscoveryEvent::SessionFailed { remote_node_id, .. } => {
                            running.iroh_peer(now, *remote_node_id.as_bytes(), false)
                        }
                        DiscoveryEvent::SessionStarted { .. } => {}
                    }
                }
                Wake::Discovery(None) => running.actor.discovery = None,
                Wake::Timer => {
                    let elapsed = running.engine_time(now);
                    running.actor.engine.handle_timeout(elapsed);
                }
                Wake::Shutdown => break,
            }
        }
        running.stop().await;
    }
}

impl Running {
    /// The engine's clock: time since the start, plus `ENGINE_EPOCH`, so that sends restored
    /// from before the start have a place on it.
    fn engine_time(&self, now: Instant) -> EngineTime {
        ENGINE_EPOCH + now.duration_since(self.start)
    }

    async fn wait(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        shutdown: &mut watch::Receiver<bool>,
        wake: Instant,
        accepting: bool,
    ) -> Wake {
        let radio = self.actor.radio.as_ref().map(|r| r.radio.clone());
        let topics = &mut self.actor.topics;
        let work = &mut self.work;
        let reticulum = &mut self.actor.reticulum;
        let discovery = &mut self.actor.discovery;
        tokio::select! {
            event = async { match discovery { Some(d) => d.next().await, None => std::future::pending().await } } => Wake::Discovery(event),
            Some(command) = commands.recv() => Wake::Command(command),
            (topic, event) = topics.next_event() => Wake::Stream(topic, event),
            Some(done) = work.next(), if !work.is_empty() => Wake::Done(done),
            frame = async { match &radio { Some(r) => r.recv().await, None => std::future::pending().await } }, if accepting => Wake::Radio(frame),
            event = async { match reticulum { Some(r) => r.rns.next_event().await, None => std::future::pending().await } }, if accepting => Wake::Reticulum(event),
            () = tokio::time::sleep_until(wake) => Wake::Timer,
            _ = shutdown.changed() => Wake::Shutdown,
        }
    }

    /// Everything the loop does between wake-ups: hands what the engine received to the
    /// topics, starts due imports, acks and renewals, sends what may go, starts fetches.
    /// Returns the earliest instant something becomes due that the engine does not know of.
    fn turn(&mut self, now: Instant) -> Option<Instant> {
        let elapsed = self.engine_time(now);
        self.drain_engine();
        let mut news = Vec::new();
        let topics_due = self.actor.topics.poll(now, &mut self.work, &mut news);
        self.apply(now, news);
        let radio_due = match &mut self.actor.radio {
            Some(port) => port.transmit(
                &mut self.actor.engine,
                elapsed,
                now,
                &mut self.work,
                &self.actor.bridge_db,
            ),
            None => None,
        };
        if let Some(port) = &mut self.actor.reticulum {
            port.transmit(&mut self.actor.engine, elapsed);
        }
        if !self.fetching {
            let keys = self.actor.engine.store_mut().take_requests();
            if !keys.is_empty() {
                tracing::debug!(operations = keys.len(), "fetching from the node's database");
                self.fetching = true;
                let db = self.actor.db.clone();
                self.work
                    .push(async move { Done::Fetched(store::fetch(db, keys).await) }.boxed());
            }
        }
        [topics_due, radio_due].into_iter().flatten().min()
    }

    /// Operations the engine received go to their topic's import backlog.
    fn drain_engine(&mut self) {
        let radio_link = self.actor.radio.as_ref().map(|r| r.link);
        // The radio has one link; every other link is a Reticulum peer's.
        let transport = |link| {
            if Some(link) == radio_link {
                LORA
            } else {
                RETICULUM
            }
        };
        while let Some(event) = self.actor.engine.poll_event() {
            match event {
                Event::Received {
                    link,
                    topic,
                    author,
                    seq,
                    op,
                } => {
                    let via = transport(link);
                    if via == LORA {
                        // Persisted so that the radio never echoes it, even after a restart.
                        self.actor.bridge_db.heard(LORA, op.id());
                    }
                    let key = (topic, author, seq);
                    self.actor.topics.import(&topic, Import { key, op, via });
                }
                Event::Rejected { link, reason } => {
                    if matches!(reason, Rejection::Op(_) | Rejection::Fork { .. }) {
                        *self.ops_rejected.entry(transport(link)).or_default() += 1;
                    }
                    tracing::debug!(?link, "rejected from the mesh: {reason:?}")
                }
                Event::Retagged { from, to } => tracing::info!(
                    "a neighbour sends with this bridge's mesh tag {:02x}{:02x}: it is now \
                     {:02x}{:02x}",
                    from.0[0],
                    from.0[1],
                    to.0[0],
                    to.0[1]
                ),
            }
        }
    }

    /// Acts on what the topic streams said.
    fn apply(&mut self, now: Instant, news: Vec<News>) {
        let elapsed = self.engine_time(now);
        for news in news {
            match news {
                News::Persisted { key, op, from_mesh } => {
                    let topic = key.0;
                    if !from_mesh && self.actor.mesh_topics.contains(&topic) {
                        if op.canonical_len() > MAX_OP_BYTES {
                            tracing::warn!(
                                topic = %hex::encode(topic),
                                bytes = op.canonical_len(),
                                "an operation larger than the mesh carries: its body stays on iroh, its header crosses"
                            );
                        }
                        if let Err(e) = self.actor.engine.handle_local_op(elapsed, &topic, op) {
                            tracing::warn!("cannot offer an operation to the mesh: {e}");
                        }
                    }
                    self.actor.engine.store_mut().persisted(&key);
                }
                News::Refused { key, reason } => {
                    tracing::warn!(
                        topic = %hex::encode(key.0),
                        "the node refused an operation from the mesh: {reason}"
                    );
                    self.actor.engine.store_mut().refused(&key);
                }
                News::IrohPeer { peer, reachable } => self.iroh_peer(now, peer, reachable),
            }
        }
    }

    /// A peer was seen syncing or in discovery (`reachable`), or failed to be reached.
    fn iroh_peer(&mut self, now: Instant, peer: [u8; 32], reachable: bool) {
        if reachable {
            self.iroh_peers.insert(peer, now);
        } else {
            self.iroh_peers.remove(&peer);
        }
        if self.iroh_peers.len() > MAX_IROH_PEERS {
            self.iroh_peers
                .retain(|_, seen| now.duration_since(*seen) < IROH_PEER_MEMORY);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                topic,
                payload,
                reply,
            } => self
                .actor
                .topics
                .publish(&topic, payload, reply, &mut self.work),
        }
    }

    fn on_done(&mut self, now: Instant, done: Done) {
        let elapsed = self.engine_time(now);
        match done {
            Done::Published {
                topic,
                reply,
                result,
            } => {
                self.actor.topics.on_published(&topic);
                let _ = reply.send(result);
            }
            Done::ImportStarted { topic, result } => {
                if let Err(reason) = result {
                    self.actor.topics.on_import_failed(&topic, &reason, now);
                }
            }
            Done::Opened { topic, result } => {
                self.actor.topics.on_opened(topic, result, &mut self.work)
            }
            Done::Acked { topic } => self.actor.topics.on_acked(&topic),
            Done::Fetched(found) => {
                let held = found.iter().filter(|(_, op)| op.is_some()).count();
                tracing::debug!(
                    held,
                    asked = found.len(),
                    "fetched from the node's database"
                );
                self.fetching = false;
                for (key, op) in found {
                    self.actor.engine.store_mut().fulfil(key, op);
                }
            }
            Done::RadioSent(result) => {
                if let Some(port) = &mut self.actor.radio {
                    port.on_sent(&mut self.actor.engine, elapsed, now, result);
                }
            }
        }
    }

    fn on_frame(&mut self, now: Instant, frame: RxFrame) {
        let elapsed = self.engine_time(now);
        if let Some(port) = &self.actor.radio {
            let signal = frame
                .rssi_dbm
                .map(|r| (f32::from(r), frame.snr_db.unwrap_or(0.0)));
            self.actor
                .engine
                .handle_frame(elapsed, port.link, &frame.payload, signal);
        }
    }

    fn status(&self, now: Instant) -> Transports {
        let elapsed = self.engine_time(now);
        let engine = &self.actor.engine;
        Transports {
            iroh: IrohView {
                enabled: self.actor.iroh,
                peers: self
                    .iroh_peers
                    .iter()
                    .filter(|(_, seen)| now.duration_since(**seen) < IROH_PEER_MEMORY)
                    .map(|(peer, _)| *peer)
                    .collect(),
            },
            lora: self.actor.radio.as_ref().map(|port| {
                let state = format!("{:?}", port.radio.state()).to_lowercase();
                let mut view = TransportView::of(engine, elapsed, state, [port.link]);
                view.airtime = engine.airtime_used(port.link, elapsed).unwrap_or_default();
                view.ops_rejected = self.ops_rejected.get(LORA).copied().unwrap_or(0);
                view
            }),
            reticulum: self.actor.reticulum.as_ref().map(|port| {
                let state = if port.rns.is_connected() {
                    "connected"
                } else {
                    "connecting"
                };
                let links = port.peers.iter().map(|(_, link)| link);
                let mut view = TransportView::of(engine, elapsed, state.into(), links);
                view.counters += port.peers.retired();
                view.peers = port.peers.iter().map(|(peer, _)| peer.0.to_vec()).collect();
                view.ops_rejected = self.ops_rejected.get(RETICULUM).copied().unwrap_or(0);
                view
            }),
            import_backlog: self.actor.topics.backlog(),
        }
    }

    /// Lets the radio finish its frame, and the acks and publishes in flight finish (within
    /// `SHUTDOWN_GRACE`), so that what was delivered is acknowledged.
    async fn stop(mut self) {
        let finish = async {
            while let Some(done) = self.work.next().await {
                if let Done::Published { reply, result, .. } = done {
                    let _ = reply.send(result);
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
            tracing::debug!("work still in flight at shutdown was dropped");
        }
        if let Some(port) = &self.actor.radio
            && let Err(e) = port.radio.shutdown().await
        {
            tracing::warn!("radio shutdown: {e}");
        }
    }
}
