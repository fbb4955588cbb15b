//! Arbitrary compact operations against a receiver that knows one topic, one author and one
//! predecessor: decoding must not panic, and anything it accepts must carry a header that
//! p2panda verifies (checked inside the decoder) and re-encode losslessly. Each input is also
//! tried with the known topic's tag after its first byte, to get past the topic lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorabridge_proto::{AuthorTag, OpContext, TopicTag, compact};

struct Ctx;

const TOPIC: [u8; 32] = [7; 32];
const AUTHOR: [u8; 32] = [
    0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x95, 0xfd, 0x52, 0xdb, 0x2d, 0x3c, 0xba, 0x5d, 0x72, 0xca, 0x67, 0x09, 0xbf,
    0x1d, 0x94, 0x12, 0x1b, 0xf3, 0x74, 0x88, 0x01, 0xb4, 0x0f, 0x6f, 0x5c,
];

impl OpContext for Ctx {
    fn topics(&self, tag: TopicTag) -> Vec<[u8; 32]> {
        (tag == TopicTag::from_topic(&TOPIC)).then_some(TOPIC).into_iter().collect()
    }
    fn authors(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        (tag == AuthorTag::from_key(&AUTHOR)).then_some(AUTHOR).into_iter().collect()
    }
    fn op_id(&self, _: &[u8; 32], _: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        (seq == 0).then_some([1; 32])
    }
}

fuzz_target!(|data: &[u8]| {
    let tagged = match data.split_first() {
        Some((flags, rest)) => [&[*flags][..], &TopicTag::from_topic(&TOPIC).0, rest].concat(),
        None => Vec::new(),
    };
    for input in [data, &tagged[..]] {
        if let Ok(decoded) = compact::decode(input, &Ctx) {
            let again = compact::encode(&decoded.op, &decoded.topic, false).expect("re-encodes");
            assert_eq!(compact::decode(&again, &Ctx).expect("decodes again").op, decoded.op);
        }
    }
});
