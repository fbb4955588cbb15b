//! The compact operation codec rebuilds byte-identical, verifiable p2panda headers.

mod common;

use common::{Ctx, TIMESTAMP, key, log};
use lorabridge_proto::compact::{self, MAX_OP_BYTES};
use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use lorabridge_proto::{AuthorTag, CompactError, TopicTag};
use p2panda_core::cbor::decode_cbor;
use p2panda_core::{Body, Hash, Header};
use proptest::prelude::*;

const TOPIC: [u8; 32] = [7; 32];

fn receiver_knowing(author: &[u8; 32]) -> Ctx {
    Ctx {
        topics: vec![[1; 32], TOPIC],
        authors: vec![*author],
        ..Ctx::default()
    }
}

/// Encodes, decodes and checks the result is the very same operation.
fn round_trip(op: &RawOp, ctx: &Ctx, elide_author: bool) -> Vec<u8> {
    let bytes = compact::encode(op, &TOPIC, elide_author).unwrap();
    let decoded = compact::decode(&bytes, ctx).unwrap();
    assert_eq!(decoded.op, *op, "header and body must be byte-identical");
    assert_eq!(decoded.op.id(), op.id());
    assert_eq!(decoded.topic, TOPIC);
    // p2panda itself accepts the rebuilt header, and the id is its hash.
    let header = decode_cbor::<Header<()>, _>(&decoded.op.header[..]);
    assert!(
        header.is_err(),
        "Node-API headers carry extensions, so () must not decode them"
    );
    let checked = lorabridge_proto::header::check(&decoded.op.header).unwrap();
    assert_eq!(checked.seq, decoded.seq);
    assert_eq!(*Hash::digest(&decoded.op.header).as_bytes(), op.id());
    bytes
}

#[test]
fn seq_zero_and_later_round_trip_with_and_without_author_key() {
    let author = key(1);
    let vk = *author.verifying_key().as_bytes();
    let ops = log(&author, &TOPIC, &[vec![1; 40], vec![2; 40], vec![3; 40]]);
    let mut ctx = receiver_knowing(&vk);
    for (seq, op) in ops.iter().enumerate() {
        let first = round_trip(op, &ctx, false);
        let known = round_trip(op, &ctx, true);
        assert_eq!(
            first.len(),
            known.len() + 30,
            "a known author costs 2 bytes instead of 32"
        );
        ctx.hold(TOPIC, vk, seq as u64, op);
    }
}

#[test]
fn chat_op_meets_the_size_targets() {
    let author = key(2);
    let vk = *author.verifying_key().as_bytes();
    let ops = log(&author, &TOPIC, &[vec![0x41; 40], vec![0x42; 40]]);
    assert_eq!(
        ops[1].canonical_len(),
        302,
        "the fact sheet's canonical LoRes chat op"
    );
    let known = compact::encode(&ops[1], &TOPIC, true).unwrap();
    let first = compact::encode(&ops[1], &TOPIC, false).unwrap();
    assert!(known.len() <= 120, "known author: {} bytes", known.len());
    assert!(first.len() <= 155, "first contact: {} bytes", first.len());
    let mut ctx = receiver_knowing(&vk);
    ctx.hold(TOPIC, vk, 0, &ops[0]);
    assert_eq!(compact::decode(&known, &ctx).unwrap().op, ops[1]);
}

#[test]
fn prune_flagged_op_carries_its_backlink() {
    let author = key(3);
    let vk = *author.verifying_key().as_bytes();
    let ops = log(&author, &TOPIC, &[vec![1], vec![2]]);
    let body = lores_body(b"after prune");
    let pruned = sign(
        &author,
        &NewOp {
            topic: &TOPIC,
            seq: 2,
            backlink: Some(ops[1].id()),
            timestamp: TIMESTAMP,
            prune: true,
            body: Some(&body),
        },
    );
    // The receiver holds nothing of this log: a prune point must still decode.
    round_trip(&pruned, &receiver_knowing(&vk), true);
}

