//! Frames and messages: round trips, typed rejections, no panics on any input.

use lorabridge_proto::message::{
    Fragment, Height, Hello, MAX_HELLO_KEYS, MAX_SUMMARY_RECENT, MAX_SUMMARY_TOPICS,
    MAX_VECTOR_HEIGHTS, MAX_WANT_RANGES, Message, RecentHeight, Summary, TopicSummary, Vector,
    Want, WantRange, state_digest,
};
use lorabridge_proto::{
    AuthorTag, FrameCodec, FrameError, NetworkTag, NodeTag, OpTag, RegionKey, TopicTag,
};
use proptest::collection::vec;
use proptest::prelude::*;

const MTU: usize = 508;
const SENDER: NodeTag = NodeTag([0xab, 0xcd]);

fn network() -> NetworkTag {
    NetworkTag::from_network_id(&[42; 32])
}

fn plain() -> FrameCodec {
    FrameCodec::new(network(), None)
}

fn sealed(key: u8) -> FrameCodec {
    FrameCodec::new(network(), Some(RegionKey::new(&[key; 32])))
}

fn bounded<T, const N: usize>(items: Vec<T>) -> heapless::Vec<T, N> {
    items.into_iter().take(N).collect()
}

fn message() -> impl Strategy<Value = Message> {
    let tag = any::<[u8; 2]>();
    prop_oneof![
        (
            vec(
                (tag, any::<u32>(), any::<[u8; 4]>()),
                0..=MAX_SUMMARY_TOPICS
            ),
            vec((tag, tag, any::<u64>()), 0..=MAX_SUMMARY_RECENT)
        )
            .prop_map(|(t, r)| Message::Summary(Summary {
                topics: bounded(
                    t.into_iter()
                        .map(|(tag, ops, digest)| TopicSummary {
                            topic: TopicTag(tag),
                            ops,
                            digest
                        })
                        .collect()
                ),
                recent: bounded(
                    r.into_iter()
                        .map(|(topic, author, ops)| RecentHeight {
                            topic: TopicTag(topic),
                            author: AuthorTag(author),
                            ops
                        })
                        .collect()
                ),
            })),
        (
            tag,
            tag,
            tag,
            vec((tag, any::<u64>()), 0..=MAX_VECTOR_HEIGHTS)
        )
            .prop_map(|(t, from, to, h)| {
                Message::Vector(Vector {
                    topic: TopicTag(t),
                    from: AuthorTag(from),
                    to: AuthorTag(to),
                    heights: bounded(
                        h.into_iter()
                            .map(|(a, ops)| Height {
                                author: AuthorTag(a),
                                ops,
                            })
                            .collect(),
                    ),
                })
            }),
        (
            tag,
            tag,
            vec((tag, any::<u64>(), any::<u64>()), 0..=MAX_WANT_RANGES)
        )
            .prop_map(|(t, responder, r)| Message::Want(Want {
                topic: TopicTag(t),
                responder: NodeTag(responder),
                ranges: bounded(
                    r.into_iter()
                        .map(|(a, from_seq, to_seq)| WantRange {
                            author: AuthorTag(a),
                            from_seq,
                            to_seq
                        })
                        .collect()
                ),
            })),
        vec(any::<u8>(), 0..400).prop_map(|b| Message::Op(bounded(b))),
        (
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            vec(any::<u8>(), 0..400)
        )
            .prop_map(|(op, index, count, data)| {
                Message::Fragment(Fragment {
                    op: OpTag(op),
                    index,
                    count,
                    data: bounded(data),
                })
            }),
        vec(any::<[u8; 32]>(), 0..=MAX_HELLO_KEYS)
            .prop_map(|k| Message::Hello(Hello { keys: bounded(k) })),
        vec(tag, 0..=MAX_HELLO_KEYS)
            .prop_map(|t| Message::KeyWant(bounded(t.into_iter().map(AuthorTag).collect()))),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips_plain_and_sealed(m in message(), nonce: [u8; 12]) {
        for codec in [plain(), sealed(1)] {
            let frame = codec.encode(SENDER, &m, nonce, MTU).unwrap();
            prop_assert!(frame.len() <= MTU);
            let decoded = codec.decode(&frame).unwrap();
            prop_assert_eq!(decoded.sender, SENDER);
            prop_assert_eq!(&decoded.message, &m);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = plain().decode(&bytes);
        let _ = sealed(1).decode(&bytes);
        let _ = postcard::from_bytes::<Message>(&bytes);
    }

    #[test]
    fn corrupted_frames_are_rejected(m in message(), index: usize, flip in 1u8..=255) {
        let frame = plain().encode(SENDER, &m, [0; 12], MTU).unwrap();
        let mut bad = frame.clone();
        let i = index % bad.len();
        bad[i] ^= flip;
        // CRC-16 catches every error burst of 16 bits or fewer.
        prop_assert!(plain().decode(&bad).is_err());
    }
}

fn hello() -> Message {
    Message::Hello(Hello {
        keys: bounded(vec![[9; 32]]),
    })
}

/// Re-seals `frame` with a fresh CRC after `edit`, so the check under test is not the CRC.
fn edited(mut frame: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    frame.truncate(frame.len() - 2);
    edit(&mut frame);
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740).checksum(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame
}

#[test]
fn wrong_version_network_flags_and_crc_are_typed_errors() {
    let frame = plain().encode(SENDER, &hello(), [0; 12], MTU).unwrap();
    let mut bad_crc = frame.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert_eq!(plain().decode(&bad_crc), Err(FrameError::BadCrc));
    assert_eq!(
        plain().decode(&edited(frame.clone(), |f| f[0] = 2 << 4)),
        Err(FrameError::UnsupportedVersion(2))
    );
    assert_eq!(
        plain().decode(&edited(frame.clone(), |f| f[0] |= 0x4)),
        Err(FrameError::UnknownFlags(0x4))
    );
    let foreign = FrameCodec::new(NetworkTag::from_network_id(&[43; 32]), None);
    assert!(matches!(
        foreign.decode(&frame),
        Err(FrameError::ForeignNetwork(_))
    ));
    assert_eq!(plain().decode(&frame[..4]), Err(FrameError::TooShort(4)));
    let trailing = edited(frame, |f| f.push(0));
    assert!(matches!(
        plain().decode(&trailing),
        Err(FrameError::Message(_))
    ));
}

#[test]
fn region_key_mismatches_are_rejected_as_such() {
    let secret = sealed(1).encode(SENDER, &hello(), [5; 12], MTU).unwrap();
    assert_eq!(sealed(2).decode(&secret), Err(FrameError::WrongKey));
    assert_eq!(plain().decode(&secret), Err(FrameError::KeyRequired));
    let open = plain().encode(SENDER, &hello(), [0; 12], MTU).unwrap();
    assert_eq!(sealed(1).decode(&open), Err(FrameError::PlaintextRefused));
    // The header is authenticated: a relabelled sender fails even with a valid CRC.
    let relabelled = edited(secret, |f| f[3] ^= 1);
    assert_eq!(sealed(1).decode(&relabelled), Err(FrameError::WrongKey));
}

#[test]
fn overhead_and_mtu_are_enforced() {
    assert_eq!(plain().overhead(), 7);
    assert_eq!(sealed(1).overhead(), 35);
    let frame = plain().encode(SENDER, &hello(), [0; 12], MTU).unwrap();
    // variant 1 + list length 1 + key 32
    assert_eq!(frame.len(), 7 + 34);
    let big = Message::Op(bounded(vec![0; 300]));
    assert_eq!(
        plain().encode(SENDER, &big, [0; 12], 255),
        Err(FrameError::TooLarge { len: 310, mtu: 255 })
    );
}

#[test]
fn lists_longer_than_their_bound_are_refused() {
    let mut bytes = postcard::to_allocvec(&hello()).unwrap();
    bytes[1] = (MAX_HELLO_KEYS + 1) as u8; // claims 7 keys
    bytes.extend(std::iter::repeat_n(0, 32 * 6));
    assert!(postcard::from_bytes::<Message>(&bytes).is_err());
}

/// The engine names recent logs only in the room a frame has left, so the topics alone must fit.
#[test]
fn full_summary_fits_one_lora_frame() {
    let topics = (0..MAX_SUMMARY_TOPICS)
        .map(|i| TopicSummary {
            topic: TopicTag([i as u8, 0]),
            ops: u32::MAX,
            digest: [0xff; 4],
        })
        .collect();
    let frame = plain()
        .encode(
            SENDER,
            &Message::Summary(Summary {
                topics,
                recent: Default::default(),
            }),
            [0; 12],
            MTU,
        )
        .unwrap();
    assert!(frame.len() <= 255, "{} bytes", frame.len());
}

#[test]
fn state_digest_depends_on_heights_not_order() {
    let (a, b) = ([1; 32], [2; 32]);
    assert_eq!(
        state_digest([(a, 3), (b, 5)]),
        state_digest([(b, 5), (a, 3)])
    );
    assert_ne!(
        state_digest([(a, 3), (b, 5)]),
        state_digest([(a, 3), (b, 6)])
    );
    // An author with no operations is the same as an author not listed.
    assert_eq!(state_digest([(a, 3), (b, 0)]), state_digest([(a, 3)]));
}
