//! Drives the sync engine in real time over the mesh transports: the daemon's side of the
//! sans-IO engine. One engine serves every transport, so an operation heard on the radio is
//! offered to Reticulum peers and the other way round:
//!
//! - the LoRa radio is one broadcast link;
//! - Reticulum is one link per peer bridge learned from announces (a SINGLE packet reaches one
//!   peer only, so each peer must be its own link for the engine to know who heard what).
//!
//! Frames heard and local operations go in; frames to send and operations to import come out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use lorabridge_proto::RawOp;
use lorabridge_proto::engine::{Engine, Event, LinkId, MemoryStore, Neighbour, Stats};
use lorabridge_proto::reticulum::{Event as PeerEvent, PeerLinkError};
use lorabridge_radio::{Radio, RxFrame};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::reticulum::{PeerLinks, Reticulum, ReticulumEvent};
use crate::state::State;
use crate::topic::{Command, TopicHandle};

/// The transport name operations from the radio are recorded under.
pub const LORA: &str = "lora";
/// The transport name operations from Reticulum peers are recorded under.
pub const RETICULUM: &str = "reticulum";

/// Reticulum peers the engine keeps links for: the engine cannot drop a link, so a neighbourhood
/// that churns through more peer identities than this stops adding them (and says so).
pub const MAX_RETICULUM_PEERS: usize = 64;

/// The radio and its engine link.
pub struct RadioPort {
    pub link: LinkId,
    pub radio: Arc<dyn Radio>,
}

/// The Reticulum transport, its events and one engine link per peer bridge.
pub struct ReticulumPort {
    pub rns: Reticulum,
    pub events: mpsc::Receiver<ReticulumEvent>,
    pub peers: PeerLinks,
    /// The topics carried over Reticulum; a peer's link carries those the peer announced too.
    pub topics: Vec<[u8; 32]>,
    /// The rnsd servers currently connected.
    pub connected: BTreeSet<String>,
}

impl ReticulumPort {
    pub fn new(
        rns: Reticulum,
        events: mpsc::Receiver<ReticulumEvent>,
        topics: Vec<[u8; 32]>,
    ) -> Self {
        Self {
            rns,
            events,
            peers: PeerLinks::new(MAX_RETICULUM_PEERS),
            topics,
            connected: BTreeSet::new(),
        }
    }
}

/// The counters the status API shows for a transport (summed over its links).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_sent: u64,
    pub frames_heard: u64,
    pub frames_rejected: u64,
    pub ops_received: u64,
    pub ops_sent: u64,
}

impl Counters {
    fn add(&mut self, s: &Stats) {
        self.frames_sent += s.frames_sent;
        self.frames_heard += s.frames_heard;
        self.frames_rejected += s.frames_rejected;
        self.ops_received += s.ops_received;
        self.ops_sent += s.ops_sent;
    }
}

/// What the status API shows of one mesh transport.
#[derive(Clone, Debug, Default)]
pub struct TransportView {
    pub state: String,
    pub counters: Counters,
    pub neighbours: Vec<(Neighbour, Duration)>,
    pub queue_depth: usize,
    pub airtime: Vec<lorabridge_hardware::SubBandUsage>,
}

/// What the status API shows of the mesh.
#[derive(Clone, Debug, Default)]
pub struct MeshStatus {
    pub lora: Option<TransportView>,
    pub reticulum: Option<TransportView>,
    pub ops_per_topic: HashMap<[u8; 32], u64>,
}

pub struct Mesh {
    pub engine: Engine<MemoryStore>,
    pub radio: Option<RadioPort>,
    pub reticulum: Option<ReticulumPort>,
    pub topics: HashMap<[u8; 32], TopicHandle>,
    pub state: State,
}

/// What woke the loop.
enum Wake {
    Radio(Option<RxFrame>),
    Reticulum(Option<ReticulumEvent>),
    Local([u8; 32], RawOp),
    Timer,
    Shutdown,
}

impl Mesh {
    /// Runs until `shutdown` flips; `local` carries new local and iroh operations.
    pub async fn run(
        mut self,
        mut local: mpsc::Receiver<([u8; 32], RawOp)>,
        status: watch::Sender<MeshStatus>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let start = Instant::now();
        let mut next_status = start;
        loop {
            self.transmit(start.elapsed()).await;
            while let Some(event) = self.engine.poll_event() {
                self.on_event(event).await;
            }
            if Instant::now() >= next_status {
                let _ = status.send(self.status(start.elapsed()));
                next_status = Instant::now() + Duration::from_secs(1);
            }
            let wake = self
                .engine
                .poll_timeout()
                .map_or(next_status, |t| (start + t).min(next_status));
            let radio = self.radio.as_ref().map(|r| r.radio.clone());
            let woke = tokio::select! {
                frame = async { match &radio { Some(r) => r.recv().await, None => std::future::pending().await } } => Wake::Radio(frame),
                event = async { match &mut self.reticulum { Some(r) => r.events.recv().await, None => std::future::pending().await } } => Wake::Reticulum(event),
                Some((topic, op)) = local.recv() => Wake::Local(topic, op),
                () = tokio::time::sleep_until(wake) => Wake::Timer,
                _ = shutdown.changed() => Wake::Shutdown,
            };
            let now = start.elapsed();
            match woke {
                Wake::Radio(Some(frame)) => {
                    if let Some(port) = &self.radio {
                        let signal = frame
                            .rssi_dbm
                            .map(|r| (f32::from(r), frame.snr_db.unwrap_or(0.0)));
                        self.engine
                            .handle_frame(now, port.link, &frame.payload, signal);
                    }
                }
                Wake::Radio(None) => {
                    tracing::error!("the radio closed");
                    break;
                }
                Wake::Reticulum(Some(event)) => self.on_reticulum(now, event),
                Wake::Reticulum(None) => {
                    tracing::error!("the Reticulum transport stopped");
                    self.reticulum = None;
                }
                Wake::Local(topic, op) => {
                    if let Err(e) = self.engine.handle_local_op(now, &topic, op) {
                        tracing::warn!("cannot offer a local operation to the mesh: {e}");
                    }
                }
                Wake::Timer => self.engine.handle_timeout(now),
                Wake::Shutdown => break,
            }
        }
        if let Some(port) = &self.radio
            && let Err(e) = port.radio.shutdown().await
        {
            tracing::warn!("radio shutdown: {e}");
        }
    }

