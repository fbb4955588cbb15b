//! Cross-checks the proto crate against the real `p2panda` 0.7 crate: operations signed with
//! p2panda's own Node-API `Extensions` go through the compact codec and come back as headers
//! p2panda decodes into its own types with the same id, and `proto::operation::sign` writes
//! exactly the bytes p2panda writes.

use lorabridge_proto::compact;
use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use p2panda::operation::{Extensions, Header, Operation};
use p2panda_core::cbor::{decode_cbor, encode_cbor};
use p2panda_core::{Body, SigningKey, Topic};

#[path = "../../proto/tests/common/ctx.rs"]
mod ctx;
use ctx::Ctx;

/// Signs a log the way p2panda's Node API does (its forge: builder + `Extensions::from_topic`).
fn p2panda_log(
    key: &SigningKey,
    topic: Topic,
    payloads: &[&[u8]],
    prune_last: bool,
) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    for (seq, payload) in payloads.iter().enumerate() {
        let body = Body::from(encode_cbor(&payload.to_vec()).unwrap());
        let mut extensions = Extensions::from_topic(topic);
        if prune_last && seq + 1 == payloads.len() {
            extensions = extensions.set_prune_flag(true);
        }
        let mut header = Header {
            version: 1,
            verifying_key: key.verifying_key(),
            signature: None,
            payload_size: body.size(),
            payload_hash: Some(body.hash()),
            seq_num: seq as u32,
            backlink: ops.last().map(|op| op.hash),
            extensions,
        };
        header.sign(key);
        ops.push(Operation {
            hash: header.hash(),
            header,
            body: Some(body),
        });
    }
    ops
}

fn raw(op: &Operation) -> RawOp {
    RawOp {
        header: op.header.to_bytes(),
        body: op.body.as_ref().map(Body::to_bytes),
    }
}

#[test]
fn p2panda_operations_survive_the_compact_codec() {
    let key = SigningKey::generate();
    let topic = Topic::random();
    let ops = p2panda_log(&key, topic, &[b"hello", &[0u8; 40], b""], true);
    let author = *key.verifying_key().as_bytes();
    let mut receiver = Ctx {
        topics: vec![*topic.as_bytes()],
        authors: vec![author],
        ..Ctx::default()
    };
    for (seq, op) in ops.iter().enumerate() {
        for elide_author in [false, true] {
            let bytes = compact::encode(&raw(op), topic.as_bytes(), elide_author).unwrap();
            let decoded = compact::decode(&bytes, &receiver).unwrap();
            assert_eq!(decoded.op, raw(op));
            // p2panda decodes the rebuilt header into its own Node-API types, same id.
            let header: Header = decode_cbor(&decoded.op.header[..]).unwrap();
            assert_eq!(header.hash(), op.hash);
            assert_eq!(header.extensions.log_id(), op.header.extensions.log_id());
            assert_eq!(
                header.extensions.prune_flag(),
                op.header.extensions.prune_flag()
            );
            let rebuilt = Operation {
                hash: header.hash(),
                header,
                body: decoded.op.body.map(Body::from),
            };
            p2panda_core::validate_operation(&rebuilt).unwrap();
        }
        receiver.hold(*topic.as_bytes(), author, seq as u64, &raw(op));
    }
}

#[test]
fn proto_signs_the_same_bytes_as_p2panda() {
    let key = SigningKey::generate();
    let topic = Topic::random();
    let ops = p2panda_log(&key, topic, &[b"first", b"second"], false);
    for (seq, op) in ops.iter().enumerate() {
        let body = lores_body(if seq == 0 { b"first" } else { b"second" });
        let ours = sign(
            &key,
            &NewOp {
                topic: topic.as_bytes(),
                seq: seq as u32,
                backlink: op.header.backlink.map(|h| *h.as_bytes()),
                timestamp: op.header.extensions.timestamp().into(),
                prune: false,
                body: Some(&body),
            },
        );
        assert_eq!(
            ours,
            raw(op),
            "Ed25519 is deterministic, so the bytes must match exactly"
        );
    }
}
