//! A tiny deterministic radio medium for engine tests: frames reach every node that hears the
//! sender when their airtime ends. No physics, no collisions: those are the simulator's job.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::LazyLock;
use std::time::Duration;

use lorabridge_hardware::{Modulation, OnAir, RegionPlan};
use lorabridge_proto::engine::{
    Budget, Engine, EngineConfig, EngineTime, Event, LinkConfig, LinkId, MemoryStore,
};
use lorabridge_proto::operation::RawOp;

pub const NETWORK: [u8; 32] = [0x11; 32];

/// What the medium does to one frame on its way from `from` to `to`.
pub enum Fate {
    Deliver,
    Drop,
    Replace(Vec<Vec<u8>>),
}

pub struct Node {
    pub engine: Engine<MemoryStore>,
    pub received: Vec<RawOp>,
    pub rejected: usize,
    /// Times its engine changed its node tag.
    pub retagged: usize,
    /// (start, airtime) of every transmission.
    pub sends: Vec<(EngineTime, Duration)>,
}

/// A frame on its way: (arrival, order, receiver, bytes).
type InFlight = Reverse<(EngineTime, u64, usize, Vec<u8>)>;
/// Decides each frame's fate: (sender, receiver, frame).
type FateFn = Box<dyn FnMut(usize, usize, &[u8]) -> Fate>;

pub struct Medium {
    pub nodes: Vec<Node>,
    pub hears: Vec<Vec<bool>>,
    pub now: EngineTime,
    pub modulation: Modulation,
    in_flight: BinaryHeap<InFlight>,
    order: u64,
    pub fate: FateFn,
}

/// The link of every engine made here: the handle a fresh engine gives its first link, the
/// same in each (handles are opaque; only an engine makes them).
pub static LINK: LazyLock<LinkId> = LazyLock::new(|| {
    let config = EngineConfig::new(NETWORK, [0; 32], [0; 32]);
    let first = LinkConfig {
        mtu: 255,
        budget: None,
        topics: Vec::new(),
    };
    let mut engine = Engine::new(config, MemoryStore::default());
    engine.add_link(EngineTime::ZERO, first).unwrap()
});

/// SF7/BW125 in EU868's 10 % band, or its 1 % band with `tight`.
pub fn modulation(tight: bool) -> Modulation {
    let eu868 = Modulation::eu868_default();
    Modulation {
        frequency_hz: if tight {
            868_100_000
        } else {
            eu868.frequency_hz
        },
        spreading_factor: 7,
        ..eu868
    }
}

pub fn node_key(i: usize) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[0] = 0xa0 + i as u8;
    key[1] = i as u8;
    key
}

pub fn engine(
    i: usize,
    topics: &[[u8; 32]],
    store: MemoryStore,
    m: Modulation,
) -> Engine<MemoryStore> {
    keyed_engine(node_key(i), i, topics, store, m)
}

/// Node `i`'s engine with the node key `key`.
pub fn keyed_engine(
    key: [u8; 32],
    i: usize,
    topics: &[[u8; 32]],
    store: MemoryStore,
    m: Modulation,
) -> Engine<MemoryStore> {
    let mut seed = [7u8; 32];
    seed[0] = i as u8;
    let mut engine = Engine::new(EngineConfig::new(NETWORK, key, seed), store);
    let budget = Budget {
        on_air: OnAir::plain(m),
        plan: RegionPlan::builtin("EU868").unwrap(),
    };
    let config = LinkConfig {
        mtu: 255,
        budget: Some(budget),
        topics: topics.to_vec(),
    };
    assert_eq!(engine.add_link(EngineTime::ZERO, config).unwrap(), *LINK);
    engine
}