    /// Sends every frame the engine has ready, on every link.
    async fn transmit(&mut self, now: Duration) {
        if let Some(port) = &self.radio {
            while let Some(frame) = self.engine.poll_transmit(now, port.link) {
                if let Err(e) = port.radio.send(&frame).await {
                    tracing::warn!("radio send failed: {e}");
                }
            }
        }
        if let Some(port) = &self.reticulum {
            for (peer, link) in port.peers.iter() {
                while let Some(frame) = self.engine.poll_transmit(now, link) {
                    if !port.rns.send(peer, frame) {
                        // Counted by the transport; the engine's summaries recover the frame.
                        tracing::warn!("Reticulum send queue full: a frame to {peer} dropped");
                    }
                }
            }
        }
    }

    fn on_reticulum(&mut self, now: Duration, event: ReticulumEvent) {
        let Some(port) = &mut self.reticulum else {
            return;
        };
        match event {
            ReticulumEvent::Endpoint(PeerEvent::PeerAnnounced { peer, topics, hops }) => match port
                .peers
                .on_peer(&mut self.engine, now, peer, &topics, &port.topics)
            {
                Ok(_) => tracing::debug!(%peer, hops, "Reticulum peer bridge"),
                Err(PeerLinkError::NoCommonTopic) => {
                    tracing::debug!(%peer, "Reticulum peer carries none of our topics")
                }
                Err(e) => tracing::warn!(%peer, "Reticulum peer ignored: {e}"),
            },
            ReticulumEvent::Endpoint(PeerEvent::Received { from, frame }) => {
                match port.peers.link(&from) {
                    Some(link) => self.engine.handle_frame(now, link, &frame, None),
                    // The endpoint asks rnsd for the sender's path; its announce follows.
                    None => tracing::debug!(%from, "a frame from a peer not yet announced"),
                }
            }
            ReticulumEvent::Endpoint(PeerEvent::PeerExpired { peer }) => {
                tracing::debug!(%peer, "Reticulum path expired")
            }
            ReticulumEvent::Endpoint(
                PeerEvent::Delivered { .. } | PeerEvent::Undelivered { .. },
            ) => {}
            ReticulumEvent::Connected { server } => {
                tracing::info!(%server, "connected to rnsd");
                port.connected.insert(server);
            }
            ReticulumEvent::Disconnected { server, error } => {
                tracing::warn!(%server, "rnsd connection lost: {error}");
                port.connected.remove(&server);
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Received {
                link, topic, op, ..
            } => {
                let lora = self.radio.as_ref().is_some_and(|p| p.link == link);
                // Only the radio's heard set is reloaded on restart (it stops echoes on the
                // shared channel); Reticulum peer links are rebuilt from announces.
                if lora && let Err(e) = self.state.record_heard(LORA, &op.id()).await {
                    tracing::warn!("cannot record a heard operation: {e}");
                }
                let via = if lora { LORA } else { RETICULUM };
                if let Some(handle) = self.topics.get(&topic) {
                    let _ = handle.commands.send(Command::Import { op, via }).await;
                }
            }
            Event::Rejected { link, reason } => {
                tracing::debug!(?link, "rejected from the mesh: {reason:?}")
            }
        }
    }

    fn status(&self, now: Duration) -> MeshStatus {
        use lorabridge_proto::engine::OpStore;
        MeshStatus {
            lora: self.radio.as_ref().map(|port| {
                let mut view = self.view(now, [port.link]);
                view.state = format!("{:?}", port.radio.state()).to_lowercase();
                view.airtime = self
                    .engine
                    .ledger(port.link)
                    .map(|l| l.summary(now))
                    .unwrap_or_default();
                view
            }),
            reticulum: self.reticulum.as_ref().map(|port| {
                let mut view = self.view(now, port.peers.iter().map(|(_, link)| link));
                view.state = if port.connected.is_empty() {
                    "connecting".into()
                } else {
                    "connected".into()
                };
                view
            }),
            ops_per_topic: self
                .topics
                .keys()
                .map(|t| {
                    (
                        *t,
                        self.engine.store().heights(t).iter().map(|(_, h)| h).sum(),
                    )
                })
                .collect(),
        }
    }

    /// Counters, neighbours and queue summed over `links`.
    fn view(&self, now: Duration, links: impl IntoIterator<Item = LinkId>) -> TransportView {
        let mut view = TransportView::default();
        for link in links {
            view.counters.add(&self.engine.stats(link));
            view.queue_depth += self.engine.queue_depth(link);
            view.neighbours.extend(
                self.engine
                    .neighbours(link)
                    .iter()
                    .map(|n| (*n, now.saturating_sub(n.last_heard))),
            );
        }
        view
    }
}
