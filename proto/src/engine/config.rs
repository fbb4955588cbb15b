//! What the owner configures: the engine's constants and each link's.

use std::time::Duration;

use lorabridge_hardware::{OnAir, RegionPlan};

use super::TrickleConfig;
use crate::fragment::ReassemblyLimits;

/// The airtime rules a radio link obeys.
#[derive(Clone, Debug)]
pub struct Budget {
    /// What the module puts on air for a frame: what the ledger charges.
    pub on_air: OnAir,
    pub plan: RegionPlan,
}

#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Largest frame the link carries (255 LoRa, 508 RNode, 383 Reticulum SINGLE).
    pub mtu: usize,
    /// Radio links are charged against a duty-cycle/dwell ledger. A link with a budget is a
    /// shared channel where neighbours overhear each other (answers wait a random hold-off so
    /// that one overheard answer cancels the others, and fresh operations are relayed on it);
    /// a link without one (`None`, a Reticulum peer) is point to point: answers go at once, and
    /// as many as the send queue holds.
    pub budget: Option<Budget>,
    /// The topics carried over this link (at most `MAX_SUMMARY_TOPICS`, one summary frame).
    pub topics: Vec<[u8; 32]>,
}

/// The engine's constants. `EngineConfig::new` gives defaults for LoRa links.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub network_id: [u8; 32],
    pub region_key: Option<[u8; 32]>,
    /// This node's public key; its first two bytes tag our frames.
    pub node_key: [u8; 32],
    /// Seeds all randomness (Trickle instants, hold-offs): pass fresh random bytes in the
    /// daemon, a scenario seed in the simulator.
    pub seed: [u8; 32],
    /// This start's epoch. It must grow from one start of the node to the next (the daemon
    /// keeps the last one on disk): with a region key, frames carry it with a counter, and
    /// neighbours refuse a frame from an epoch older than one they heard.
    pub epoch: u32,
    pub trickle: TrickleConfig,
    /// Answers (pushed ops, vectors, wants, hellos) wait a random time below this, so that
    /// one neighbour's answer, overheard, cancels the others'.
    pub answer_holdoff: Duration,
    /// An author key sent or heard in full on a link is elided there for this long.
    pub key_memory: Duration,
    /// Operations pushed in answer to one Vector or Want.
    pub max_ops_per_answer: usize,
    pub reassembly: ReassemblyLimits,
    /// Out-of-order or unkeyed operations held while the gap is wanted, and for how long.
    pub max_pending: usize,
    pub pending_timeout: Duration,
}

impl EngineConfig {
    /// Defaults chosen for LoRa at SF7–SF9 (see the sync-engine issue note for the reasons).
    pub fn new(network_id: [u8; 32], node_key: [u8; 32], seed: [u8; 32]) -> Self {
        Self {
            network_id,
            region_key: None,
            node_key,
            seed,
            epoch: 0,
            trickle: TrickleConfig {
                // 90 s, not less: a fresh op's eager relay wave crosses five SF9 hops in
                // tens of seconds, and summaries compared before it has passed only disagree
                // and start redundant repairs (grid-25, same delivery: 10 879 frames at
                // 8 s, 2 830 at 30 s; with the other tuning 1 474 at 60 s, 1 236 at 90 s,
                // 1 378 at 120 s).
                imin: Duration::from_secs(90),
                // imax = 48 min, near what it was (8 s · 2^8 = 34 min): idle cost and the
                // worst-case time to notice a missed op stay about as designed.
                doublings: 5,
                // Two, not one: with k = 1 in a multi-hop mesh, the nodes that have an op
                // and those that lack it each hear a consistent summary from their own side
                // first and fall silent, so the boundary between them can stay unnoticed for
                // many intervals (village-12: 4 pairs never delivered in an hour at k = 1,
                // all delivered at k = 2, for about 5 % more frames).
                k: 2,
            },
            answer_holdoff: Duration::from_secs(3),
            key_memory: Duration::from_secs(30 * 60),
            max_ops_per_answer: 32,
            reassembly: ReassemblyLimits::default(),
            max_pending: 64,
            pending_timeout: Duration::from_secs(600),
        }
    }
}
