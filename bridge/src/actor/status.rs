//! What the status API shows of the transports, built by the actor once a second.

use std::time::Duration;

use lorabridge_hardware::SubBandUsage;
use lorabridge_proto::engine::{Engine, EngineTime, LinkId, LinkStats, Neighbour, OpStore};

/// One mesh transport: its state, its counters summed over its links, its neighbours.
#[derive(Clone, Debug, Default)]
pub struct TransportView {
    pub state: String,
    pub counters: LinkStats,
    /// Each neighbour and how long ago it was last heard.
    pub neighbours: Vec<(Neighbour, Duration)>,
    pub queue_depth: usize,
    pub airtime: Vec<SubBandUsage>,
    /// Peers learned otherwise than by hearing them (Reticulum: from announces).
    pub peers: Vec<Vec<u8>>,
    /// Operations heard that failed to decode or forked a log (the engine counts them among
    /// its rejected frames, without telling them apart).
    pub ops_rejected: u64,
}

impl TransportView {
    /// Counters, neighbours and queues summed over `links`.
    pub fn of<S: OpStore>(
        engine: &Engine<S>,
        now: EngineTime,
        state: String,
        links: impl IntoIterator<Item = LinkId>,
    ) -> Self {
        let mut view = TransportView {
            state,
            ..Default::default()
        };
        for link in links {
            view.counters += engine.stats(link);
            view.queue_depth += engine.queue_depth(link);
            view.neighbours.extend(
                engine
                    .neighbours(link)
                    .iter()
                    .map(|n| (*n, now.duration_since(n.last_heard))),
            );
        }
        view
    }
}

/// iroh, as the topic streams see it.
#[derive(Clone, Debug, Default)]
pub struct IrohView {
    /// Whether the node has any way to find peers (mDNS, known addresses, a relay).
    pub enabled: bool,
    /// Node ids of the peers with a sync session open now.
    pub peers: Vec<[u8; 32]>,
}

/// Every transport, as the status API shows them.
#[derive(Clone, Debug, Default)]
pub struct Transports {
    pub iroh: IrohView,
    pub lora: Option<TransportView>,
    pub reticulum: Option<TransportView>,
    /// Operations from the mesh waiting to be imported into the node.
    pub import_backlog: usize,
}
