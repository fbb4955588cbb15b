//! How much a node sends because of what a hostile neighbour sent it: the engine-level bound
//! that the `amplification` test checks over random inputs and the `engine` fuzz target checks
//! over fuzzed ones.
//!
//! One node holds 40 operations of its own. Its own traffic is what an identical node sends
//! over the same span with no one around. Everything it sends beyond that was caused by the
//! frames it heard: garbage, forged requests under invented or repeated tags, repeats, real
//! operations relayed back, Hellos and KeyWants. The bound, with its constants below, is
//!
//! ```text
//! sent − own ≤ K × heard + POOL_BYTES × (hours started)
//! ```
//!
//! `K` covers the small answers any frame may draw (a Summary, a Vector page, a Want, a
//! Hello: a few frames each, rate-limited). `POOL_BYTES` is the strangers' answer pool: 32
//! operations an hour (`engine::answers`), each one frame of at most the MTU, whatever the
//! strangers send. No `K` alone could hold that: one forged 15-byte Vector draws the whole
//! pool, about 290 times its size.
//!
//! A tag heard again ten minutes after its first frame is acquainted
//! (`engine::ACQUAINTANCE`) and has an allowance of its own, 128 operation frames an hour
//! (`ACQUAINTED_BYTES`). A tag that relayed one of our operations has proven it is a real
//! node and is answered like an honest neighbour: then the bound adds the answers' half of
//! the hour's duty cycle (`SHARE_BYTES`), the ceiling that the per-operation back-off and
//! the budget keep.

use std::time::Duration;

use lorabridge_proto::engine::ACQUAINTANCE;
use lorabridge_proto::message::{
    Hello, Message, RecentHeight, Summary, TopicSummary, Vector, Want, WantRange,
};
use lorabridge_proto::operation::RawOp;
use lorabridge_proto::{AuthorTag, FrameCodec, NetworkTag, NodeTag, TopicTag};

use super::medium::{LINK, Medium, NETWORK, node_key};
use super::{key, log};

const TOPIC: [u8; 32] = [0x42; 32];
const OWN_OPS: usize = 40;
const MTU: u64 = 255;

/// Bytes sent per byte heard, for the answers that are not operations.
pub const K: u64 = 4;
/// The strangers' answer pool of one hour, in bytes: 32 operation frames of at most the MTU.
pub const POOL_BYTES: u64 = 32 * MTU;
/// Bytes of the answers' half of an hour's 10 % duty cycle at SF7/BW125 (about 5.47 kbit/s):
/// 180 s of air, the ceiling on what known neighbours' requests can draw.
pub const SHARE_BYTES: u64 = 180 * 5470 / 8;
/// One acquainted tag's allowance of an hour, in bytes: 128 operation frames.
pub const ACQUAINTED_BYTES: u64 = 128 * MTU;

/// What one run measured.
#[derive(Debug)]
pub struct Run {
    /// Bytes of the frames the node heard.
    pub heard: u64,
    /// Bytes the node sent while hearing them.
    pub sent: u64,
    /// Bytes an identical node sent over the same span, hearing nothing.
    pub own: u64,
    /// The span, in started hours.
    pub hours: u64,
    /// Sender tags heard again ten minutes after their first frame.
    pub acquainted: u64,
    /// Whether some sender tag relayed one of our operations (which checks out).
    pub proven: bool,
}

impl Run {
    /// The bound this run must keep, in bytes.
    pub fn bound(&self) -> u64 {
        let share = if self.proven { SHARE_BYTES } else { 0 };
        let allowances = POOL_BYTES + self.acquainted * ACQUAINTED_BYTES + share;
        self.own + K * self.heard + allowances * self.hours
    }
}

fn ops() -> Vec<RawOp> {
    let payloads: Vec<Vec<u8>> = (0..OWN_OPS)
        .map(|i| format!("note {i}: the well on Elm Street is working again").into_bytes())
        .collect();
    log(&key(1), &TOPIC, &payloads)
}

