//! What the engine needs from the node's operation store, and an in-memory store.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::operation::RawOp;

/// The operations a node holds, per topic and author log.
///
/// The daemon backs this with its p2panda node; the simulator and tests with `MemoryStore`.
/// The engine only inserts operations that decoded, verified and arrived in order.
pub trait OpStore {
    /// The height (highest seq held + 1) of every author's log in `topic`.
    fn heights(&self, topic: &[u8; 32]) -> Vec<([u8; 32], u64)>;
    /// Operation `seq` of `author` in `topic`.
    fn get(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<RawOp>;
    /// The id of operation `seq` of `author` in `topic`.
    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]>;
    /// Whether the operation with this id is held.
    fn contains(&self, id: &[u8; 32]) -> bool;
    /// Stores an operation that was checked by the engine.
    fn insert(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64, op: RawOp);
}

/// An in-memory `OpStore`: the simulator's and the tests' nodes.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    logs: HashMap<([u8; 32], [u8; 32]), BTreeMap<u64, RawOp>>,
    ids: HashSet<[u8; 32]>,
}

impl MemoryStore {
    /// Number of operations held in all topics.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl OpStore for MemoryStore {
    /// Sorted by author: the engine walks heights when it queues answers, so `HashMap` order
    /// here would make the order of sends (and a simulator run) differ from run to run.
    fn heights(&self, topic: &[u8; 32]) -> Vec<([u8; 32], u64)> {
        let mut heights: Vec<([u8; 32], u64)> = self
            .logs
            .iter()
            .filter(|((t, _), _)| t == topic)
            .filter_map(|((_, author), log)| log.keys().next_back().map(|seq| (*author, seq + 1)))
            .collect();
        heights.sort_unstable();
        heights
    }

    fn get(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<RawOp> {
        self.logs.get(&(*topic, *author))?.get(&seq).cloned()
    }

    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        self.logs.get(&(*topic, *author))?.get(&seq).map(RawOp::id)
    }

    fn contains(&self, id: &[u8; 32]) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64, op: RawOp) {
        self.ids.insert(op.id());
        self.logs
            .entry((*topic, *author))
            .or_default()
            .insert(seq, op);
    }
}