#[test]
fn an_inline_backlink_without_the_prune_flag_is_refused() {
    // A self-signed op at a high seq, its backlink made up: accepted, it would stand in a
    // log with nothing below it, a log the repair can never fill.
    let author = key(3);
    let vk = *author.verifying_key().as_bytes();
    let made_up = [0xab; 32];
    let op = sign(
        &author,
        &NewOp {
            topic: &TOPIC,
            seq: 1000,
            backlink: Some(made_up),
            timestamp: TIMESTAMP,
            prune: false,
            body: Some(&lores_body(b"high")),
        },
    );
    let mut bytes = compact::encode(&op, &TOPIC, true).unwrap();
    assert_eq!(bytes[0] & 0b100, 0, "the encoder leaves the backlink out");
    // Forge the flag and splice the backlink in after the seq (flags, tags, signature,
    // timestamp varint, seq varint).
    let ctx = receiver_knowing(&vk);
    let seq_end = {
        let mut at = 1 + 2 + 2 + 64;
        while bytes[at] & 0x80 != 0 {
            at += 1;
        }
        at += 1;
        while bytes[at] & 0x80 != 0 {
            at += 1;
        }
        at + 1
    };
    bytes[0] |= 0b100;
    bytes.splice(seq_end..seq_end, made_up);
    assert_eq!(
        compact::decode(&bytes, &ctx).unwrap_err(),
        CompactError::Malformed
    );
    // With the prune flag set too, the signature (over prune = false) fails instead.
    bytes[0] |= 0b1;
    assert_eq!(
        compact::decode(&bytes, &ctx).unwrap_err(),
        CompactError::BadSignature
    );
}

#[test]
fn empty_and_detached_bodies_round_trip() {
    let author = key(4);
    let vk = *author.verifying_key().as_bytes();
    let ctx = receiver_knowing(&vk);
    let empty_vec = lores_body(&[]);
    for body in [
        None,
        Some(&[][..]),
        Some(&empty_vec[..]),
        Some(&b"raw bytes, not CBOR"[..]),
    ] {
        let op = sign(
            &author,
            &NewOp {
                topic: &TOPIC,
                seq: 0,
                backlink: None,
                timestamp: TIMESTAMP,
                prune: false,
                body,
            },
        );
        round_trip(&op, &ctx, true);
    }
    // A header whose body was deleted (off-chain data) travels with size and hash.
    let with_body = log(&author, &TOPIC, &[vec![9; 12]]).remove(0);
    let detached = RawOp {
        header: with_body.header.clone(),
        body: None,
    };
    round_trip(&detached, &ctx, true);
}

#[test]
fn non_node_api_headers_travel_in_full_form() {
    let author = key(5);
    let body = Body::new(b"plain");
    let mut header = Header::<()> {
        verifying_key: author.verifying_key(),
        payload_size: body.size(),
        payload_hash: Some(body.hash()),
        ..Header::default()
    };
    header.sign(&author);
    let op = RawOp {
        header: header.to_bytes(),
        body: Some(b"plain".to_vec()),
    };
    let ctx = Ctx {
        topics: vec![TOPIC],
        ..Ctx::default()
    };
    let bytes = compact::encode(&op, &TOPIC, true).unwrap();
    assert_eq!(compact::decode(&bytes, &ctx).unwrap().op, op);
    // A tampered body is caught even though the header is sent whole.
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        compact::decode(&tampered, &ctx),
        Err(CompactError::BodyMismatch)
    );
}

#[test]
fn missing_context_is_reported_precisely() {
    let author = key(6);
    let vk = *author.verifying_key().as_bytes();
    let ops = log(&author, &TOPIC, &[vec![1; 5], vec![2; 5]]);
    let known = compact::encode(&ops[1], &TOPIC, true).unwrap();
    assert_eq!(
        compact::decode(
            &known,
            &Ctx {
                topics: vec![TOPIC],
                ..Ctx::default()
            }
        ),
        Err(CompactError::UnknownAuthor(AuthorTag::from_key(&vk)))
    );
    assert_eq!(
        compact::decode(&known, &receiver_knowing(&vk)),
        Err(CompactError::MissingBacklink {
            topic: TOPIC,
            author: vk,
            seq: 1
        })
    );
    let other_topic = Ctx {
        topics: vec![[1; 32]],
        authors: vec![vk],
        ..Ctx::default()
    };
    assert_eq!(
        compact::decode(&known, &other_topic),
        Err(CompactError::UnknownTopic(TopicTag::from_topic(&TOPIC)))
    );
}

