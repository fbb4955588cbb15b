//! The compact operation codec: only what the receiver cannot rebuild goes on air.
//!
//! A Node-API header (see `node_header`) is rebuilt from the signature, timestamp, seq, the
//! body, the topic (from a 2-byte tag), the author (a 2-byte tag once its key is known) and the
//! backlink (the id of the previous operation, which the receiver holds). The rebuilt bytes are
//! then checked by `header::check` (canonical CBOR, p2panda's Ed25519 signature check), so a
//! decoded operation is byte-identical to the original and has the same id, or it is an error.
//!
//! Layout of the compact form (all multi-byte integers LEB128):
//!
//! ```text
//! flags u8 | topic tag [2] | author tag [2] or key [32] | signature [64] | timestamp | seq
//!          | backlink [32] if FLAG_BACKLINK (only with FLAG_PRUNE) | payload size, hash [32] if the body is detached
//!          | body (the rest; raw bytes of a `Vec<u8>` int-array body when BODY_INT_ARRAY)
//! ```
//!
//! Anything that is not a Node-API header travels in the full form:
//! `flags (FLAG_FULL) | topic tag [2] | header length | header | body (the rest)`.

use thiserror::Error;

use crate::bytes::{Reader, put_varint};
use crate::cbor;
use crate::header;
use crate::node_header::{HASH_LEN, NodeHeader};
use crate::operation::RawOp;
use crate::tags::{AuthorTag, TopicTag, log_id};

/// Largest encoded operation the mesh carries (compact or full form). An op must fit
/// reassembly buffers on every node and be sendable within a LoRa duty-cycle budget: 8 KiB is
/// 35 fragments of 240 bytes, about 40 s of airtime at SF9, more than an hour of EU 1 % budget.
pub const MAX_OP_BYTES: usize = 8192;

/// At most this many candidate topics and authors are tried for one tag, so a neighbour
/// cannot make us verify more than 16 signatures per operation.
pub const MAX_CANDIDATES: usize = 4;

const FLAG_PRUNE: u8 = 1 << 0;
const FLAG_AUTHOR_KEY: u8 = 1 << 1;
const FLAG_BACKLINK: u8 = 1 << 2;
const BODY_SHIFT: u8 = 3;
const BODY_MASK: u8 = 0b11 << BODY_SHIFT;
const FLAG_FULL: u8 = 1 << 7;
const RESERVED: u8 = (1 << 5) | (1 << 6);

/// How the body travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyForm {
    None = 0,
    Raw = 1,
    IntArray = 2,
    Detached = 3,
}

impl BodyForm {
    fn from_flags(flags: u8) -> Self {
        match (flags & BODY_MASK) >> BODY_SHIFT {
            0 => Self::None,
            1 => Self::Raw,
            2 => Self::IntArray,
            _ => Self::Detached,
        }
    }
}

/// What the receiver knows, for rebuilding headers.
pub trait OpContext {
    /// The carried topics whose tag is `tag` (normally one, or none).
    fn topics(&self, tag: TopicTag) -> Vec<[u8; 32]>;
    /// The known author keys whose tag is `tag`.
    fn authors(&self, tag: AuthorTag) -> Vec<[u8; 32]>;
    /// The id of operation `seq` of `author` in `topic`'s log, if held.
    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]>;
}

/// A decoded, signature-checked operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedOp {
    pub topic: [u8; 32],
    pub author: [u8; 32],
    pub seq: u64,
    pub op: RawOp,
}

/// Why a compact operation could not be turned back into a p2panda operation.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CompactError {
    #[error("compact operation is truncated or malformed")]
    Malformed,
    #[error("compact operation uses reserved flag bits {0:#04x}")]
    ReservedFlags(u8),
    #[error("operation of {0} bytes exceeds the {MAX_OP_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("no carried topic has tag {0:02x?}")]
    UnknownTopic(TopicTag),
    #[error("no known author has tag {0:02x?}; a Hello with the key is needed")]
    UnknownAuthor(AuthorTag),
    #[error("operation {seq} of this author needs its predecessor, which is not held")]
    MissingBacklink {
        topic: [u8; 32],
        author: [u8; 32],
        seq: u64,
    },
    #[error("no rebuilt header verifies: forged, tampered or for another topic")]
    BadSignature,
    #[error("body does not match the header's payload size and hash")]
    BodyMismatch,
}

