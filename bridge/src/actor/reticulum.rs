//! The Reticulum transport as the actor drives it: one engine link per peer bridge learned
//! from announces (a SINGLE packet reaches one peer only, so each peer must be its own link
//! for the engine to know who heard what).

use std::collections::BTreeSet;
use std::time::Duration;

use lorabridge_proto::engine::{Engine, OpStore};
use lorabridge_reticulum::Event as PeerEvent;
use tokio::sync::mpsc;

use crate::reticulum::{PeerLinkError, PeerLinks, Reticulum, ReticulumEvent};

/// Reticulum peers the engine keeps links for; past this, a new peer takes the link of the
/// one heard from longest ago (see `PeerLinks`).
pub const MAX_RETICULUM_PEERS: usize = 64;

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

    /// Sends what the engine has for each peer. The transport's queue never waits: a frame it
    /// refuses goes back to the engine's queue, and that peer gets nothing more this turn.
    pub fn transmit<S: OpStore>(&self, engine: &mut Engine<S>, elapsed: Duration) {
        for (peer, link) in self.peers.iter() {
            while let Some(frame) = engine.poll_transmit(elapsed, link) {
                let queued = self.rns.send(peer, frame);
                engine.handle_transmitted(elapsed, link, queued);
                if !queued {
                    tracing::warn!("Reticulum send queue full: a frame to {peer} waits");
                    break;
                }
            }
        }
    }

    pub fn on_event<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        elapsed: Duration,
        event: ReticulumEvent,
    ) {
        match event {
            ReticulumEvent::Endpoint(PeerEvent::PeerAnnounced { peer, topics, hops }) => match self
                .peers
                .on_peer(engine, elapsed, peer, &topics, &self.topics)
            {
                Ok(_) => tracing::debug!(%peer, hops, "Reticulum peer bridge"),
                Err(PeerLinkError::NoCommonTopic) => {
                    tracing::debug!(%peer, "Reticulum peer carries none of our topics")
                }
                Err(e) => tracing::warn!(%peer, "Reticulum peer ignored: {e}"),
            },
            ReticulumEvent::Endpoint(PeerEvent::Received { from, frame }) => {
                match self.peers.heard(elapsed, &from) {
                    Some(link) => engine.handle_frame(elapsed, link, &frame, None),
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
                self.connected.insert(server);
            }
            ReticulumEvent::Disconnected { server, error } => {
                tracing::warn!(%server, "rnsd connection lost: {error}");
                self.connected.remove(&server);
            }
        }
    }
}
