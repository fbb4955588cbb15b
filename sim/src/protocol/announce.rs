//! Baseline 2: announce-and-repeat flooding, as in p2panda's broadcast-sync example for mesh
//! networks (p2panda.md, last section): nodes announce what they have and repeat operations.
//!
//! The rules (our implementation; the example has no duty-cycle budget, we add the law):
//!
//! * Operations travel as p2panda's canonical bytes (2-byte header length, header, body), split
//!   into frames of `type, op id (32), index, count, chunk` (35 bytes of framing): a 40-byte
//!   chat op takes two frames. No compact encoding.
//! * A node publishing an operation broadcasts it. Every node that receives an operation it did
//!   not hold stores it and broadcasts it once itself, after a random jitter of up to 2 s (so
//!   neighbours that heard the same frame do not all collide). No suppression: overhearing a
//!   neighbour repeat it changes nothing.
//! * Every `interval` (±10 % jitter) a node broadcasts an announcement: its full log heights,
//!   one `(author key 32, height 8)` entry per author, five entries per frame (type, sender key
//!   32, page, pages, entries).
//! * A node hearing an announcement that shows the sender behind on some log sends the missing
//!   operations (at most `max_ops_per_answer` per announcement), after the same jitter. Every
//!   neighbour that can answer does.
//! * Frames wait in a bounded queue for the duty-cycle ledger; an op already queued is not
//!   queued twice.

use std::collections::BTreeSet;
use std::time::Duration;

use lorabridge_hardware::AirtimeLedger;
use lorabridge_proto::engine::{MemoryStore, OpStore};
use lorabridge_proto::operation::RawOp;
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::SeedableRng;

use super::chunks::Chunks;
use super::{NodeSetup, Protocol, canonical_bytes, charge, from_canonical, verify};
use crate::rng;
use crate::scenario::AnnounceConfig;

const OP: u8 = 1;
const ANNOUNCE: u8 = 2;
const OP_HEADER: usize = 35;
const ENTRY: usize = 40;
const ANNOUNCE_HEADER: usize = 35;
const JITTER: Duration = Duration::from_secs(2);
const MAX_QUEUE: usize = 512;

#[derive(Clone, Debug)]
struct Queued {
    at: Duration,
    bytes: Vec<u8>,
    /// The op id for op frames, so an op is not queued twice.
    op: Option<[u8; 32]>,
}

pub struct AnnounceRepeat {
    setup: NodeSetup,
    config: AnnounceConfig,
    rng: ChaCha12Rng,
    ledger: AirtimeLedger,
    store: MemoryStore,
    queue: Vec<Queued>,
    queued_ops: BTreeSet<[u8; 32]>,
    partial: Chunks<[u8; 32]>,
    next_announce: Duration,
    wake: Option<Duration>,
    delivered: Vec<[u8; 32]>,
    duplicates: u64,
    now: Duration,
}

impl AnnounceRepeat {
    pub fn new(
        setup: &NodeSetup,
        now: Duration,
        store: MemoryStore,
        config: AnnounceConfig,
    ) -> Self {
        let mut rng = ChaCha12Rng::from_seed(setup.seed);
        let first = now + config.interval.0.mul_f64(rng::unit(&mut rng));
        Self {
            setup: setup.clone(),
            config,
            rng,
            ledger: AirtimeLedger::new(&setup.plan),
            store,
            queue: Vec::new(),
            queued_ops: BTreeSet::new(),
            partial: Chunks::new(),
            next_announce: first,
            wake: None,
            delivered: Vec::new(),
            duplicates: 0,
            now,
        }
    }

    fn jitter(&mut self) -> Duration {
        JITTER.mul_f64(rng::unit(&mut self.rng))
    }

    fn queue_op(&mut self, now: Duration, op: &RawOp) {
        let id = op.id();
        if self.queued_ops.contains(&id) || self.queue.len() >= MAX_QUEUE {
            return;
        }
        self.queued_ops.insert(id);
        let at = now + self.jitter();
        let bytes = canonical_bytes(op);
        let chunk = self.setup.mtu - OP_HEADER;
        let count = bytes.len().div_ceil(chunk);
        for (index, piece) in bytes.chunks(chunk).enumerate() {
            let mut frame = Vec::with_capacity(OP_HEADER + piece.len());
            frame.push(OP);
            frame.extend_from_slice(&id);
            frame.push(index as u8);
            frame.push(count as u8);
            frame.extend_from_slice(piece);
            self.queue.push(Queued {
                at,
                bytes: frame,
                op: Some(id),
            });
        }
    }

    fn heights(&self) -> Vec<([u8; 32], u64)> {
        let mut heights = self
            .setup
            .topics
            .first()
            .map(|t| self.store.heights(t))
            .unwrap_or_default();
        heights.sort();
        heights
    }