/// A node holding its 40 operations, settled for ten minutes.
fn settled() -> Medium {
    let mut medium = Medium::new(1, &[TOPIC], |_, _| false, false);
    for op in ops() {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(Duration::from_secs(600));
    medium
}

/// Reads fuzz bytes; runs dry as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
    fn tag(&mut self) -> [u8; 2] {
        [self.byte(), self.byte()]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn frame(sender: [u8; 2], message: &Message) -> Option<Vec<u8>> {
    FrameCodec::new(NetworkTag::from_network_id(&NETWORK), None)
        .encode(NodeTag(sender), message, [9; 12], MTU as usize)
        .ok()
}

/// One hostile frame from the input, or `None` when the input chose one that does not encode.
fn next_frame(input: &mut Input<'_>, last: &Option<Vec<u8>>, own: &[RawOp]) -> Option<Vec<u8>> {
    let topic = TopicTag::from_topic(&TOPIC);
    let author = AuthorTag::from_key(key(1).verifying_key().as_bytes());
    let kind = input.byte() % 8;
    let sender = input.tag();
    let message = match kind {
        0 => {
            let len = usize::from(input.byte());
            return Some(input.bytes(len));
        }
        1 => Message::Vector(Vector {
            topic,
            from: AuthorTag([0, 0]),
            to: AuthorTag([0xff, 0xff]),
            heights: Default::default(),
        }),
        2 => {
            let from_seq = u64::from(input.byte() % OWN_OPS as u8);
            Message::Want(Want {
                topic,
                responder: NodeTag::from_key(&node_key(0)),
                ranges: [WantRange {
                    author,
                    from_seq,
                    to_seq: u64::MAX,
                }]
                .into_iter()
                .collect(),
            })
        }
        3 => Message::Summary(Summary {
            topics: [TopicSummary {
                topic,
                ops: u32::from(input.byte()),
                digest: [input.byte(), input.byte(), input.byte(), input.byte()],
            }]
            .into_iter()
            .collect(),
            recent: [RecentHeight {
                topic,
                author,
                ops: u64::from(input.byte() % 4),
            }]
            .into_iter()
            .collect(),
        }),
        4 => Message::KeyWant([author].into_iter().collect()),
        5 => Message::Hello(Hello {
            keys: [*key(1).verifying_key().as_bytes(), [input.byte(); 32]]
                .into_iter()
                .collect(),
        }),
        6 => {
            let op = &own[usize::from(input.byte()) % own.len()];
            let bytes = lorabridge_proto::compact::encode(op, &TOPIC, false).ok()?;
            Message::Op(bytes.into_iter().collect())
        }
        _ => return last.clone(),
    };
    frame(sender, &message)
}

/// Plays `data` as a hostile neighbour's frames, each after a delay of up to 4 minutes, and
/// measures the node's sends against an identical node's over the same span.
pub fn run(data: &[u8]) -> Run {
    let own_ops = ops();
    let mut node = settled();
    let mut quiet = settled();
    let sent_before = node.nodes[0].engine.stats(*LINK).bytes_sent;
    let start = node.now;
    let mut input = Input(data);
    let (mut heard, mut last) = (0u64, None);
    let mut first_heard = std::collections::HashMap::new();
    let mut acquainted = std::collections::HashSet::new();
    let mut proven = false;
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        node.run_for(Duration::from_secs(u64::from(input.byte())));
        if let Some(bytes) = next_frame(&mut input, &last, &own_ops) {
            heard += bytes.len() as u64;
            if let Some(tag) = bytes.get(3..5) {
                let first = *first_heard.entry(tag.to_vec()).or_insert(node.now);
                if node.now.duration_since(first) >= ACQUAINTANCE {
                    acquainted.insert(tag.to_vec());
                }
            }
            node.inject(0, &bytes);
            // Only a relay of one of our operations can prove a tag.
            proven |= node.nodes[0]
                .engine
                .neighbours(*LINK)
                .iter()
                .any(|n| n.ops > 0);
            last = Some(bytes);
        }
    }
    // What the last frames drew goes out within the answers' hold-offs and the duty cycle.
    node.run_for(Duration::from_secs(600));
    let span = node.now.duration_since(start);
    quiet.run_for(span);
    Run {
        heard,
        sent: node.nodes[0].engine.stats(*LINK).bytes_sent - sent_before,
        own: quiet.nodes[0].engine.stats(*LINK).bytes_sent - sent_before,
        hours: span.as_secs().div_ceil(3600),
        acquainted: acquainted.len() as u64,
        proven,
    }
}
