//! The protocols a run compares, behind one sans-IO interface so the same medium, traffic and
//! faults drive each of them.
//!
//! * [`lorabridge`]: the project's real sync engine.
//! * [`flood`]: Meshtastic-style managed flooding.
//! * [`announce`]: announce-and-repeat flooding as in p2panda's broadcast-sync example.
//!
//! [`attacker`] is no protocol under test: it runs on a scenario's hostile node whatever the
//! others run.

pub mod announce;
pub mod attacker;
mod chunks;
pub mod flood;
pub mod lorabridge;

use std::time::Duration;

use lorabridge_hardware::{AirtimeLedger, Modulation, RegionPlan};
use lorabridge_proto::engine::MemoryStore;
use lorabridge_proto::operation::RawOp;

/// One node's protocol, driven by the world in virtual time.
pub trait Protocol {
    /// An app on this node published `op` in `topic`.
    fn publish(&mut self, now: Duration, topic: &[u8; 32], op: &RawOp);
    /// A frame arrived intact.
    fn receive(&mut self, now: Duration, frame: &[u8], rssi: f32, snr: f32);
    /// The deadline from [`Protocol::next_timeout`] passed.
    fn timeout(&mut self, now: Duration);
    /// The next frame to send now, if any. The radio is idle and the channel clear when this
    /// is called; the frame goes on air at once.
    fn transmit(&mut self, now: Duration) -> Option<Vec<u8>>;
    /// When [`Protocol::timeout`] should next be called.
    fn next_timeout(&self) -> Option<Duration>;
    /// Ids of operations stored since the last call because of something heard.
    fn take_delivered(&mut self, into: &mut Vec<[u8; 32]>);
    /// What the node holds (kept over a restart that keeps state).
    fn store(&self) -> &MemoryStore;
    /// Operations (or op fragments) heard again although already held.
    fn duplicates(&self) -> u64;
    /// Frames sent so far by kind of message, for protocols that tell them apart.
    fn frames_by_kind(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Everything a protocol instance needs to start on one node.
#[derive(Clone, Debug)]
pub struct NodeSetup {
    pub index: usize,
    /// The node's public key (also the author key of what its apps publish).
    pub key: [u8; 32],
    /// Seed of the instance's own randomness.
    pub seed: [u8; 32],
    pub topics: Vec<[u8; 32]>,
    pub modulation: Modulation,
    pub plan: RegionPlan,
    pub mtu: usize,
    pub network_id: [u8; 32],
}

/// Makes a node's protocol instance at `now` with `store` (empty, or kept over a restart).
pub type Factory<'a> = dyn Fn(&NodeSetup, Duration, MemoryStore) -> Box<dyn Protocol> + 'a;

/// A frame waiting for the airtime budget, for the baselines (the engine has its own queue).
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub not_before: Duration,
    pub bytes: Vec<u8>,
    /// What it carries, so queued copies can be found (cancelled, deduplicated).
    pub tag: u64,
}

/// Charges a frame to a baseline's own duty-cycle ledger: `Err(wake)` if it may not go now.
/// The baselines obey the law like the engine does (Meshtastic gates on airtime too).
pub fn charge(
    ledger: &mut AirtimeLedger,
    m: &Modulation,
    now: Duration,
    len: usize,
) -> Result<(), Option<Duration>> {
    ledger
        .record(now, m.frequency_hz, m.bandwidth_hz, m.time_on_air(len))
        .map_err(|refusal| refusal.earliest)
}

/// The operation's author and seq, from its canonical header (what a p2panda node decodes).
pub fn author_seq(op: &RawOp) -> Option<([u8; 32], u64)> {
    let header = lorabridge_proto::header::check(&op.header).ok()?;
    Some((header.author, header.seq))
}

/// The canonical bytes p2panda's own sync sends for an op: header length, header, body.
pub fn canonical_bytes(op: &RawOp) -> Vec<u8> {
    let mut out = Vec::with_capacity(op.canonical_len() + 2);
    out.extend_from_slice(&(op.header.len() as u16).to_be_bytes());
    out.extend_from_slice(&op.header);
    if let Some(body) = &op.body {
        out.extend_from_slice(body);
    }
    out
}

/// Inverse of [`canonical_bytes`].
pub fn from_canonical(bytes: &[u8]) -> Option<RawOp> {
    let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    let header = bytes.get(2..2 + len)?.to_vec();
    let body = bytes.get(2 + len..)?;
    Some(RawOp {
        header,
        body: (!body.is_empty()).then(|| body.to_vec()),
    })
}

/// Checks an op heard from the air as a p2panda node would (header decodes, body hash and
/// signature verify) before storing it.
pub fn verify(op: &RawOp) -> Option<([u8; 32], u64)> {
    let header = lorabridge_proto::header::check(&op.header).ok()?;
    if let Some(body) = &op.body
        && header.payload_hash != Some(*blake3::hash(body).as_bytes())
    {
        return None;
    }
    // `check` has checked the signature.
    Some((header.author, header.seq))
}
