//! A small in-memory `OpContext`: the topics, authors and operation ids a receiver knows.
//! Shared by the proto tests, the codec bench and the p2panda cross-check (by `#[path]`).

use std::collections::HashMap;

use lorabridge_proto::operation::RawOp;
use lorabridge_proto::{AuthorTag, OpContext, TopicTag};

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
