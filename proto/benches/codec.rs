//! Encode/decode costs of frames and compact operations.
//!
//! `cargo bench --ignore-rust-version -p lorabridge-proto --bench codec`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lorabridge_proto::message::{Summary, TopicSummary};
use lorabridge_proto::operation::{NewOp, lores_body, sign};
use lorabridge_proto::{FrameCodec, Message, NetworkTag, NodeTag, RegionKey, TopicTag, compact};
use p2panda_core::SigningKey;

#[path = "../tests/common/ctx.rs"]
mod ctx;
use ctx::Ctx;

fn benches(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let topic = [3; 32];
    let body = lores_body(&[b'x'; 40]);
    let first = sign(
        &key,
        &NewOp {
            topic: &topic,
            seq: 0,
            backlink: None,
            timestamp: 1,
            prune: false,
            body: Some(&body),
        },
    );
    let op = sign(
        &key,
        &NewOp {
            topic: &topic,
            seq: 1,
            backlink: Some(first.id()),
            timestamp: 2,
            prune: false,
            body: Some(&body),
        },
    );
    let author = *key.verifying_key().as_bytes();
    let mut ctx = Ctx {
        topics: vec![topic],
        authors: vec![author],
        ..Ctx::default()
    };
    ctx.hold(topic, author, 0, &first);
    let compact_op = compact::encode(&op, &topic, true).unwrap();

    c.bench_function("compact_encode_chat_op", |b| {
        b.iter(|| compact::encode(black_box(&op), &topic, true))
    });
    c.bench_function("compact_decode_chat_op", |b| {
        b.iter(|| compact::decode(black_box(&compact_op), &ctx))
    });

    let summary = Message::Summary(Summary {
        topics: (0..10u8)
            .map(|i| TopicSummary {
                topic: TopicTag([i, i]),
                ops: 1000,
                digest: [i; 4],
            })
            .collect(),
        recent: Default::default(),
    });
    let op_message = Message::Op(compact_op.iter().copied().collect());
    for (name, codec) in [
        ("plain", FrameCodec::new(NetworkTag([1, 2]), None)),
        (
            "sealed",
            FrameCodec::new(NetworkTag([1, 2]), Some(RegionKey::new(&[9; 32]))),
        ),
    ] {
        for (kind, message) in [("summary10", &summary), ("op", &op_message)] {
            let frame = codec
                .encode(NodeTag([0, 1]), message, [0; 12], 255)
                .unwrap();
            c.bench_function(&format!("frame_encode_{kind}_{name}"), |b| {
                b.iter(|| codec.encode(NodeTag([0, 1]), black_box(message), [0; 12], 255))
            });
            c.bench_function(&format!("frame_decode_{kind}_{name}"), |b| {
                b.iter(|| codec.decode(black_box(&frame)))
            });
        }
    }
}

criterion_group!(codec, benches);
criterion_main!(codec);
