//! The Trickle timer (RFC 6206) that paces summaries.
//!
//! In each interval a node picks a random instant in its second half and sends its summary
//! then, unless it has already heard `k` summaries consistent with its own. While everyone
//! agrees the interval doubles up to the maximum, so idle chatter falls toward one summary
//! per neighbourhood per `imax`; an inconsistency or a new operation resets it to `imin`.

use std::time::Duration;

/// Trickle's three constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrickleConfig {
    /// Shortest interval: how soon a change is announced.
    pub imin: Duration,
    /// Number of doublings from `imin` to the longest interval.
    pub doublings: u32,
    /// Redundancy constant: consistent summaries heard that make ours unnecessary.
    pub k: u32,
}

impl TrickleConfig {
    pub fn imax(&self) -> Duration {
        self.imin.saturating_mul(1 << self.doublings.min(20))
    }
}

/// One Trickle timer. Randomness is passed in, so runs replay from a seed.
#[derive(Clone, Debug)]
pub struct Trickle {
    config: TrickleConfig,
    interval: Duration,
    start: Duration,
    fire_at: Duration,
    fired: bool,
    counter: u32,
}

impl Trickle {
    /// A timer that starts its first (shortest) interval at `now`.
    pub fn new(config: TrickleConfig, now: Duration, random: u64) -> Self {
        let mut trickle = Self {
            config,
            interval: config.imin,
            start: now,
            fire_at: now,
            fired: false,
            counter: 0,
        };
        trickle.begin(now, random);
        trickle
    }

    fn begin(&mut self, now: Duration, random: u64) {
        self.start = now;
        self.counter = 0;
        self.fired = false;
        let half = self.interval / 2;
        let jitter = half.as_nanos().max(1) as u64;
        self.fire_at = now + half + Duration::from_nanos(random % jitter);
    }

    /// Shortens the interval to at most `interval` (no-op if it is already that short):
    /// a softer reset for news that other mechanisms already spread.
    pub fn shorten(&mut self, now: Duration, interval: Duration, random: u64) {
        let interval = interval.max(self.config.imin);
        if self.interval > interval {
            self.interval = interval;
            self.begin(now, random);
        }
    }

    /// A summary consistent with ours was heard.
    pub fn heard_consistent(&mut self) {
        self.counter = self.counter.saturating_add(1);
    }

    /// Something changed or disagreed: go back to the shortest interval (no-op if already there).
    pub fn reset(&mut self, now: Duration, random: u64) {
        if self.interval > self.config.imin {
            self.interval = self.config.imin;
            self.begin(now, random);
        }
    }

    /// Advances the timer to `now`; true if a summary should be sent now.
    pub fn poll(&mut self, now: Duration, random: u64) -> bool {
        let mut send = false;
        loop {
            if !self.fired && now >= self.fire_at {
                self.fired = true;
                send |= self.counter < self.config.k;
            }
            let end = self.start + self.interval;
            if now < end {
                return send;
            }
            self.interval = (self.interval * 2).min(self.config.imax());
            self.begin(end, random);
        }
    }

    /// When `poll` next has something to do.
    pub fn deadline(&self) -> Duration {
        if self.fired {
            self.start + self.interval
        } else {
            self.fire_at
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: TrickleConfig = TrickleConfig {
        imin: Duration::from_secs(10),
        doublings: 4,
        k: 1,
    };

    /// Counts sends over `until` with the timer polled at every deadline.
    fn sends(
        trickle: &mut Trickle,
        from: Duration,
        until: Duration,
        consistent_each_interval: bool,
    ) -> u32 {
        let (mut now, mut count) = (from, 0);
        while now < until {
            if consistent_each_interval {
                trickle.heard_consistent();
            }
            count += u32::from(trickle.poll(now, now.as_nanos() as u64 * 7919));
            now = trickle.deadline();
        }
        count
    }

    #[test]
    fn interval_doubles_to_imax_and_sends_once_per_interval() {
        let mut trickle = Trickle::new(CONFIG, Duration::ZERO, 1);
        // Intervals 10, 20, 40, 80, 160, 160, ... seconds: by 630 s that is 6 intervals.
        let count = sends(
            &mut trickle,
            Duration::ZERO,
            Duration::from_secs(630),
            false,
        );
        assert_eq!(trickle.interval(), CONFIG.imax());
        assert!((5..=7).contains(&count), "{count} sends");
    }

    #[test]
    fn consistent_neighbours_silence_it() {
        let mut trickle = Trickle::new(CONFIG, Duration::ZERO, 1);
        assert_eq!(
            sends(
                &mut trickle,
                Duration::ZERO,
                Duration::from_secs(3600),
                true
            ),
            0
        );
    }

    #[test]
    fn reset_returns_to_imin() {
        let mut trickle = Trickle::new(CONFIG, Duration::ZERO, 1);
        sends(
            &mut trickle,
            Duration::ZERO,
            Duration::from_secs(1000),
            false,
        );
        let now = Duration::from_secs(1000);
        trickle.reset(now, 5);
        assert_eq!(trickle.interval(), CONFIG.imin);
        assert!(
            trickle.deadline() >= now + CONFIG.imin / 2 && trickle.deadline() < now + CONFIG.imin
        );
    }
}
