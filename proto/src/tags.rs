//! Short tags that stand for long identifiers on air.
//!
//! Every tag is a prefix of a value the receiver can compute or has heard in full, so a tag
//! never needs a table to be assigned or agreed. Tags can collide; wherever one decides what
//! an operation *is*, the signature check picks the one candidate that verifies
//! (see `compact`), so a collision costs a few verifications, never a wrong operation.

use serde::{Deserialize, Serialize};

/// Which p2panda network a frame belongs to: a keyed BLAKE3 of the 32-byte network id.
/// Two bytes let a bridge drop foreign LoRa traffic before any other work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkTag(pub [u8; 2]);

impl NetworkTag {
    pub fn from_network_id(network_id: &[u8; 32]) -> Self {
        let derived = blake3::derive_key("lorabridge 2026-11 network tag", network_id);
        Self([derived[0], derived[1]])
    }
}

/// The transmitting bridge: the first two bytes of its node public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeTag(pub [u8; 2]);

impl NodeTag {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self([key[0], key[1]])
    }
}

/// A carried topic: the first two bytes of its p2panda log id (BLAKE3 of the topic), which
/// every Node-API header already shows in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicTag(pub [u8; 2]);

impl TopicTag {
    pub fn from_topic(topic: &[u8; 32]) -> Self {
        let log_id = log_id(topic);
        Self([log_id[0], log_id[1]])
    }
}

/// An operation author: the first two bytes of the author's public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuthorTag(pub [u8; 2]);

impl AuthorTag {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self([key[0], key[1]])
    }
}

/// One operation: the first four bytes of its id (the BLAKE3 hash of its header). Fragments
/// carry it so a receiver can group them and a neighbour can recognise an op it was about to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpTag(pub [u8; 4]);

impl OpTag {
    pub fn from_id(id: &[u8; 32]) -> Self {
        Self([id[0], id[1], id[2], id[3]])
    }
}

/// The p2panda Node API's log id for a topic: BLAKE3 of the topic bytes.
pub fn log_id(topic: &[u8; 32]) -> [u8; 32] {
    *blake3::hash(topic).as_bytes()
}
