//! A stream of arbitrary fragments from arbitrary senders: no panic, and the reassembler's
//! memory stays within its limits after every fragment.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lorabridge_proto::message::Fragment;
use lorabridge_proto::{NodeTag, OpTag, Reassembler, ReassemblyLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ReassemblyLimits::default();
    let mut reassembler = Reassembler::new(limits);
    // Each record: sender, op tag byte, index, count, seconds, length, then `length` data bytes.
    let mut rest = data;
    while let [sender, op, index, count, secs, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        let fragment = Fragment { op: OpTag([*op; 4]), index: *index, count: *count, data: chunk.iter().copied().collect() };
        let _ = reassembler.push(Duration::from_secs(u64::from(*secs)), NodeTag([*sender, 0]), false, &fragment);
        assert!(reassembler.partial_ops() <= limits.total_ops);
        assert!(reassembler.buffered_bytes() <= limits.total_bytes);
        rest = tail;
    }
});
