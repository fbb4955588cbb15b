//! Random waits for listen-before-talk: a station that found the channel busy waits a random
//! time before it looks again, so two stations that deferred to the same frame do not both
//! start the moment it ends.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A duration drawn uniformly from `lo..=hi` (`lo` if `hi <= lo`).
///
/// The randomness is std's per-process hash keys, which differ on every call: plenty for
/// spreading retries apart, and no dependency for it. Not for anything secret.
pub fn random_between(lo: Duration, hi: Duration) -> Duration {
    let span = hi.saturating_sub(lo).as_micros() as u64;
    if span == 0 {
        return lo;
    }
    let draw = RandomState::new().build_hasher().finish() % (span + 1);
    lo + Duration::from_micros(draw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_differ() {
        let (lo, hi) = (Duration::from_millis(24), Duration::from_millis(100));
        let draws: Vec<Duration> = (0..200).map(|_| random_between(lo, hi)).collect();
        assert!(draws.iter().all(|d| (lo..=hi).contains(d)));
        assert!(draws.iter().any(|d| *d != draws[0]), "not one fixed value");
        assert_eq!(random_between(hi, lo), hi);
    }
}
