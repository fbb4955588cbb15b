//! Fragmentation for any MTU and bounded reassembly.

use std::time::Duration;

use lorabridge_proto::fragment::{ReassemblyError, split};
use lorabridge_proto::message::Fragment;
use lorabridge_proto::{
    FrameCodec, Message, NetworkTag, NodeTag, OpTag, Reassembler, ReassemblyLimits, RegionKey,
};
use proptest::collection::vec;
use proptest::prelude::*;

const TAG: OpTag = OpTag([1, 2, 3, 4]);
const A: NodeTag = NodeTag([0, 1]);
const B: NodeTag = NodeTag([0, 2]);

fn fragments(op: &[u8], capacity: usize) -> Vec<Fragment> {
    split(op, TAG, capacity)
        .unwrap()
        .into_iter()
        .map(|m| match m {
            Message::Fragment(f) => f,
            other => panic!("expected fragments, got {other:?}"),
        })
        .collect()
}

proptest! {
    /// For every MTU from tiny (60 bytes, room for a sealed fragment) to RNode-sized, frames
    /// never exceed it and the op comes back.
    #[test]
    fn split_frames_fit_and_reassemble(op in vec(any::<u8>(), 1..3000), mtu in 60usize..=508, sealed: bool, reverse: bool) {
        let codec = FrameCodec::new(NetworkTag([1, 1]), sealed.then(|| RegionKey::new(&[3; 32])));
        let messages = split(&op, TAG, mtu - codec.overhead()).unwrap();
        let mut reassembler = Reassembler::new(ReassemblyLimits::default());
        let mut whole = None;
        let mut order: Vec<_> = messages.iter().collect();
        if reverse {
            order.reverse();
        }
        for message in order {
            let frame = codec.encode(A, message, [0; 12], mtu).unwrap();
            prop_assert!(frame.len() <= mtu);
            match codec.decode(&frame).unwrap().message {
                Message::Op(bytes) => whole = Some(bytes.to_vec()),
                Message::Fragment(f) => {
                    if let Some(done) = reassembler.push(Duration::ZERO, A, false, &f).unwrap() {
                        whole = Some(done);
                    }
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(whole, Some(op));
        prop_assert_eq!(reassembler.buffered_bytes(), 0);
    }

    /// Whatever fragments neighbours send, the reassembler stays within its bounds.
    #[test]
    fn memory_stays_bounded(stream in vec((0u8..20, any::<[u8; 4]>(), any::<u8>(), 1u8..=255, 0usize..508, 0u64..300), 0..300)) {
        let limits = ReassemblyLimits::default();
        let mut reassembler = Reassembler::new(limits);
        for (sender, op, index, count, len, secs) in stream {
            let fragment = Fragment { op: OpTag(op), index, count, data: vec![0; len].into_iter().collect() };
            let _ = reassembler.push(Duration::from_secs(secs), NodeTag([sender, 0]), false, &fragment);
            prop_assert!(reassembler.partial_ops() <= limits.total_ops);
            prop_assert!(reassembler.buffered_bytes() <= limits.total_bytes);
        }
    }
}

#[test]
fn op_that_fits_is_one_message_and_mtus_of_note_split_as_expected() {
    let op = vec![7u8; 300];
    let overhead = FrameCodec::new(NetworkTag([0, 0]), None).overhead();
    assert!(matches!(
        split(&op[..100], TAG, 255 - overhead).unwrap()[..],
        [Message::Op(_)]
    ));
    assert_eq!(
        split(&op, TAG, 255 - overhead).unwrap().len(),
        2,
        "LoRa 255"
    );
    assert_eq!(
        split(&op, TAG, 383 - overhead).unwrap().len(),
        1,
        "Reticulum SINGLE 383"
    );
    assert_eq!(
        split(&vec![7u8; 1000], TAG, 508 - overhead).unwrap().len(),
        3,
        "RNode 508"
    );
    assert!(split(&op, TAG, 8).is_err());
}

#[test]
fn bad_fragments_are_typed_errors_and_change_nothing() {
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let f = |index, count| Fragment {
        op: TAG,
        index,
        count,
        data: [1u8, 2].into_iter().collect(),
    };
    assert_eq!(
        r.push(Duration::ZERO, A, false, &f(2, 2)),
        Err(ReassemblyError::BadIndex { index: 2, count: 2 })
    );
    assert_eq!(
        r.push(Duration::ZERO, A, false, &f(0, 0)),
        Err(ReassemblyError::BadIndex { index: 0, count: 0 })
    );
    assert_eq!(r.partial_ops(), 0);
    assert_eq!(r.push(Duration::ZERO, A, false, &f(0, 3)), Ok(None));
    assert_eq!(
        r.push(Duration::ZERO, A, false, &f(1, 4)),
        Err(ReassemblyError::CountMismatch {
            expected: 3,
            got: 4
        })
    );
    // A repeated fragment is harmless.
    assert_eq!(r.push(Duration::ZERO, A, false, &f(0, 3)), Ok(None));
    assert_eq!(r.buffered_bytes(), 2);
}

#[test]
fn senders_are_kept_apart_and_partials_time_out() {
    let limits = ReassemblyLimits::default();
    let mut r = Reassembler::new(limits);
    let op = vec![9u8; 600];
    let from_a = fragments(&op, 248);
    let from_b = fragments(&op, 248);
    assert_eq!(r.push(Duration::ZERO, A, false, &from_a[0]).unwrap(), None);
    assert_eq!(r.push(Duration::ZERO, B, false, &from_b[1]).unwrap(), None);
    assert_eq!(
        r.partial_ops(),
        2,
        "same op tag from two senders is two partials"
    );
    assert_eq!(r.next_deadline(), Some(limits.timeout));
    r.expire(limits.timeout);
    assert_eq!(r.partial_ops(), 0);
    // After the timeout the rest alone cannot complete the op.
    assert_eq!(r.push(limits.timeout, A, false, &from_a[1]).unwrap(), None);
    assert_eq!(r.push(limits.timeout, A, false, &from_a[2]).unwrap(), None);
    assert_eq!(r.partial_ops(), 1);
}

#[test]
fn per_sender_limit_evicts_that_senders_oldest() {
    let limits = ReassemblyLimits::default();
    let mut r = Reassembler::new(limits);
    let piece = |op: u8| Fragment {
        op: OpTag([op; 4]),
        index: 0,
        count: 2,
        data: [op].into_iter().collect(),
    };
    r.push(Duration::from_secs(1), B, false, &piece(100))
        .unwrap();
    for op in 0..5u8 {
        r.push(Duration::from_secs(2 + u64::from(op)), A, false, &piece(op))
            .unwrap();
    }
    assert_eq!(
        r.partial_ops(),
        limits.per_sender + 1,
        "A holds its limit, B keeps its own"
    );
    // B's partial survived A's churn and still completes.
    let rest = Fragment {
        op: OpTag([100; 4]),
        index: 1,
        count: 2,
        data: [7u8].into_iter().collect(),
    };
    assert_eq!(
        r.push(Duration::from_secs(9), B, false, &rest).unwrap(),
        Some(vec![100, 7])
    );
}
