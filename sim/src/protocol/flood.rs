//! Baseline 1: Meshtastic-style managed flooding, carrying p2panda operations as they are.
//!
//! The rules, from Meshtastic's firmware as summarised in the fact sheet (lora.md §3):
//!
//! * Packet: Meshtastic's 16-byte header (to = broadcast, from, id, flags with hop_limit and
//!   hop_start, channel hash, next_hop, relay_node) and a payload of at most 239 bytes.
//! * Meshtastic does not fragment, so an operation's canonical bytes (2-byte header length,
//!   header, body: 304 bytes for a 40-byte LoRes chat message) are split into packets of their
//!   own: each payload starts with a 6-byte fragment header (message id, index, count) and
//!   carries up to 233 bytes, so a chat op takes two packets (255 + 93 bytes on air). Each
//!   packet floods on its own, as two app messages would.
//! * Duplicates are recognised by (from, id); a node remembers the last 4096.
//! * A new packet with hop_limit > 0 is rebroadcast with hop_limit − 1 after a delay from its
//!   SNR: contention window CW = 3..8 mapped linearly from SNR −20..+10 dB, delay
//!   `2·CWmax·slot + random(0..2^CW)·slot` (client role: far nodes, with weak SNR, relay first).
//!   Slot time as Meshtastic computes it: `8.5·2^SF/BW + 7.6 ms`.
//! * A node that overhears another node rebroadcast the packet it is waiting to relay cancels
//!   its own copy (clients cancel; no ROUTER roles in the baseline).
//! * The originator sends after `random(0..2^CWmin)·slot`, and treats any overheard rebroadcast
//!   of its packet as an implicit ACK; without one it retransmits (same id) up to `retries`
//!   times, each after `2·airtime + (2·CWmax + 2^CWmax)·slot` (the longest a relay may wait).
//! * Every send is charged to a duty-cycle ledger like the engine's; a refused send waits.
//! * Listen before talk comes from the world (the same rule for every protocol).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use lorabridge_hardware::AirtimeLedger;
use lorabridge_proto::engine::{MemoryStore, OpStore};
use lorabridge_proto::operation::RawOp;
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::SeedableRng;

use super::chunks::Chunks;
use super::{NodeSetup, Protocol, canonical_bytes, charge, from_canonical, verify};
use crate::rng;

const HEADER: usize = 16;
const FRAGMENT_HEADER: usize = 6;
const CW_MIN: u32 = 3;
const CW_MAX: u32 = 8;
const SNR_MIN: f32 = -20.0;
const SNR_MAX: f32 = 10.0;
const MAX_SEEN: usize = 4096;
/// Packets waiting to be sent; new ones are dropped past this (a full radio queue).
const MAX_QUEUE: usize = 256;

#[derive(Clone, Debug)]
struct Queued {
    at: Duration,
    key: (u32, u32),
    bytes: Vec<u8>,
    /// Our own packet (the originator), as opposed to a relay.
    own: bool,
}

#[derive(Clone, Debug)]
struct Waiting {
    key: (u32, u32),
    bytes: Vec<u8>,
    deadline: Duration,
    tries_left: u8,
}

pub struct ManagedFlood {
    me: u32,
    config: crate::scenario::FloodConfig,
    setup: NodeSetup,
    rng: ChaCha12Rng,
    ledger: AirtimeLedger,
    store: MemoryStore,
    next_id: u32,
    seen: HashSet<(u32, u32)>,
    seen_order: VecDeque<(u32, u32)>,
    queue: Vec<Queued>,
    /// Own packets sent, waiting for an implicit ACK.
    unacked: Vec<Waiting>,
    partial: Chunks<(u32, u32)>,
    wake: Option<Duration>,
    delivered: Vec<[u8; 32]>,
    duplicates: u64,
    slot: Duration,
    /// The latest `now` seen: timeouts in the past are the world's business (it polls
    /// `transmit` whenever the radio frees up), not a reason to wake.
    now: Duration,
}