/// Encodes `op`, an operation of `topic`. With `elide_author` the author travels as a 2-byte
/// tag (the receiver must have its key from a Hello or an earlier op); otherwise in full.
///
/// An operation too large for the mesh with its body travels without it (detached): the
/// header alone keeps its author's log whole on the other side, so the later operations of
/// that log still cross, and the body stays where iroh reaches. Only a header too large
/// for the mesh is refused.
pub fn encode(op: &RawOp, topic: &[u8; 32], elide_author: bool) -> Result<Vec<u8>, CompactError> {
    let with = |body: Option<&[u8]>| match NodeHeader::parse(&op.header)
        .filter(|h| h.log_id == log_id(topic))
    {
        Some(header) => encode_compact(&header, body, topic, elide_author),
        None => encode_full(
            &RawOp {
                header: op.header.clone(),
                body: body.map(<[u8]>::to_vec),
            },
            topic,
        ),
    };
    let mut out = with(op.body.as_deref());
    if out.len() > MAX_OP_BYTES && op.body.is_some() {
        out = with(None);
    }
    if out.len() > MAX_OP_BYTES {
        return Err(CompactError::TooLarge(out.len()));
    }
    Ok(out)
}

fn encode_compact(
    h: &NodeHeader,
    body: Option<&[u8]>,
    topic: &[u8; 32],
    elide_author: bool,
) -> Vec<u8> {
    let int_array = body.and_then(cbor::int_array_body);
    let form = match (body, &int_array) {
        (None, _) if h.payload_size > 0 => BodyForm::Detached,
        (None, _) => BodyForm::None,
        (Some(_), Some(_)) => BodyForm::IntArray,
        (Some(_), None) => BodyForm::Raw,
    };
    // Prune-flagged ops start a log afresh: the receiver may not hold their predecessor.
    let backlink = h.backlink.filter(|_| h.prune);
    let mut flags = (form as u8) << BODY_SHIFT;
    flags |= if h.prune { FLAG_PRUNE } else { 0 };
    flags |= if elide_author { 0 } else { FLAG_AUTHOR_KEY };
    flags |= if backlink.is_some() { FLAG_BACKLINK } else { 0 };

    let mut out = Vec::with_capacity(120 + body.map_or(0, <[u8]>::len));
    out.push(flags);
    out.extend_from_slice(&TopicTag::from_topic(topic).0);
    if elide_author {
        out.extend_from_slice(&AuthorTag::from_key(&h.author).0);
    } else {
        out.extend_from_slice(&h.author);
    }
    out.extend_from_slice(&h.signature);
    put_varint(&mut out, h.timestamp);
    put_varint(&mut out, h.seq);
    if let Some(backlink) = backlink {
        out.extend_from_slice(&backlink);
    }
    match (form, body) {
        (BodyForm::Detached, _) => {
            put_varint(&mut out, h.payload_size);
            out.extend_from_slice(&h.payload_hash.unwrap_or_default());
        }
        (BodyForm::IntArray, _) => out.extend_from_slice(int_array.as_deref().unwrap_or_default()),
        (BodyForm::Raw, Some(body)) => out.extend_from_slice(body),
        _ => {}
    }
    out
}

fn encode_full(op: &RawOp, topic: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(op.canonical_len() + 8);
    out.push(
        FLAG_FULL
            | if op.body.is_some() {
                (BodyForm::Raw as u8) << BODY_SHIFT
            } else {
                0
            },
    );
    out.extend_from_slice(&TopicTag::from_topic(topic).0);
    put_varint(&mut out, op.header.len() as u64);
    out.extend_from_slice(&op.header);
    if let Some(body) = &op.body {
        out.extend_from_slice(body);
    }
    out
}

