//! The discrete-event core: one protocol, one scenario, virtual time.
//!
//! Events (frame ends, protocol timers, publications, faults) wait in a priority queue ordered
//! by (time, insertion order), so ties resolve the same way on every run. Nothing reads a
//! clock; all randomness comes from the run's seed through named streams.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use lorabridge_hardware::AirtimeLedger;
use rand_chacha::ChaCha12Rng;

use crate::physics::{Geometry, MediumStats, Physics};
use crate::protocol::{Factory, NodeSetup, Protocol};
use crate::rng;
use crate::scenario::Scenario;
use crate::traffic::Traffic;

/// One transmission, as the world saw it.
#[derive(Clone, Copy, Debug)]
pub struct Send {
    pub start: Duration,
    pub airtime: Duration,
    pub bytes: u32,
}

/// What one protocol's run produced, before summarising.
pub struct RunData {
    pub protocol: String,
    pub n: usize,
    pub end: Duration,
    pub sends: Vec<Vec<Send>>,
    /// Sends the world's own ledger refused (the protocol broke the duty cycle).
    pub violations: Vec<u64>,
    /// First arrival of op `k` at node `i`: `first[k * n + i]` (the origin: its publication).
    pub first: Vec<Option<Duration>>,
    /// Whether node `i` holds op `k` at the end.
    pub held: Vec<bool>,
    /// Nodes powered at the end.
    pub up: Vec<bool>,
    /// (time, pairs delivered so far), one entry per first delivery to a non-origin node.
    pub timeline: Vec<(Duration, u64)>,
    pub duplicates: Vec<u64>,
    /// Frames sent by kind of message, all nodes together (see `Protocol::frames_by_kind`).
    pub frames_by_kind: BTreeMap<String, u64>,
    pub medium: MediumStats,
    /// Receptions dropped by the extra loss, loss bursts or a powered-off receiver.
    pub dropped: u64,
    /// When each op was actually published (a down origin publishes on restart).
    pub published: Vec<Option<Duration>>,
    /// The node that publishes each op.
    pub origin: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    TxEnd(u64),
    Wake(usize),
    TryTx(usize),
    Publish(usize),
    Crash(usize),
    Restart(usize),
}

struct NodeState {
    station: Box<dyn Protocol>,
    up: bool,
    tx_until: Duration,
    wake: Option<Duration>,
    cs_pending: bool,
    ledger: AirtimeLedger,
    restarts: u64,
    deferred: Vec<usize>,
    dup_base: u64,
    /// Consecutive wakes at one instant, to catch a protocol that never advances.
    same_instant: (Duration, u32),
}

pub struct World<'a> {
    s: &'a Scenario,
    geo: &'a Geometry,
    traffic: &'a Traffic,
    factory: &'a Factory<'a>,
    protocol: String,
    physics: Physics,
    setups: Vec<NodeSetup>,
    nodes: Vec<NodeState>,
    queue: BinaryHeap<Reverse<(Duration, u64, Ev)>>,
    order: u64,
    now: Duration,
    frames: BTreeMap<u64, Vec<u8>>,
    loss_rng: ChaCha12Rng,
    cs_rng: ChaCha12Rng,
    op_index: BTreeMap<[u8; 32], usize>,
    data: RunData,
    /// Listen-before-talk backoff unit: Meshtastic's slot time at this modulation.
    cs_slot: Duration,
    scratch: Vec<[u8; 32]>,
}

