//! The engine's clock, a type of its own so that an owner with several clocks (the daemon
//! also keeps unix time, for Reticulum and its database) cannot hand the engine the wrong one.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point on the owner's monotonic clock, as time since an origin the owner picks (its
/// start, or a little before it: see `restore_airtime`). Never the wall clock: it must not
/// go back between calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EngineTime(Duration);

impl EngineTime {
    /// The clock's origin.
    pub const ZERO: Self = Self(Duration::ZERO);

    pub const fn from_start(since: Duration) -> Self {
        Self(since)
    }

    pub const fn since_start(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `by` earlier, or the origin if that is before it.
    pub fn saturating_sub(self, by: Duration) -> Self {
        Self(self.0.saturating_sub(by))
    }
}

impl Add<Duration> for EngineTime {
    type Output = Self;

    fn add(self, by: Duration) -> Self {
        Self(self.0 + by)
    }
}

impl AddAssign<Duration> for EngineTime {
    fn add_assign(&mut self, by: Duration) {
        self.0 += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_and_earlier_times_stop_at_the_origin() {
        let t = EngineTime::from_start(Duration::from_secs(5));
        let later = t + Duration::from_secs(3);
        assert_eq!(later.duration_since(t), Duration::from_secs(3));
        assert_eq!(t.duration_since(later), Duration::ZERO);
        assert_eq!(t.saturating_sub(Duration::from_secs(9)), EngineTime::ZERO);
        assert_eq!(later.saturating_sub(Duration::from_secs(3)), t);
        let mut moved = t;
        moved += Duration::from_secs(3);
        assert_eq!(
            (moved, moved.since_start()),
            (later, Duration::from_secs(8))
        );
    }
}
