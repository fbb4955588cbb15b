//! What the engine needs from the node's operation store, and an in-memory store.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::operation::RawOp;

/// What a store can say about one operation right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Held(RawOp),
    /// Held, but on disk: the store's owner is fetching it. The engine keeps the send that
    /// needs it queued and finds it on a later `poll_transmit`.
    Loading,
    /// Not held (never, or pruned since).
    Absent,
}

/// The operations a node holds, per topic and author log.
///
/// The daemon answers this from its p2panda node's database, with only the heights and the
/// latest id of each log in memory, fetching bodies when a send needs them; the simulator
/// and tests use `MemoryStore`. The engine only inserts operations that decoded, verified and
/// arrived in order, or that start their log afresh (`RawOp::prunes`), so a log's seqs from
/// its first to below its height are held.
pub trait OpStore {
    /// The height (highest seq held + 1) of every author's log in `topic`.
    fn heights(&self, topic: &[u8; 32]) -> Vec<([u8; 32], u64)>;
    /// The lowest seq held in `author`'s log in `topic`: 0, unless the log was pruned (or is
    /// not held). Repair starts here, so it never spends its budget on seqs not held.
    fn first(&self, topic: &[u8; 32], author: &[u8; 32]) -> u64;
    /// Operation `seq` of `author` in `topic`; asking for one on disk starts fetching it.
    fn get(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Lookup;
    /// The id of operation `seq` of `author` in `topic`, if the store knows it without
    /// waiting. A store on disk must know at least the last operation of each log: it is the
    /// backlink of the next one, which compact operations leave out.
    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]>;
    /// Stores an operation that was checked by the engine.
    fn insert(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64, op: RawOp);
    /// Operation `seq` of `author` in `topic` will be asked for soon: a store on disk may
    /// start reading it.
    fn prefetch(&mut self, _topic: &[u8; 32], _author: &[u8; 32], _seq: u64) {}
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

    /// Whether the operation with this id is held.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.ids.contains(id)
    }

    /// Operation `seq` of `author` in `topic`, if held.
    pub fn op(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<&RawOp> {
        self.logs.get(&(*topic, *author))?.get(&seq)
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

    fn first(&self, topic: &[u8; 32], author: &[u8; 32]) -> u64 {
        self.logs
            .get(&(*topic, *author))
            .and_then(|log| log.keys().next().copied())
            .unwrap_or(0)
    }

    fn get(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Lookup {
        match self.op(topic, author, seq) {
            Some(op) => Lookup::Held(op.clone()),
            None => Lookup::Absent,
        }
    }

    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        self.op(topic, author, seq).map(RawOp::id)
    }

    /// A prune-flagged operation drops the log's earlier operations, as p2panda does.
    fn insert(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64, op: RawOp) {
        let log = self.logs.entry((*topic, *author)).or_default();
        if op.prunes() {
            let kept = log.split_off(&seq);
            for earlier in std::mem::replace(log, kept).values() {
                self.ids.remove(&earlier.id());
            }
        }
        self.ids.insert(op.id());
        log.insert(seq, op);
    }
}
