//! The engine-level amplification bound over random hostile inputs (see
//! `common::amplification`); `proto/fuzz/run engine` searches the same bound with a fuzzer.
mod common;

use common::amplification::run;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_node_sends_within_k_times_what_it_heard_plus_its_own_traffic(
        data in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        let r = run(&data);
        prop_assert!(r.sent <= r.bound(), "{r:?} over {}", r.bound());
    }
}
