//! A hostile node: it knows the network (as any radio in the neighbourhood that has heard a
//! frame does; the simulator's frames are not sealed with a region key) but no author's key.
//! Every `interval`, within the duty cycle like any lawful radio, it sends one of:
//!
//! * a recorded frame, replayed as heard;
//! * an empty Vector, "I hold nothing in this topic", which asks every hearer for all it has;
//! * a Want for a whole log that a neighbour's Summary named, addressed to that neighbour.
//!
//! each under a sender tag of its own invention. It publishes nothing and stores nothing;
//! the report leaves it out of delivery.

use std::collections::VecDeque;
use std::time::Duration;

use lorabridge_hardware::{AirtimeLedger, Modulation};
use lorabridge_proto::engine::MemoryStore;
use lorabridge_proto::message::{Vector, Want, WantRange};
use lorabridge_proto::operation::RawOp;
use lorabridge_proto::{AuthorTag, FrameCodec, Message, NetworkTag, NodeTag, TopicTag};
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::{NodeSetup, Protocol, charge};

/// Frames and named logs remembered for replays and Wants.
const MEMORY: usize = 64;

pub struct Attacker {
    codec: FrameCodec,
    topic: TopicTag,
    modulation: Modulation,
    mtu: usize,
    ledger: AirtimeLedger,
    interval: Duration,
    next: Duration,
    heard: VecDeque<Vec<u8>>,
    /// (who said it, whose log, how long) from heard Summaries.
    named: VecDeque<(NodeTag, AuthorTag, u64)>,
    turn: u64,
    rng: ChaCha12Rng,
    store: MemoryStore,
    sent: [u64; 3],
}

const KINDS: [&str; 3] = ["replay", "forged-vector", "forged-want"];

impl Attacker {
    pub fn new(setup: &NodeSetup, now: Duration, interval: Duration) -> Self {
        Self {
            codec: FrameCodec::new(NetworkTag::from_network_id(&setup.network_id), None),
            topic: TopicTag::from_topic(&setup.topics[0]),
            modulation: setup.modulation,
            mtu: setup.mtu,
            ledger: AirtimeLedger::new(&setup.plan),
            interval,
            next: now + interval,
            heard: VecDeque::new(),
            named: VecDeque::new(),
            turn: 0,
            rng: ChaCha12Rng::from_seed(setup.seed),
            store: MemoryStore::default(),
            sent: [0; 3],
        }
    }

    /// The frame of this turn's kind, or of the next kind that has material.
    fn next_frame(&mut self) -> Option<(usize, Vec<u8>)> {
        for step in 0..3 {
            let kind = ((self.turn + step) % 3) as usize;
            let message = match kind {
                0 => {
                    if self.heard.is_empty() {
                        continue;
                    }
                    let pick = self.rng.next_u64() as usize % self.heard.len();
                    return Some((kind, self.heard[pick].clone()));
                }
                1 => Message::Vector(Vector {
                    topic: self.topic,
                    from: AuthorTag([0, 0]),
                    to: AuthorTag([0xff, 0xff]),
                    heights: Default::default(),
                }),
                _ => {
                    let Some(&(responder, author, ops)) = self.named.back() else {
                        continue;
                    };
                    Message::Want(Want {
                        topic: self.topic,
                        responder,
                        ranges: [WantRange {
                            author,
                            from_seq: 0,
                            to_seq: ops.saturating_sub(1),
                        }]
                        .into_iter()
                        .collect(),
                    })
                }
            };
            let mut sender = [0u8; 2];
            self.rng.fill_bytes(&mut sender);
            let frame = self
                .codec
                .encode(NodeTag(sender), &message, [0; 12], self.mtu)
                .ok()?;
            return Some((kind, frame));
        }
        None
    }
}

impl Protocol for Attacker {
    fn publish(&mut self, _now: Duration, _topic: &[u8; 32], _op: &RawOp) {}

    fn receive(&mut self, _now: Duration, frame: &[u8], _rssi: f32, _snr: f32) {
        if self.heard.len() >= MEMORY {
            self.heard.pop_front();
        }
        self.heard.push_back(frame.to_vec());
        if let Ok(decoded) = self.codec.decode(frame)
            && let Message::Summary(summary) = decoded.message
        {
            for recent in summary.recent.iter().filter(|r| r.ops > 0) {
                if self.named.len() >= MEMORY {
                    self.named.pop_front();
                }
                self.named
                    .push_back((decoded.sender, recent.author, recent.ops));
            }
        }
    }

    fn timeout(&mut self, _now: Duration) {}

    fn transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        if now < self.next {
            return None;
        }
        let (kind, frame) = self.next_frame()?;
        if let Err(wake) = charge(&mut self.ledger, &self.modulation, now, frame.len()) {
            self.next = wake.unwrap_or(now + self.interval).max(now + self.interval);
            return None;
        }
        self.next = now + self.interval;
        self.turn += 1;
        self.sent[kind] += 1;
        Some(frame)
    }

    fn next_timeout(&self) -> Option<Duration> {
        Some(self.next)
    }

    fn take_delivered(&mut self, _into: &mut Vec<[u8; 32]>) {}

    fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn duplicates(&self) -> u64 {
        0
    }

    fn frames_by_kind(&self) -> Vec<(&'static str, u64)> {
        KINDS.iter().copied().zip(self.sent).collect()
    }
}