#[test]
fn tag_collisions_are_resolved_by_the_signature() {
    let author = key(7);
    let vk = *author.verifying_key().as_bytes();
    let mut impostor = vk;
    impostor[31] ^= 0x55; // same 2-byte tag, different key
    let op = log(&author, &TOPIC, &[vec![1; 8]]).remove(0);
    let ctx = Ctx {
        topics: vec![TOPIC],
        authors: vec![impostor, vk],
        ..Ctx::default()
    };
    let bytes = compact::encode(&op, &TOPIC, true).unwrap();
    let decoded = compact::decode(&bytes, &ctx).unwrap();
    assert_eq!((decoded.author, decoded.op), (vk, op));
}

#[test]
fn every_flipped_bit_is_rejected_or_decodes_to_the_same_op() {
    let author = key(8);
    let vk = *author.verifying_key().as_bytes();
    let ops = log(&author, &TOPIC, &[vec![5; 20], vec![6; 20]]);
    let mut ctx = receiver_knowing(&vk);
    ctx.hold(TOPIC, vk, 0, &ops[0]);
    let bytes = compact::encode(&ops[1], &TOPIC, true).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(decoded) = compact::decode(&flipped, &ctx) {
            panic!(
                "bit {bit} flipped still decodes, to op {:?}",
                Hash::from(decoded.op.id())
            );
        }
    }
}

#[test]
fn oversized_input_is_refused_and_an_oversized_op_crosses_without_its_body() {
    let ctx = Ctx {
        topics: vec![TOPIC],
        ..Ctx::default()
    };
    let huge = vec![0u8; MAX_OP_BYTES + 1];
    assert_eq!(
        compact::decode(&huge, &ctx),
        Err(CompactError::TooLarge(MAX_OP_BYTES + 1))
    );
    let author = key(9);
    let body = vec![1u8; MAX_OP_BYTES];
    let op = sign(
        &author,
        &NewOp {
            topic: &TOPIC,
            seq: 0,
            backlink: None,
            timestamp: TIMESTAMP,
            prune: false,
            body: Some(&body),
        },
    );
    // An op too large for the mesh crosses without its body (#13): the same id, no body.
    let bytes = compact::encode(&op, &TOPIC, false).expect("encodes detached");
    assert!(
        bytes.len() < 300,
        "only the header travels: {} bytes",
        bytes.len()
    );
    let decoded = compact::decode(&bytes, &receiver_knowing(author.verifying_key().as_bytes()))
        .expect("decodes");
    assert_eq!(decoded.op.id(), op.id());
    assert_eq!(decoded.op.body, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_lores_op_round_trips(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..4), elide: bool) {
        let author = key(10);
        let vk = *author.verifying_key().as_bytes();
        let ops = log(&author, &TOPIC, &payloads);
        let mut ctx = receiver_knowing(&vk);
        for (seq, op) in ops.iter().enumerate() {
            let bytes = compact::encode(op, &TOPIC, elide).unwrap();
            prop_assert_eq!(&compact::decode(&bytes, &ctx).unwrap().op, op);
            ctx.hold(TOPIC, vk, seq as u64, op);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let author = key(11);
        let vk = *author.verifying_key().as_bytes();
        let mut ctx = receiver_knowing(&vk);
        ctx.topics.push([0; 32]);
        let _ = compact::decode(&bytes, &ctx);
    }

    #[test]
    fn mutated_ops_never_panic_or_verify(index in 0usize..200, value: u8) {
        let author = key(12);
        let vk = *author.verifying_key().as_bytes();
        let op = log(&author, &TOPIC, &[vec![3; 40]]).remove(0);
        let mut bytes = compact::encode(&op, &TOPIC, false).unwrap();
        let i = index % bytes.len();
        prop_assume!(bytes[i] != value);
        bytes[i] = value;
        let decoded = compact::decode(&bytes, &receiver_knowing(&vk));
        prop_assert!(decoded.is_err(), "a changed byte produced a valid op");
    }
}
