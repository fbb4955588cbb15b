//! Signed p2panda operations as the bridge carries them: canonical header bytes plus body.
//!
//! `sign` writes the same header the `p2panda` Node API writes (basic extensions: log id,
//! timestamp, prune flag), signed by p2panda-core itself, so the simulator and tests hold
//! real, verifiable operations without running a node.

use p2panda_core::{Body, Hash, Header, PruneFlag, SigningKey, Timestamp};
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::node_header::NodeHeader;
use crate::tags::log_id;

/// One operation: canonical CBOR header and the body, if the author's node still has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOp {
    pub header: Vec<u8>,
    pub body: Option<Vec<u8>>,
}

impl RawOp {
    /// The operation id: BLAKE3 of the header bytes.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&self.header).as_bytes()
    }

    /// Header plus body bytes: what p2panda's own sync sends for it.
    pub fn canonical_len(&self) -> usize {
        self.header.len() + self.body.as_ref().map_or(0, Vec::len)
    }

    /// Whether the operation carries the Node API's prune flag: it starts its log afresh,
    /// and p2panda deletes the author's earlier operations in that log when it stores it.
    pub fn prunes(&self) -> bool {
        NodeHeader::parse(&self.header).is_some_and(|h| h.prune)
    }
}

/// The Node API's basic extensions `(version 1, variant 0, log_id, timestamp, prune_flag)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BasicExtensions(u16, u16, Hash, Timestamp, PruneFlag);

/// What an author needs to sign one operation in a topic's log.
#[derive(Clone, Debug)]
pub struct NewOp<'a> {
    pub topic: &'a [u8; 32],
    pub seq: u32,
    /// Id of the author's previous operation in this log (required when `seq > 0`).
    pub backlink: Option<[u8; 32]>,
    /// Microseconds since the Unix epoch, as p2panda's `Timestamp`.
    pub timestamp: u64,
    pub prune: bool,
    pub body: Option<&'a [u8]>,
}

/// Signs `op` as the p2panda Node API would.
pub fn sign(key: &SigningKey, op: &NewOp) -> RawOp {
    let extensions = BasicExtensions(
        1,
        0,
        Hash::from(log_id(op.topic)),
        Timestamp::new(op.timestamp),
        PruneFlag::new(op.prune),
    );
    let body = op.body.map(Body::new);
    let size = body.as_ref().map_or(0, Body::size);
    let mut header = Header {
        version: 1,
        verifying_key: key.verifying_key(),
        signature: None,
        payload_size: size,
        // p2panda writes a payload hash only for a non-empty body.
        payload_hash: body.as_ref().filter(|_| size > 0).map(Body::hash),
        seq_num: op.seq,
        backlink: op.backlink.map(Hash::from),
        extensions,
    };
    header.sign(key);
    RawOp {
        header: header.to_bytes(),
        body: op.body.map(<[u8]>::to_vec),
    }
}

/// The body a LoRes app's payload becomes: serde writes `Vec<u8>` as a CBOR array of integers.
pub fn lores_body(payload: &[u8]) -> Vec<u8> {
    cbor::encode_int_array(payload)
}
