//! A small in-memory `OpContext` and operation builders shared by the proto tests.
#![allow(dead_code)]

pub mod medium;

use std::collections::HashMap;

use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use lorabridge_proto::{AuthorTag, OpContext, TopicTag};
use p2panda_core::SigningKey;

#[derive(Default)]
pub struct Ctx {
    pub topics: Vec<[u8; 32]>,
    pub authors: Vec<[u8; 32]>,
    pub ops: HashMap<([u8; 32], [u8; 32], u64), [u8; 32]>,
}

impl Ctx {
    pub fn hold(&mut self, topic: [u8; 32], author: [u8; 32], seq: u64, op: &RawOp) {
        self.ops.insert((topic, author, seq), op.id());
    }
}

impl OpContext for Ctx {
    fn topics(&self, tag: TopicTag) -> Vec<[u8; 32]> {
        self.topics
            .iter()
            .filter(|t| TopicTag::from_topic(t) == tag)
            .copied()
            .collect()
    }
    fn authors(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        self.authors
            .iter()
            .filter(|a| AuthorTag::from_key(a) == tag)
            .copied()
            .collect()
    }
    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        self.ops.get(&(*topic, *author, seq)).copied()
    }
}

/// A 2026 timestamp in microseconds, as p2panda writes it.
pub const TIMESTAMP: u64 = 1_795_000_000_000_000;

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A log of `n` LoRes-style operations (`Vec<u8>` bodies) by `key` in `topic`.
pub fn log(key: &SigningKey, topic: &[u8; 32], payloads: &[Vec<u8>]) -> Vec<RawOp> {
    let mut ops: Vec<RawOp> = Vec::new();
    for (seq, payload) in payloads.iter().enumerate() {
        let body = lores_body(payload);
        let op = sign(
            key,
            &NewOp {
                topic,
                seq: seq as u32,
                backlink: ops.last().map(RawOp::id),
                timestamp: TIMESTAMP + seq as u64 * 61_000_000,
                prune: false,
                body: Some(&body),
            },
        );
        ops.push(op);
    }
    ops
}
