//! The Reticulum transport as the actor drives it: one engine link per peer bridge learned
//! from announces (a SINGLE packet reaches one peer only, so each peer must be its own link
//! for the engine to know who heard what).

use lorabridge_proto::engine::{Engine, EngineTime, OpStore};
use lorabridge_reticulum::Event as PeerEvent;

use crate::reticulum::{PeerLinkError, PeerLinks, Reticulum, ReticulumEvent, SendError};

/// Reticulum peers the engine keeps links for; past this, a new peer takes the link of the
/// one heard from longest ago (see `PeerLinks`).
pub const MAX_RETICULUM_PEERS: usize = 64;

/// The Reticulum transport and one engine link per peer bridge.
pub struct ReticulumPort {
    pub rns: Reticulum,
    pub peers: PeerLinks,
    /// The topics carried over Reticulum; a peer's link carries those the peer announced too.
    pub topics: Vec<[u8; 32]>,
}

impl ReticulumPort {
    pub fn new(rns: Reticulum, topics: Vec<[u8; 32]>) -> Self {
        Self {
            rns,
            peers: PeerLinks::new(MAX_RETICULUM_PEERS),
            topics,
        }
    }

    /// Sends what the engine has for each peer. A frame the transport does not take (no rnsd
    /// connected, no path to the peer) goes back to the engine's queue, and that peer gets
    /// nothing more this turn; with no rnsd at all, no frame is even built.
    pub fn transmit<S: OpStore>(&mut self, engine: &mut Engine<S>, elapsed: EngineTime) {
        if !self.rns.is_connected() {
            return;
        }
        for (peer, link) in self.peers.iter() {
            while let Some(frame) = engine.poll_transmit(elapsed, link) {
                let sent = self.rns.send(peer, &frame);
                engine.handle_transmitted(elapsed, link, sent.is_ok());
                match sent {
                    Ok(()) => {}
                    Err(SendError::NotConnected) => return,
                    Err(e) => {
                        tracing::debug!(%peer, "a Reticulum frame waits: {e}");
                        break;
                    }
                }
            }
        }
    }

    pub fn on_event<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        elapsed: EngineTime,
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
                tracing::debug!(%peer, "Reticulum path expired: its link goes");
                self.peers.expired(engine, &peer);
            }
            ReticulumEvent::Endpoint(
                PeerEvent::Delivered { .. } | PeerEvent::Undelivered { .. },
            ) => {}
            ReticulumEvent::Connected { server } => {
                tracing::info!(%server, "connected to rnsd")
            }
            ReticulumEvent::Disconnected { server, error } => {
                tracing::warn!(%server, "rnsd connection lost: {error}")
            }
        }
    }
}
