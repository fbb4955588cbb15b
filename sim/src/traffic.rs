//! Traffic: who publishes which real, signed p2panda operation when.
//!
//! All operations of a run are signed up front from the seed, so every protocol of the run
//! carries byte-identical operations at identical instants. Each node is one author with one
//! log in the scenario's topic (a LoRes chat room), and payloads look like chat messages.

use std::time::Duration;

use lorabridge_proto::engine::{MemoryStore, OpStore};
use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use p2panda_core::SigningKey;

use crate::rng;
use crate::scenario::Scenario;

/// LoRes chat payload size (bytes) unless the scenario says otherwise.
pub const DEFAULT_PAYLOAD: usize = 40;
/// Timestamps start at this instant (2026, microseconds since the Unix epoch).
const EPOCH_MICROS: u64 = 1_795_000_000_000_000;

/// One operation to publish.
#[derive(Clone, Debug)]
pub struct Planned {
    pub at: Duration,
    pub node: usize,
    pub op: RawOp,
    pub id: [u8; 32],
}

/// The run's identities and operations.
pub struct Traffic {
    pub topic: [u8; 32],
    pub keys: Vec<SigningKey>,
    /// Public keys, whose first two bytes (node and author tags) are distinct.
    pub public: Vec<[u8; 32]>,
    pub planned: Vec<Planned>,
    /// Every node holds these at time zero.
    pub preload: MemoryStore,
}

impl Traffic {
    pub fn generate(s: &Scenario) -> Self {
        let n = s.node_count();
        let topic = *blake3::hash(format!("lorabridge-sim topic {}", s.name).as_bytes()).as_bytes();
        let (keys, public) = keys(s.seed, n);
        let mut when: Vec<(Duration, usize)> = Vec::new();
        for p in &s.traffic.publish {
            for k in 0..p.count {
                when.push((p.at.0 + p.interval.0 * k as u32, p.node));
            }
        }
        for (r, rate) in s.traffic.rate.iter().enumerate() {
            let nodes: Vec<usize> = rate
                .nodes
                .clone()
                .unwrap_or_else(|| (0..n).filter(|&i| s.honest(i)).collect());
            if rate.per_hour <= 0.0 {
                continue;
            }
            let mean = 3600.0 / rate.per_hour;
            for &node in &nodes {
                let mut draw = rng::stream(s.seed, "traffic", (r * n + node) as u64);
                let mut t = rate.from.0.as_secs_f64();
                loop {
                    t += rng::exponential(&mut draw, mean);
                    if t >= rate.until.0.as_secs_f64() {
                        break;
                    }
                    when.push((Duration::from_secs_f64(t), node));
                }
            }
        }
        when.retain(|(t, _)| *t < s.duration.0);
        when.sort();
        let size = s.traffic.payload_bytes.unwrap_or(DEFAULT_PAYLOAD);
        let mut logs: Vec<Option<[u8; 32]>> = vec![None; n];
        let mut seqs = vec![0u32; n];
        let mut preload = MemoryStore::default();
        for node in 0..n {
            for k in 0..s.traffic.preload_ops_per_node {
                let op = chat(
                    &keys[node],
                    &topic,
                    seqs[node],
                    logs[node],
                    Duration::ZERO,
                    node,
                    k,
                    size,
                );
                preload.insert(&topic, &public[node], u64::from(seqs[node]), op.clone());
                logs[node] = Some(op.id());
                seqs[node] += 1;
            }
        }
        let planned = when
            .into_iter()
            .enumerate()
            .map(|(k, (at, node))| {
                let op = chat(
                    &keys[node],
                    &topic,
                    seqs[node],
                    logs[node],
                    at,
                    node,
                    k,
                    size,
                );
                logs[node] = Some(op.id());
                seqs[node] += 1;
                Planned {
                    at,
                    node,
                    id: op.id(),
                    op,
                }
            })
            .collect();
        Self {
            topic,
            keys,
            public,
            planned,
            preload,
        }
    }
}

/// One signing key per node, re-drawn until the 2-byte tags are distinct (the engine names
/// nodes and authors by them on air).
fn keys(seed: u64, n: usize) -> (Vec<SigningKey>, Vec<[u8; 32]>) {
    let mut keys = Vec::with_capacity(n);
    let mut public: Vec<[u8; 32]> = Vec::with_capacity(n);
    let mut attempt = 0u64;
    while keys.len() < n {
        let key = SigningKey::from_bytes(&rng::stream_seed(seed, "node key", attempt));
        attempt += 1;
        let vk = *key.verifying_key().as_bytes();
        if public.iter().any(|p| p[..2] == vk[..2]) && n <= 4096 {
            continue;
        }
        keys.push(key);
        public.push(vk);
    }
    (keys, public)
}

#[allow(clippy::too_many_arguments)]
fn chat(
    key: &SigningKey,
    topic: &[u8; 32],
    seq: u32,
    backlink: Option<[u8; 32]>,
    at: Duration,
    node: usize,
    k: usize,
    size: usize,
) -> RawOp {
    let mut text = format!("n{node:03} #{k:05} hello neighbours, all well here").into_bytes();
    text.resize(size, b'.');
    let body = lores_body(&text);
    sign(
        key,
        &NewOp {
            topic,
            seq,
            backlink,
            timestamp: EPOCH_MICROS + at.as_micros() as u64,
            prune: false,
            body: Some(&body),
        },
    )
}