impl<'a> World<'a> {
    pub fn new(
        s: &'a Scenario,
        geo: &'a Geometry,
        traffic: &'a Traffic,
        protocol: &str,
        factory: &'a Factory<'a>,
    ) -> Self {
        let n = s.node_count();
        let m = s.radio.modulation();
        let plan = s.plan();
        let network_id =
            *blake3::hash(format!("lorabridge-sim network {}", s.name).as_bytes()).as_bytes();
        let setups: Vec<NodeSetup> = (0..n)
            .map(|i| NodeSetup {
                index: i,
                key: traffic.public[i],
                seed: rng::stream_seed(s.seed, protocol, i as u64),
                topics: vec![traffic.topic],
                modulation: m,
                plan: plan.clone(),
                mtu: s.radio.mtu,
                network_id,
            })
            .collect();
        let nodes = setups
            .iter()
            .map(|setup| NodeState {
                station: factory(setup, Duration::ZERO, traffic.preload.clone()),
                up: true,
                tx_until: Duration::ZERO,
                wake: None,
                cs_pending: false,
                ledger: AirtimeLedger::new(&plan),
                restarts: 0,
                deferred: Vec::new(),
                dup_base: 0,
                same_instant: (Duration::ZERO, 0),
            })
            .collect();
        let ops = traffic.planned.len();
        let op_index = traffic
            .planned
            .iter()
            .enumerate()
            .map(|(k, p)| (p.id, k))
            .collect();
        let slot_ms = 8.5 * f64::from(1u32 << m.spreading_factor)
            / (f64::from(m.bandwidth_hz) / 1000.0)
            + 7.6;
        let mut world = Self {
            s,
            geo,
            traffic,
            factory,
            protocol: protocol.to_string(),
            physics: Physics::new(n, m, s.radio.capture_db, s.radio.noise_figure_db),
            setups,
            nodes,
            queue: BinaryHeap::new(),
            order: 0,
            now: Duration::ZERO,
            frames: BTreeMap::new(),
            loss_rng: rng::stream(s.seed, &format!("{protocol} loss"), 0),
            cs_rng: rng::stream(s.seed, &format!("{protocol} backoff"), 0),
            op_index,
            data: RunData {
                protocol: protocol.to_string(),
                n,
                end: s.duration.0,
                sends: vec![Vec::new(); n],
                violations: vec![0; n],
                first: vec![None; ops * n],
                held: vec![false; ops * n],
                up: vec![true; n],
                timeline: Vec::new(),
                duplicates: vec![0; n],
                frames_by_kind: BTreeMap::new(),
                medium: MediumStats::default(),
                dropped: 0,
                published: vec![None; ops],
                origin: traffic.planned.iter().map(|p| p.node).collect(),
            },
            cs_slot: Duration::from_secs_f64(slot_ms / 1000.0),
            scratch: Vec::new(),
        };
        for (k, p) in traffic.planned.iter().enumerate() {
            world.push(p.at, Ev::Publish(k));
        }
        for (k, c) in s.faults.crash.iter().enumerate() {
            world.push(c.at.0, Ev::Crash(k));
            if let Some(r) = c.restart {
                world.push(r.0, Ev::Restart(k));
            }
        }
        for i in 0..n {
            world.kick(i);
        }
        world
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, ev)));
    }

    /// Runs to the scenario's end; `progress` hears the virtual time now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(Duration)) -> RunData {
        let end = self.s.duration.0;
        let mut next_report = Duration::ZERO;
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            if at >= next_report {
                progress(at);
                next_report = at + Duration::from_secs(60);
            }
            self.handle(ev);
        }
        self.now = end;
        self.finish()
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::TxEnd(id) => self.tx_end(id),
            Ev::Wake(i) => {
                let node = &mut self.nodes[i];
                if !node.up || node.wake != Some(self.now) {
                    return;
                }
                node.wake = None;
                node.station.timeout(self.now);
                self.collect(i);
                self.kick(i);
            }
            Ev::TryTx(i) => {
                self.nodes[i].cs_pending = false;
                self.kick(i);
            }
            Ev::Publish(k) => {
                let node = self.traffic.planned[k].node;
                if self.nodes[node].up {
                    self.publish(node, k);
                } else {
                    self.nodes[node].deferred.push(k);
                }
            }
            Ev::Crash(k) => {
                let i = self.s.faults.crash[k].node;
                let node = &mut self.nodes[i];
                if node.up {
                    node.up = false;
                    node.wake = None;
                    node.cs_pending = false;
                    self.physics.power_off(i);
                }
            }
            Ev::Restart(k) => {
                let crash = &self.s.faults.crash[k];
                let i = crash.node;
                if self.nodes[i].up {
                    return;
                }
                let store = if crash.keep_state {
                    self.nodes[i].station.store().clone()
                } else {
                    self.traffic.preload.clone()
                };
                let node = &mut self.nodes[i];
                node.restarts += 1;
                node.dup_base += node.station.duplicates();
                add_kinds(&mut self.data.frames_by_kind, node.station.as_ref());
                let mut setup = self.setups[i].clone();
                setup.seed = rng::stream_seed(
                    self.s.seed,
                    &self.protocol,
                    (i as u64) << 32 | node.restarts,
                );
                node.station = (self.factory)(&setup, self.now, store);
                node.up = true;
                for k in std::mem::take(&mut node.deferred) {
                    self.publish(i, k);
                }
                self.kick(i);
            }
        }
    }

    fn publish(&mut self, node: usize, k: usize) {
        let p = &self.traffic.planned[k];
        self.data.published[k] = Some(self.now);
        let n = self.data.n;
        self.data.first[k * n + node].get_or_insert(self.now);
        self.nodes[node]
            .station
            .publish(self.now, &self.traffic.topic, &p.op);
        self.collect(node);
        self.kick(node);
    }

    /// Records the operations `i` newly stored.
    fn collect(&mut self, i: usize) {
        let mut ids = std::mem::take(&mut self.scratch);
        self.nodes[i].station.take_delivered(&mut ids);
        let n = self.data.n;
        for id in ids.drain(..) {
            let Some(&k) = self.op_index.get(&id) else {
                continue;
            };
            let slot = &mut self.data.first[k * n + i];
            if slot.is_none() {
                *slot = Some(self.now);
                let count = self.data.timeline.last().map_or(0, |(_, c)| *c) + 1;
                self.data.timeline.push((self.now, count));
            }
        }
        self.scratch = ids;
    }

    /// Lets node `i` send if its radio is free, and re-arms its timer.
    fn kick(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        let now = self.now;
        if self.nodes[i].tx_until <= now {
            let busy = if self.s.radio.carrier_sense {
                self.physics.busy_until(i, now)
            } else {
                None
            };
            if let Some(until) = busy {
                if !self.nodes[i].cs_pending {
                    self.nodes[i].cs_pending = true;
                    let backoff = self.cs_slot * rng::below(&mut self.cs_rng, 8) as u32;
                    self.push(until + backoff, Ev::TryTx(i));
                }
            } else if let Some(frame) = self.nodes[i].station.transmit(now) {
                self.start_tx(i, frame);
            }
        }
        let next = self.nodes[i].station.next_timeout();
        let node = &mut self.nodes[i];
        match next {
            Some(t) => {
                let mut t = t.max(now);
                if t == now {
                    if node.same_instant.0 == now {
                        node.same_instant.1 += 1;
                    } else {
                        node.same_instant = (now, 0);
                    }
                    if node.same_instant.1 > 100 {
                        // A protocol asking to be woken again and again at one instant
                        // would stall the run: let a millisecond pass.
                        t = now + Duration::from_millis(1);
                    }
                }
                if node.wake != Some(t) {
                    node.wake = Some(t);
                    self.push(t, Ev::Wake(i));
                }
            }
            None => node.wake = None,
        }
    }

    fn start_tx(&mut self, i: usize, frame: Vec<u8>) {
        let now = self.now;
        let m = *self.physics.modulation();
        let airtime = m.time_on_air(frame.len());
        let node = &mut self.nodes[i];
        if node
            .ledger
            .record(now, m.frequency_hz, m.bandwidth_hz, airtime)
            .is_err()
        {
            self.data.violations[i] += 1;
        }
        node.tx_until = now + airtime;
        self.data.sends[i].push(Send {
            start: now,
            airtime,
            bytes: frame.len() as u32,
        });
        let partitions = &self.s.faults.partition;
        let link_up = |a: usize, b: usize| !partitions.iter().any(|p| p.separates(now, a, b));
        let id = self.physics.begin(now, i, airtime, self.geo, link_up);
        self.frames.insert(id, frame);
        self.push(now + airtime, Ev::TxEnd(id));
    }

    fn tx_end(&mut self, id: u64) {
        let now = self.now;
        let (from, arrivals) = self.physics.end(id);
        let frame = self.frames.remove(&id).unwrap_or_default();
        for arrival in arrivals {
            let to = arrival.to;
            if !self.nodes[to].up || self.lost(from, to) {
                self.data.dropped += 1;
                continue;
            }
            self.nodes[to]
                .station
                .receive(now, &frame, arrival.rssi as f32, arrival.snr as f32);
            self.collect(to);
            self.kick(to);
        }
        if from < self.nodes.len() {
            self.kick(from);
        }
    }

    /// Extra random loss and loss bursts, drawn per reception.
    fn lost(&mut self, from: usize, to: usize) -> bool {
        let now = self.now;
        let mut keep = 1.0 - self.s.radio.extra_loss;
        for b in &self.s.faults.loss_burst {
            if b.applies(now, from, to) {
                keep *= 1.0 - b.loss;
            }
        }
        keep < 1.0 && rng::unit(&mut self.loss_rng) >= keep
    }

    fn finish(mut self) -> RunData {
        let n = self.data.n;
        for (i, node) in self.nodes.iter().enumerate() {
            self.data.up[i] = node.up;
            self.data.duplicates[i] = node.dup_base + node.station.duplicates();
            add_kinds(&mut self.data.frames_by_kind, node.station.as_ref());
            let store = node.station.store();
            for (k, p) in self.traffic.planned.iter().enumerate() {
                self.data.held[k * n + i] = store.contains(&p.id);
            }
        }
        self.data.medium = self.physics.stats;
        self.data
    }
}

/// Adds a station's frame counts by kind to a run's totals (before a restart replaces it,
/// and at the end).
fn add_kinds(totals: &mut BTreeMap<String, u64>, station: &dyn Protocol) {
    for (kind, count) in station.frames_by_kind() {
        *totals.entry(kind.to_string()).or_default() += count;
    }
}
