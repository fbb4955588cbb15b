//! The messages a frame carries, encoded with postcard.
//!
//! Lists are `heapless::Vec`s: postcard refuses a list longer than its capacity while
//! decoding, so a neighbour can never make us allocate more than these bounds.

use heapless::Vec as BoundedVec;
use serde::{Deserialize, Serialize};

use crate::tags::{AuthorTag, NodeTag, OpTag, TopicTag};

/// Topics in one Summary: 20 × at most 11 bytes, plus framing, fits one 255-byte LoRa frame.
pub const MAX_SUMMARY_TOPICS: usize = 20;
/// Recently grown logs named in one Summary: 8 × at most 14 bytes, sent only as far as the
/// frame has room after the topics.
pub const MAX_SUMMARY_RECENT: usize = 8;
/// Author heights in one Vector page.
pub const MAX_VECTOR_HEIGHTS: usize = 24;
/// Ranges in one Want.
pub const MAX_WANT_RANGES: usize = 16;
/// Keys in one Hello.
pub const MAX_HELLO_KEYS: usize = 6;
/// Data bytes of one Op or Fragment message: an RNode carries up to 508 bytes per frame.
pub const MAX_CHUNK: usize = 508;

/// One message: the payload of one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Summary(Summary),
    Vector(Vector),
    Want(Want),
    /// A whole encoded operation (see `compact`) that fits in one frame.
    Op(BoundedVec<u8, MAX_CHUNK>),
    Fragment(Fragment),
    Hello(Hello),
    /// Author tags whose keys the sender lacks (it heard their ops with the key elided);
    /// a neighbour that knows them answers with a Hello.
    KeyWant(BoundedVec<AuthorTag, MAX_HELLO_KEYS>),
}

/// What a node holds, topic by topic, in constant size per topic whatever the number of
/// authors or operations: neighbours compare digests and stay silent when they agree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub topics: BoundedVec<TopicSummary, MAX_SUMMARY_TOPICS>,
    /// The logs that grew at the sender lately, newest first, with its heights: a neighbour
    /// whose state differs only in these (or in one log it grew lately itself) sees exactly
    /// which operations are missing on which side, and fixes that without a Vector round.
    /// Empty once the sender has been quiet for a while, so idle summaries stay small; the
    /// sender leaves out what does not fit the link's frames.
    pub recent: BoundedVec<RecentHeight, MAX_SUMMARY_RECENT>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    pub topic: TopicTag,
    /// Number of operations held in the topic.
    pub ops: u32,
    /// `state_digest` of the topic's heights.
    pub digest: [u8; 4],
}

/// The height of one recently grown log (see `Summary::recent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentHeight {
    pub topic: TopicTag,
    pub author: AuthorTag,
    pub ops: u64,
}

/// One page of a topic's heights, sent when summaries disagree. A page covers the author
/// tags `from..=to`: an author in that range but not listed has no operations at the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vector {
    pub topic: TopicTag,
    pub from: AuthorTag,
    pub to: AuthorTag,
    pub heights: BoundedVec<Height, MAX_VECTOR_HEIGHTS>,
}

/// The height of one author's log at a node: its highest seq held plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Height {
    pub author: AuthorTag,
    pub ops: u64,
}

/// Operations a node lacks, as inclusive seq ranges per author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    pub topic: TopicTag,
    /// The neighbour known to hold the ranges, and the only one that answers: the others in
    /// range of the asker may not hear each other, so they could not cancel each other's
    /// copies of the answer.
    pub responder: NodeTag,
    pub ranges: BoundedVec<WantRange, MAX_WANT_RANGES>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantRange {
    pub author: AuthorTag,
    pub from_seq: u64,
    pub to_seq: u64,
}

/// One piece of an encoded operation too large for one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    pub op: OpTag,
    pub index: u8,
    pub count: u8,
    pub data: BoundedVec<u8, MAX_CHUNK>,
}

/// Full public keys, so later frames can name these authors (or nodes) by a 2-byte tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub keys: BoundedVec<[u8; 32], MAX_HELLO_KEYS>,
}

/// A short digest of a topic's heights, the same on every node that holds the same operations.
/// `heights` are (author key, ops held) pairs in any order.
pub fn state_digest(heights: impl IntoIterator<Item = ([u8; 32], u64)>) -> [u8; 4] {
    let mut sorted: std::vec::Vec<_> = heights.into_iter().filter(|(_, ops)| *ops > 0).collect();
    sorted.sort_unstable();
    let mut hasher = blake3::Hasher::new_derive_key("lorabridge 2026-11 state digest");
    for (author, ops) in sorted {
        hasher.update(&author);
        hasher.update(&ops.to_le_bytes());
    }
    let hash = hasher.finalize();
    let bytes = hash.as_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}
