//! A hostile neighbour's frames, as the fuzzer picks them: garbage, forged Vectors, Wants,
//! Summaries, KeyWants and Hellos under any tags, real operations relayed back, repeats, at
//! any pace. The node under test never sends more than its own traffic, 4 times what it
//! heard and the strangers' answer pool an hour (plus the answers' share of the duty cycle
//! once a tag has been heard for ten minutes): the bound and its constants are in the proto
//! tests' `common::amplification`, which this target shares with the random-input test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let run = common::amplification::run(data);
    assert!(run.sent <= run.bound(), "{run:?} over {}", run.bound());
});