/// Decodes a compact or full-form operation, rebuilding and verifying its header.
pub fn decode(bytes: &[u8], ctx: &impl OpContext) -> Result<DecodedOp, CompactError> {
    if bytes.len() > MAX_OP_BYTES {
        return Err(CompactError::TooLarge(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let flags = r.u8().ok_or(CompactError::Malformed)?;
    if flags & RESERVED != 0 {
        return Err(CompactError::ReservedFlags(flags & RESERVED));
    }
    let tag = TopicTag(r.array().ok_or(CompactError::Malformed)?);
    let mut topics = ctx.topics(tag);
    topics.truncate(MAX_CANDIDATES);
    if topics.is_empty() {
        return Err(CompactError::UnknownTopic(tag));
    }
    if flags & FLAG_FULL != 0 {
        decode_full(flags, r, &topics)
    } else {
        decode_compact(flags, r, &topics, ctx)
    }
}

/// The fields of a compact operation that do not depend on which candidate it belongs to.
struct Fields {
    signature: [u8; 64],
    timestamp: u64,
    seq: u64,
    prune: bool,
    backlink: Option<[u8; HASH_LEN]>,
    payload_size: u64,
    payload_hash: Option<[u8; HASH_LEN]>,
    body: Option<Vec<u8>>,
}

fn decode_compact(
    flags: u8,
    mut r: Reader,
    topics: &[[u8; 32]],
    ctx: &impl OpContext,
) -> Result<DecodedOp, CompactError> {
    let malformed = CompactError::Malformed;
    let mut authors = if flags & FLAG_AUTHOR_KEY != 0 {
        vec![r.array().ok_or(malformed.clone())?]
    } else {
        let tag = AuthorTag(r.array().ok_or(malformed.clone())?);
        let authors = ctx.authors(tag);
        if authors.is_empty() {
            return Err(CompactError::UnknownAuthor(tag));
        }
        authors
    };
    authors.truncate(MAX_CANDIDATES);
    let signature = r.array().ok_or(malformed.clone())?;
    let timestamp = r.varint().ok_or(malformed.clone())?;
    let seq = r
        .varint()
        .filter(|s| *s <= u64::from(u32::MAX))
        .ok_or(malformed.clone())?;
    // Only an operation that starts its log afresh carries its backlink: any other would
    // let a self-signed op at a high seq stand in a log with nothing below it.
    let backlink = match (flags & FLAG_BACKLINK != 0, flags & FLAG_PRUNE != 0) {
        (false, _) => None,
        (true, true) => Some(r.array().ok_or(malformed.clone())?),
        (true, false) => return Err(malformed),
    };
    let form = BodyForm::from_flags(flags);
    let (payload_size, payload_hash, body) = match form {
        BodyForm::Detached => {
            let size = r
                .varint()
                .filter(|s| *s > 0 && *s <= u64::from(u32::MAX))
                .ok_or(malformed.clone())?;
            let hash = r.array().ok_or(malformed.clone())?;
            r.is_empty().then_some(()).ok_or(malformed.clone())?;
            (size, Some(hash), None)
        }
        BodyForm::None => {
            r.is_empty().then_some(()).ok_or(malformed.clone())?;
            (0, None, None)
        }
        BodyForm::Raw | BodyForm::IntArray => {
            let rest = r.rest();
            let body = if form == BodyForm::IntArray {
                cbor::encode_int_array(rest)
            } else {
                rest.to_vec()
            };
            let hash = (!body.is_empty()).then(|| *blake3::hash(&body).as_bytes());
            (body.len() as u64, hash, Some(body))
        }
    };
    let fields = Fields {
        signature,
        timestamp,
        seq,
        prune: flags & FLAG_PRUNE != 0,
        backlink,
        payload_size,
        payload_hash,
        body,
    };

    let mut missing = None;
    for topic in topics {
        for author in &authors {
            let backlink = match (seq, fields.backlink) {
                (0, _) => None,
                (_, Some(inline)) => Some(inline),
                (_, None) => match ctx.op_id(topic, author, seq - 1) {
                    Some(id) => Some(id),
                    None => {
                        missing.get_or_insert(CompactError::MissingBacklink {
                            topic: *topic,
                            author: *author,
                            seq,
                        });
                        continue;
                    }
                },
            };
            if let Some(op) = rebuild(&fields, topic, author, backlink) {
                return Ok(DecodedOp {
                    topic: *topic,
                    author: *author,
                    seq,
                    op,
                });
            }
        }
    }
    Err(missing.unwrap_or(CompactError::BadSignature))
}

/// Builds the header for one candidate topic and author; `Some` only if p2panda accepts it.
fn rebuild(
    f: &Fields,
    topic: &[u8; 32],
    author: &[u8; 32],
    backlink: Option<[u8; 32]>,
) -> Option<RawOp> {
    let header = NodeHeader {
        author: *author,
        signature: f.signature,
        payload_size: f.payload_size,
        payload_hash: f.payload_hash,
        seq: f.seq,
        backlink,
        log_id: log_id(topic),
        timestamp: f.timestamp,
        prune: f.prune,
    }
    .encode();
    header::check(&header).ok()?;
    Some(RawOp {
        header,
        body: f.body.clone(),
    })
}

fn decode_full(flags: u8, mut r: Reader, topics: &[[u8; 32]]) -> Result<DecodedOp, CompactError> {
    let len = r.varint().ok_or(CompactError::Malformed)?;
    let header_bytes = usize::try_from(len)
        .ok()
        .and_then(|n| r.take(n))
        .ok_or(CompactError::Malformed)?;
    let header = header::check(header_bytes).map_err(|_| CompactError::BadSignature)?;
    let body = match BodyForm::from_flags(flags) {
        BodyForm::Raw => Some(r.rest().to_vec()),
        BodyForm::None if r.is_empty() => None,
        _ => return Err(CompactError::Malformed),
    };
    if let Some(body) = &body {
        let hash = (!body.is_empty()).then(|| *blake3::hash(body).as_bytes());
        if body.len() as u64 != u64::from(header.payload_size) || hash != header.payload_hash {
            return Err(CompactError::BodyMismatch);
        }
    }
    // A Node-API header names its log: it must be the log of the tagged topic.
    let topic = match NodeHeader::parse(header_bytes) {
        Some(node) => *topics
            .iter()
            .find(|t| log_id(t) == node.log_id)
            .ok_or(CompactError::BadSignature)?,
        None if topics.len() == 1 => topics[0],
        None => return Err(CompactError::UnknownTopic(TopicTag::from_topic(&topics[0]))),
    };
    Ok(DecodedOp {
        topic,
        author: header.author,
        seq: header.seq,
        op: RawOp {
            header: header_bytes.to_vec(),
            body,
        },
    })
}