impl Medium {
    /// `n` nodes carrying `topics`, where node i hears node j iff `hears(i, j)`.
    pub fn new(
        n: usize,
        topics: &[[u8; 32]],
        hears: impl Fn(usize, usize) -> bool,
        tight: bool,
    ) -> Self {
        let m = modulation(tight);
        let nodes = (0..n)
            .map(|i| Node {
                engine: engine(i, topics, MemoryStore::default(), m),
                received: vec![],
                rejected: 0,
                retagged: 0,
                sends: vec![],
            })
            .collect();
        Self {
            nodes,
            hears: (0..n)
                .map(|i| (0..n).map(|j| i != j && hears(i, j)).collect())
                .collect(),
            now: EngineTime::ZERO,
            modulation: m,
            in_flight: BinaryHeap::new(),
            order: 0,
            fate: Box::new(|_, _, _| Fate::Deliver),
        }
    }

    pub fn line(n: usize, topics: &[[u8; 32]]) -> Self {
        Self::new(n, topics, |i, j| i.abs_diff(j) == 1, false)
    }

    pub fn add_node(&mut self, engine: Engine<MemoryStore>, hears: impl Fn(usize) -> bool) {
        let n = self.nodes.len();
        for (j, row) in self.hears.iter_mut().enumerate() {
            row.push(hears(j));
        }
        self.hears.push((0..n).map(&hears).chain([false]).collect());
        self.nodes.push(Node {
            engine,
            received: vec![],
            rejected: 0,
            retagged: 0,
            sends: vec![],
        });
    }

    pub fn publish(&mut self, node: usize, topic: &[u8; 32], op: RawOp) {
        self.nodes[node]
            .engine
            .handle_local_op(self.now, topic, op)
            .unwrap();
        self.pump();
    }

    /// Delivers `bytes` to `node` now, as if heard.
    pub fn inject(&mut self, node: usize, bytes: &[u8]) {
        self.nodes[node]
            .engine
            .handle_frame(self.now, *LINK, bytes, Some((-90.0, 5.0)));
        self.drain(node);
        self.pump();
    }

    fn drain(&mut self, i: usize) {
        while let Some(event) = self.nodes[i].engine.poll_event() {
            match event {
                Event::Received { op, .. } => self.nodes[i].received.push(op),
                Event::Rejected { .. } => self.nodes[i].rejected += 1,
                Event::Retagged { .. } => self.nodes[i].retagged += 1,
            }
        }
    }

    /// Lets every node send what it may now.
    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(frame) = self.nodes[i].engine.poll_transmit(self.now, *LINK) {
                self.nodes[i]
                    .engine
                    .handle_transmitted(self.now, *LINK, true);
                let airtime = self.modulation.time_on_air(frame.len());
                self.nodes[i].sends.push((self.now, airtime));
                for j in 0..self.nodes.len() {
                    if self.hears[j][i] {
                        let copies = match (self.fate)(i, j, &frame) {
                            Fate::Deliver => vec![frame.clone()],
                            Fate::Drop => vec![],
                            Fate::Replace(copies) => copies,
                        };
                        for copy in copies {
                            self.order += 1;
                            self.in_flight
                                .push(Reverse((self.now + airtime, self.order, j, copy)));
                        }
                    }
                }
            }
        }
    }

    /// Runs until `until` (virtual time).
    pub fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        let mut same_instant = 0;
        loop {
            self.pump();
            let next_frame = self.in_flight.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.engine.poll_timeout())
                .min();
            let next = [next_frame, next_timer]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until)
                .max(self.now);
            if next > until {
                self.now = until;
                return;
            }
            same_instant = if next == self.now {
                same_instant + 1
            } else {
                0
            };
            assert!(
                same_instant < 10_000,
                "an engine keeps asking to be woken at {next:?}"
            );
            self.now = next;
            while self
                .in_flight
                .peek()
                .is_some_and(|Reverse((t, ..))| *t <= self.now)
            {
                let Reverse((_, _, j, bytes)) = self.in_flight.pop().unwrap();
                self.nodes[j]
                    .engine
                    .handle_frame(self.now, *LINK, &bytes, Some((-100.0, 2.5)));
                self.drain(j);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i]
                    .engine
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.nodes[i].engine.handle_timeout(self.now);
                }
            }
        }
    }

    pub fn held(&self, node: usize) -> usize {
        self.nodes[node].engine.store().len()
    }
}