impl ManagedFlood {
    pub fn new(
        setup: &NodeSetup,
        store: MemoryStore,
        config: crate::scenario::FloodConfig,
    ) -> Self {
        let m = &setup.modulation;
        let slot_ms = 8.5 * f64::from(1u32 << m.spreading_factor)
            / (f64::from(m.bandwidth_hz) / 1000.0)
            + 7.6;
        Self {
            me: u32::from_be_bytes([setup.key[0], setup.key[1], setup.key[2], setup.key[3]]),
            config,
            rng: ChaCha12Rng::from_seed(setup.seed),
            ledger: AirtimeLedger::new(&setup.plan),
            store,
            next_id: 1,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            queue: Vec::new(),
            unacked: Vec::new(),
            partial: Chunks::new(),
            wake: None,
            delivered: Vec::new(),
            duplicates: 0,
            slot: Duration::from_secs_f64(slot_ms / 1000.0),
            now: Duration::ZERO,
            setup: setup.clone(),
        }
    }

    fn remember(&mut self, key: (u32, u32)) {
        if self.seen.insert(key) {
            self.seen_order.push_back(key);
            if self.seen_order.len() > MAX_SEEN
                && let Some(old) = self.seen_order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }

    fn slots(&mut self, n: u64) -> Duration {
        self.slot * rng::below(&mut self.rng, n) as u32
    }

    fn enqueue(&mut self, item: Queued) {
        if self.queue.len() < MAX_QUEUE {
            self.queue.push(item);
        }
    }

    fn retry_timeout(&self, len: usize) -> Duration {
        2 * self.setup.modulation.time_on_air(len) + self.slot * (2 * CW_MAX + (1 << CW_MAX))
    }

    fn on_payload(&mut self, now: Duration, from: u32, payload: &[u8]) {
        if payload.len() < FRAGMENT_HEADER {
            return;
        }
        let message = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let (index, count) = (usize::from(payload[4]), usize::from(payload[5]));
        let chunk = &payload[FRAGMENT_HEADER..];
        if let Some(bytes) = self.partial.add(now, (from, message), index, count, chunk)
            && let Some(op) = from_canonical(&bytes)
        {
            self.store_op(op);
        }
    }

    fn store_op(&mut self, op: RawOp) {
        let id = op.id();
        if self.store.contains(&id) {
            self.duplicates += 1;
            return;
        }
        if let Some((author, seq)) = verify(&op) {
            let topic = self.setup.topics[0];
            self.store.insert(&topic, &author, seq, op);
            self.delivered.push(id);
        }
    }
}

impl Protocol for ManagedFlood {
    fn publish(&mut self, now: Duration, topic: &[u8; 32], op: &RawOp) {
        self.now = self.now.max(now);
        if let Some((author, seq)) = super::author_seq(op) {
            self.store.insert(topic, &author, seq, op.clone());
        }
        let bytes = canonical_bytes(op);
        let chunk = self.setup.mtu - HEADER - FRAGMENT_HEADER;
        let count = bytes.len().div_ceil(chunk);
        let message = self.next_id;
        for (index, piece) in bytes.chunks(chunk).enumerate() {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let mut packet = Vec::with_capacity(HEADER + FRAGMENT_HEADER + piece.len());
            packet.extend_from_slice(&u32::MAX.to_be_bytes());
            packet.extend_from_slice(&self.me.to_be_bytes());
            packet.extend_from_slice(&id.to_be_bytes());
            let hops = self.config.hop_limit & 7;
            packet.push(hops | (hops << 5));
            packet.extend_from_slice(&[0x08, 0, self.me as u8]);
            packet.extend_from_slice(&message.to_be_bytes());
            packet.push(index as u8);
            packet.push(count as u8);
            packet.extend_from_slice(piece);
            self.remember((self.me, id));
            let delay = self.slots(1 << CW_MIN);
            self.enqueue(Queued {
                at: now + delay,
                key: (self.me, id),
                bytes: packet,
                own: true,
            });
        }
    }

