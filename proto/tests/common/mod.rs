//! A small in-memory `OpContext` and operation builders shared by the proto tests.
#![allow(dead_code)]

pub mod amplification;
mod ctx;
pub mod medium;

#[allow(unused_imports)] // not every test crate decodes operations
pub use ctx::Ctx;

use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use p2panda_core::SigningKey;

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