    fn queue_announcement(&mut self, now: Duration) {
        let heights = self.heights();
        let per_frame = (self.setup.mtu - ANNOUNCE_HEADER) / ENTRY;
        let pages = heights.len().div_ceil(per_frame).max(1);
        for page in 0..pages {
            if self.queue.len() >= MAX_QUEUE {
                return;
            }
            let mut frame = vec![ANNOUNCE];
            frame.extend_from_slice(&self.setup.key);
            frame.push(page as u8);
            frame.push(pages as u8);
            for (author, height) in heights.iter().skip(page * per_frame).take(per_frame) {
                frame.extend_from_slice(author);
                frame.extend_from_slice(&height.to_be_bytes());
            }
            self.queue.push(Queued {
                at: now,
                bytes: frame,
                op: None,
            });
        }
    }

    fn on_op_frame(&mut self, now: Duration, frame: &[u8]) {
        if frame.len() < OP_HEADER {
            return;
        }
        let id: [u8; 32] = frame[1..33].try_into().expect("length checked");
        let (index, count) = (usize::from(frame[33]), usize::from(frame[34]));
        if self.store.contains(&id) {
            self.duplicates += 1;
            return;
        }
        let Some(bytes) = self.partial.add(now, id, index, count, &frame[OP_HEADER..]) else {
            return;
        };
        let Some(op) = from_canonical(&bytes) else {
            return;
        };
        if op.id() != id {
            return;
        }
        if let Some((author, seq)) = verify(&op) {
            let topic = self.setup.topics[0];
            self.store.insert(&topic, &author, seq, op.clone());
            self.delivered.push(id);
            // Repeat: every node rebroadcasts what it newly received.
            self.queue_op(now, &op);
        }
    }

    fn on_announcement(&mut self, now: Duration, frame: &[u8]) {
        if frame.len() < ANNOUNCE_HEADER {
            return;
        }
        let ours = self.heights();
        let topic = self.setup.topics[0];
        let mut budget = self.config.max_ops_per_answer;
        for entry in frame[ANNOUNCE_HEADER..].chunks_exact(ENTRY) {
            let author: [u8; 32] = entry[..32].try_into().expect("exact");
            let theirs = u64::from_be_bytes(entry[32..].try_into().expect("exact"));
            let Some((_, mine)) = ours.iter().find(|(a, _)| *a == author) else {
                continue;
            };
            for seq in theirs..*mine {
                if budget == 0 {
                    return;
                }
                if let Some(op) = self.store.op(&topic, &author, seq).cloned() {
                    budget -= 1;
                    self.queue_op(now, &op);
                }
            }
        }
        // An author we hold that the sender does not list at all (only on a single-page
        // announcement, where absence means "none").
        if frame[34] == 1 {
            let listed: BTreeSet<[u8; 32]> = frame[ANNOUNCE_HEADER..]
                .chunks_exact(ENTRY)
                .map(|e| e[..32].try_into().expect("exact"))
                .collect();
            for (author, mine) in ours {
                if listed.contains(&author) {
                    continue;
                }
                for seq in 0..mine {
                    if budget == 0 {
                        return;
                    }
                    if let Some(op) = self.store.op(&topic, &author, seq).cloned() {
                        budget -= 1;
                        self.queue_op(now, &op);
                    }
                }
            }
        }
    }
}

impl Protocol for AnnounceRepeat {
    fn publish(&mut self, now: Duration, topic: &[u8; 32], op: &RawOp) {
        self.now = self.now.max(now);
        if let Some((author, seq)) = super::author_seq(op) {
            self.store.insert(topic, &author, seq, op.clone());
        }
        self.queue_op(now, op);
    }

    fn receive(&mut self, now: Duration, frame: &[u8], _rssi: f32, _snr: f32) {
        self.now = self.now.max(now);
        match frame.first() {
            Some(&OP) => self.on_op_frame(now, frame),
            Some(&ANNOUNCE) => self.on_announcement(now, frame),
            _ => {}
        }
    }

    fn timeout(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if self.wake.is_some_and(|w| w <= now) {
            self.wake = None;
        }
        if now >= self.next_announce {
            self.queue_announcement(now);
            let jitter = 0.9 + 0.2 * rng::unit(&mut self.rng);
            self.next_announce = now + self.config.interval.0.mul_f64(jitter);
        }
        self.partial.expire(now);
    }

    fn transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        self.now = self.now.max(now);
        let index = self.queue.iter().position(|q| q.at <= now)?;
        let len = self.queue[index].bytes.len();
        if let Err(wake) = charge(&mut self.ledger, &self.setup.modulation, now, len) {
            self.wake = wake;
            return None;
        }
        let q = self.queue.remove(index);
        if let Some(id) = q.op
            && !self.queue.iter().any(|other| other.op == Some(id))
        {
            self.queued_ops.remove(&id);
        }
        Some(q.bytes)
    }

    fn next_timeout(&self) -> Option<Duration> {
        // Frames already due wait for the world to offer the radio; not a reason to wake.
        let queue = self.queue.iter().map(|q| q.at).filter(|t| *t > self.now);
        queue
            .chain(self.partial.next_timeout())
            .chain([self.next_announce])
            .chain(self.wake)
            .min()
    }

    fn take_delivered(&mut self, into: &mut Vec<[u8; 32]>) {
        into.append(&mut self.delivered);
    }

    fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn duplicates(&self) -> u64 {
        self.duplicates
    }
}