    fn receive(&mut self, now: Duration, frame: &[u8], _rssi: f32, snr: f32) {
        self.now = self.now.max(now);
        if frame.len() < HEADER {
            return;
        }
        let word =
            |i: usize| u32::from_be_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let (from, id) = (word(4), word(8));
        let key = (from, id);
        if from == self.me {
            // A neighbour relayed our packet: the implicit ACK.
            self.unacked.retain(|w| w.key != key);
            return;
        }
        if self.seen.contains(&key) {
            self.duplicates += 1;
            // Someone else rebroadcast what we were about to: cancel our copy.
            self.queue.retain(|q| q.own || q.key != key);
            return;
        }
        self.remember(key);
        let hop_limit = frame[12] & 7;
        self.on_payload(now, from, &frame[HEADER..]);
        if hop_limit > 0 {
            let mut relay = frame.to_vec();
            relay[12] = (frame[12] & !7) | (hop_limit - 1);
            relay[15] = self.me as u8;
            let fraction = ((snr - SNR_MIN) / (SNR_MAX - SNR_MIN)).clamp(0.0, 1.0);
            let cw = CW_MIN + (fraction * (CW_MAX - CW_MIN) as f32) as u32;
            let delay = self.slot * (2 * CW_MAX) + self.slots(1 << cw);
            self.enqueue(Queued {
                at: now + delay,
                key,
                bytes: relay,
                own: false,
            });
        }
    }

    fn timeout(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if self.wake.is_some_and(|w| w <= now) {
            self.wake = None;
        }
        let expired: Vec<Waiting> = self
            .unacked
            .iter()
            .filter(|w| w.deadline <= now)
            .cloned()
            .collect();
        self.unacked.retain(|w| w.deadline > now);
        for w in expired {
            if w.tries_left > 0 {
                let delay = self.slots(1 << CW_MIN);
                self.enqueue(Queued {
                    at: now + delay,
                    key: w.key,
                    bytes: w.bytes,
                    own: true,
                });
                self.unacked.push(Waiting {
                    key: w.key,
                    bytes: Vec::new(),
                    deadline: Duration::MAX,
                    tries_left: w.tries_left - 1,
                });
            }
        }
        self.partial.expire(now);
    }

    fn transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        self.now = self.now.max(now);
        let mut best: Option<usize> = None;
        for (i, q) in self.queue.iter().enumerate() {
            if q.at <= now && best.is_none_or(|b| q.at < self.queue[b].at) {
                best = Some(i);
            }
        }
        let index = best?;
        let len = self.queue[index].bytes.len();
        if let Err(wake) = charge(&mut self.ledger, &self.setup.modulation, now, len) {
            self.wake = wake;
            return None;
        }
        let q = self.queue.remove(index);
        if q.own {
            let tries_left = self
                .unacked
                .iter()
                .position(|w| w.key == q.key)
                .map(|i| self.unacked.remove(i).tries_left)
                .unwrap_or(self.config.retries);
            let airtime = self.setup.modulation.time_on_air(len);
            self.unacked.push(Waiting {
                key: q.key,
                bytes: q.bytes.clone(),
                deadline: now + airtime + self.retry_timeout(len),
                tries_left,
            });
        }
        Some(q.bytes)
    }

    fn next_timeout(&self) -> Option<Duration> {
        // Packets already due wait for the world to offer the radio; not a reason to wake.
        let queue = self.queue.iter().map(|q| q.at).filter(|t| *t > self.now);
        let acks = self
            .unacked
            .iter()
            .map(|w| w.deadline)
            .filter(|d| *d != Duration::MAX);
        queue
            .chain(acks)
            .chain(self.partial.next_timeout())
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
