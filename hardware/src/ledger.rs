//! The airtime ledger: may this transmitter send now, and if not, when?
//!
//! Duty cycle and dwell time are sliding-window limits: in any window of one hour (duty
//! cycle) or of the dwell window on one channel, the airtime must stay within the budget.
//! The ledger remembers recent transmissions per sub-band and answers exactly: the
//! `earliest` instant of a [`Refusal`] is the first at which the send fits, not a guess, so a
//! send queue can sleep until exactly then.
//!
//! Time is an input: every `now` is a [`Duration`] since an epoch the caller chooses (the
//! daemon's start, the simulator's time zero) and must not go backwards between calls. The
//! ledger models one transmitter: a send cannot start before the previous one has ended.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::region::{DUTY_CYCLE_WINDOW, RegionPlan, SubBand};

/// Tracks the airtime one transmitter has used in each sub-band of a plan.
///
/// Memory bound: a sub-band keeps only the sends that end within its longest window `W`
/// (one hour for duty cycle, else the dwell window) before the latest
/// [`AirtimeLedger::record`]; back-to-back sends on one channel are merged into one entry,
/// sends of zero airtime are not stored, and a sub-band without limits stores nothing. The
/// kept sends do not overlap and lie within two windows (the one ending at that `record`'s
/// `now` and the one ending with its send), each holding at most the budget `B`, so a
/// sub-band holds at most `2·⌊B / a_min⌋ + 2` entries of 40 bytes, `a_min` being the shortest
/// airtime recorded (for a dwell-only sub-band read `B = W`: its budget is per channel, so
/// only non-overlap bounds the total). Example: the shortest EU868 default frame (SF9/BW125, empty) takes
/// 103.424 ms, so the 10 % band (B = 360 s) holds at most 6 962 entries (≈ 280 kB), a 1 %
/// band at most 698.
#[derive(Clone, Debug)]
pub struct AirtimeLedger {
    bands: Vec<BandLedger>,
    /// End of the latest recorded send: the transmitter is busy until then.
    on_air_until: Duration,
}

/// One sub-band's rules and its recent sends, oldest first.
#[derive(Clone, Debug)]
struct BandLedger {
    band: SubBand,
    duty_budget: Option<Duration>,
    sends: VecDeque<Send>,
}

/// A recorded transmission occupying `[start, end)` on `frequency_hz`.
#[derive(Clone, Copy, Debug)]
struct Send {
    start: Duration,
    end: Duration,
    frequency_hz: u32,
}

/// A send that may not happen now, and when it may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The first instant (from the same epoch as `now`) at which the same send would be
    /// allowed if nothing else is sent meanwhile; `None` when it never will be (the frequency
    /// is outside the plan, or the single transmission exceeds a budget on its own).
    pub earliest: Option<Duration>,
    /// Which limit refused it.
    pub reason: RefusalReason,
}

/// The limit that refused a send; the binding one when several apply.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RefusalReason {
    /// The channel lies in no sub-band of the plan.
    #[error("frequency_hz {frequency_hz} with bandwidth_hz {bandwidth_hz} is in no sub-band")]
    NotInPlan {
        /// The channel's centre.
        frequency_hz: u32,
        /// The channel's width.
        bandwidth_hz: u32,
    },
    /// The transmission alone is longer than the sub-band's hourly duty-cycle budget or its
    /// dwell limit, so no amount of waiting helps: shorten the frame or change modulation.
    #[error("airtime {airtime:?} exceeds the limit {limit:?} of sub-band {sub_band:?}")]
    TooLong {
        /// The sub-band's name.
        sub_band: String,
        /// The requested airtime.
        airtime: Duration,
        /// The duty-cycle budget or dwell limit it exceeds.
        limit: Duration,
    },
    /// The previous transmission is still on air.
    #[error("the previous transmission is still on air")]
    OnAir,
    /// The sub-band's duty-cycle budget for the last hour is used up.
    #[error("duty cycle of sub-band {sub_band:?} is used up")]
    DutyCycle {
        /// The sub-band's name.
        sub_band: String,
    },
    /// The channel's dwell-time budget for the dwell window is used up.
    #[error("dwell time on frequency_hz {frequency_hz} in sub-band {sub_band:?} is used up")]
    Dwell {
        /// The sub-band's name.
        sub_band: String,
        /// The channel.
        frequency_hz: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.earliest {
            Some(at) => write!(f, "{}; may send at {at:?}", self.reason),
            None => write!(f, "{}; can never be sent", self.reason),
        }
    }
}

impl std::error::Error for Refusal {}

/// Airtime use of one sub-band, for status pages and the simulator's reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubBandUsage {
    /// The sub-band's name.
    pub sub_band: String,
    /// Airtime in the last hour.
    pub duty_cycle_used: Duration,
    /// Airtime allowed per hour, `None` without a duty cycle.
    pub duty_cycle_budget: Option<Duration>,
    /// Airtime in the last dwell window on the busiest channel.
    pub dwell_used: Duration,
    /// Dwell limit per window, `None` without one.
    pub dwell_limit: Option<Duration>,
}

impl AirtimeLedger {
    /// An empty ledger for the plan's sub-bands: nothing sent yet.
    pub fn new(plan: &RegionPlan) -> Self {
        let bands = plan
            .sub_bands
            .iter()
            .map(|band| BandLedger {
                duty_budget: band.duty_budget(),
                band: band.clone(),
                sends: VecDeque::new(),
            })
            .collect();
        AirtimeLedger {
            bands,
            on_air_until: Duration::ZERO,
        }
    }

    /// Whether a send of `airtime` on this channel may start at `now`, and if not, the exact
    /// earliest instant it may. Changes nothing: use [`AirtimeLedger::record`] to send.
    pub fn check(
        &self,
        now: Duration,
        frequency_hz: u32,
        bandwidth_hz: u32,
        airtime: Duration,
    ) -> Result<(), Refusal> {
        let band = self.band(frequency_hz, bandwidth_hz).ok_or(Refusal {
            earliest: None,
            reason: RefusalReason::NotInPlan {
                frequency_hz,
                bandwidth_hz,
            },
        })?;
        band.refuse_too_long(airtime)?;

        let mut earliest = now;
        let mut reason = RefusalReason::OnAir;
        let mut consider = |at: Duration, why: RefusalReason| {
            if at > earliest {
                earliest = at;
                reason = why;
            }
        };
        consider(self.on_air_until, RefusalReason::OnAir);
        if let Some(budget) = band.duty_budget {
            let at = earliest_fit(band.sends.iter(), DUTY_CYCLE_WINDOW, budget, now, airtime);
            consider(
                at,
                RefusalReason::DutyCycle {
                    sub_band: band.band.name.clone(),
                },
            );
        }
        if let Some(dwell) = band.band.dwell {
            let channel = band.sends.iter().filter(|s| s.frequency_hz == frequency_hz);
            let at = earliest_fit(channel, dwell.window, dwell.max, now, airtime);
            consider(
                at,
                RefusalReason::Dwell {
                    sub_band: band.band.name.clone(),
                    frequency_hz,
                },
            );
        }
        if earliest == now {
            Ok(())
        } else {
            Err(Refusal {
                earliest: Some(earliest),
                reason,
            })
        }
    }

    /// Checks like [`AirtimeLedger::check`] and, if allowed, charges the send starting at
    /// `now`. Call it just before keying the radio, so the ledger never lags behind the air.
    pub fn record(
        &mut self,
        now: Duration,
        frequency_hz: u32,
        bandwidth_hz: u32,
        airtime: Duration,
    ) -> Result<(), Refusal> {
        self.check(now, frequency_hz, bandwidth_hz, airtime)?;
        let end = now.saturating_add(airtime);
        self.on_air_until = end;
        if let Some(band) = self
            .bands
            .iter_mut()
            .find(|b| b.band.contains_channel(frequency_hz, bandwidth_hz))
        {
            band.charge(now, end, frequency_hz);
        }
        Ok(())
    }

    /// Charges a send that already happened, unchecked: what the ledger held before a restart,
    /// restored from disk so that a restarted bridge does not start with a fresh budget.
    /// Sends must come oldest first and not overlap.
    pub fn restore(
        &mut self,
        start: Duration,
        frequency_hz: u32,
        bandwidth_hz: u32,
        airtime: Duration,
    ) {
        let end = start.saturating_add(airtime);
        self.on_air_until = self.on_air_until.max(end);
        if let Some(band) = self
            .bands
            .iter_mut()
            .find(|b| b.band.contains_channel(frequency_hz, bandwidth_hz))
        {
            band.charge(start, end, frequency_hz);
        }
    }

    /// Airtime charged in the sub-band holding this channel over the last hour where it has a
    /// duty cycle, else on this channel over the last dwell window; zero outside the plan or
    /// in a sub-band without limits. Includes a send still on air.
    pub fn used(&self, now: Duration, frequency_hz: u32, bandwidth_hz: u32) -> Duration {
        self.band(frequency_hz, bandwidth_hz)
            .map_or(Duration::ZERO, |band| band.used(now, frequency_hz).0)
    }

    /// Airtime that may still be sent at `now` under the limit [`AirtimeLedger::used`]
    /// reports (budget minus used): a send this long or shorter passes that limit now. Zero
    /// outside the plan, [`Duration::MAX`] in a sub-band without limits.
    pub fn remaining(&self, now: Duration, frequency_hz: u32, bandwidth_hz: u32) -> Duration {
        self.band(frequency_hz, bandwidth_hz)
            .map_or(Duration::ZERO, |band| {
                let (used, limit) = band.used(now, frequency_hz);
                limit.map_or(Duration::MAX, |limit| limit.saturating_sub(used))
            })
    }

    /// Usage of every sub-band at `now`, in plan order, for status APIs.
    pub fn summary(&self, now: Duration) -> Vec<SubBandUsage> {
        self.bands
            .iter()
            .map(|band| {
                let dwell_used = band.band.dwell.map_or(Duration::ZERO, |dwell| {
                    band.busiest_channel(now, dwell.window)
                });
                SubBandUsage {
                    sub_band: band.band.name.clone(),
                    duty_cycle_used: window_sum(
                        band.sends.iter(),
                        now.saturating_sub(DUTY_CYCLE_WINDOW),
                    ),
                    duty_cycle_budget: band.duty_budget,
                    dwell_used,
                    dwell_limit: band.band.dwell.map(|dwell| dwell.max),
                }
            })
            .collect()
    }

    fn band(&self, frequency_hz: u32, bandwidth_hz: u32) -> Option<&BandLedger> {
        self.bands
            .iter()
            .find(|b| b.band.contains_channel(frequency_hz, bandwidth_hz))
    }
}

impl BandLedger {
    /// Remembers the send `[start, end)`, forgetting sends no window can reach any more.
    fn charge(&mut self, start: Duration, end: Duration, frequency_hz: u32) {
        let Some(keep) = self.window() else {
            return; // no limits: nothing to remember
        };
        let horizon = start.saturating_sub(keep);
        while self.sends.front().is_some_and(|s| s.end <= horizon) {
            self.sends.pop_front();
        }
        if end == start {
            return;
        }
        match self.sends.back_mut() {
            // Back to back on one channel: one entry covers both, sums are unchanged.
            Some(last) if last.end == start && last.frequency_hz == frequency_hz => last.end = end,
            _ => self.sends.push_back(Send {
                start,
                end,
                frequency_hz,
            }),
        }
    }

    /// Airtime in the last dwell window on the busiest channel.
    fn busiest_channel(&self, now: Duration, window: Duration) -> Duration {
        let since = now.saturating_sub(window);
        let mut channels: Vec<u32> = self.sends.iter().map(|s| s.frequency_hz).collect();
        channels.sort_unstable();
        channels.dedup();
        channels
            .into_iter()
            .map(|channel| {
                let sends = self.sends.iter().filter(|s| s.frequency_hz == channel);
                window_sum(sends, since)
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Refuses, for ever, a send that exceeds a budget on its own.
    fn refuse_too_long(&self, airtime: Duration) -> Result<(), Refusal> {
        let limits = self
            .duty_budget
            .into_iter()
            .chain(self.band.dwell.map(|dwell| dwell.max));
        for limit in limits {
            if airtime > limit {
                return Err(Refusal {
                    earliest: None,
                    reason: RefusalReason::TooLong {
                        sub_band: self.band.name.clone(),
                        airtime,
                        limit,
                    },
                });
            }
        }
        Ok(())
    }

    /// The longest window any limit of this band looks back over, `None` without limits.
    fn window(&self) -> Option<Duration> {
        let duty = self.duty_budget.map(|_| DUTY_CYCLE_WINDOW);
        let dwell = self.band.dwell.map(|dwell| dwell.window);
        duty.max(dwell)
    }

    /// (used, limit) of the limit `used`/`remaining` report: duty cycle first, else dwell.
    fn used(&self, now: Duration, frequency_hz: u32) -> (Duration, Option<Duration>) {
        if let Some(budget) = self.duty_budget {
            let since = now.saturating_sub(DUTY_CYCLE_WINDOW);
            (window_sum(self.sends.iter(), since), Some(budget))
        } else if let Some(dwell) = self.band.dwell {
            let channel = self.sends.iter().filter(|s| s.frequency_hz == frequency_hz);
            let since = now.saturating_sub(dwell.window);
            (window_sum(channel, since), Some(dwell.max))
        } else {
            (Duration::ZERO, None)
        }
    }
}

/// Airtime of `sends` at or after `since`.
fn window_sum<'a>(sends: impl Iterator<Item = &'a Send>, since: Duration) -> Duration {
    sends
        .map(|s| s.end.saturating_sub(s.start.max(since)))
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// The first instant `t ≥ now` at which a send of `airtime` keeps every window of length
/// `window` within `budget`, given earlier `sends` (sorted, not overlapping, all ended by
/// `t`; the caller ensures `airtime ≤ budget ≤ window`).
///
/// Why this is exact: with all earlier sends ended by `t`, the fullest window touching the
/// new send is the one ending where it ends, `[t + airtime − window, t + airtime)`. So the
/// condition is `f(L) + airtime ≤ budget` for `L = t + airtime − window`, where `f(L)` is the
/// airtime of earlier sends at or after `L`. `f` falls by exactly one second per second while
/// `L` crosses a send and stays flat between sends, so walking the sends from the oldest and
/// spending the excess finds the smallest such `L`.
fn earliest_fit<'a>(
    sends: impl Iterator<Item = &'a Send> + Clone,
    window: Duration,
    budget: Duration,
    now: Duration,
    airtime: Duration,
) -> Duration {
    let allowance = budget.saturating_sub(airtime);
    let first_left = now.saturating_add(airtime).saturating_sub(window);
    let used = window_sum(sends.clone(), first_left);
    if used <= allowance {
        return now;
    }
    let lead = window.saturating_sub(airtime);
    let mut excess = used.saturating_sub(allowance);
    let mut left = first_left;
    for send in sends {
        let from = send.start.max(first_left);
        let part = send.end.saturating_sub(from);
        if part >= excess {
            left = from.saturating_add(excess);
            break;
        }
        excess = excess.saturating_sub(part);
        left = left.max(send.end);
    }
    left.saturating_add(lead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modulation::Modulation;
    use proptest::prelude::*;

    const ONE_PERCENT_HZ: u32 = 868_100_000;
    const TEN_PERCENT_HZ: u32 = 869_525_000;
    const TENTH_PERCENT_HZ: u32 = 864_000_000;
    const BW: u32 = 125_000;

    fn eu868() -> AirtimeLedger {
        AirtimeLedger::new(&RegionPlan::builtin("EU868").expect("EU868"))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn one_percent_band_allows_36_seconds_per_hour_and_says_when() {
        let mut ledger = eu868();
        // 36 one-second sends, one per minute from t = 0.
        for i in 0..36 {
            ledger
                .record(secs(60 * i), ONE_PERCENT_HZ, BW, secs(1))
                .expect("within budget");
        }
        assert_eq!(ledger.used(secs(2_200), ONE_PERCENT_HZ, BW), secs(36));
        assert_eq!(
            ledger.remaining(secs(2_200), ONE_PERCENT_HZ, BW),
            Duration::ZERO
        );
        let refusal = ledger
            .check(secs(2_200), ONE_PERCENT_HZ, BW, secs(1))
            .expect_err("budget used up");
        assert_eq!(
            refusal.reason,
            RefusalReason::DutyCycle {
                sub_band: "868.0-868.6".into()
            }
        );
        // The window [t + 1 s − 1 h, t + 1 s) must lose the first send: t = 3600 s.
        assert_eq!(refusal.earliest, Some(secs(3_600)));
        let just_before = secs(3_600) - Duration::from_nanos(1);
        assert!(
            ledger
                .check(just_before, ONE_PERCENT_HZ, BW, secs(1))
                .is_err()
        );
        ledger
            .record(secs(3_600), ONE_PERCENT_HZ, BW, secs(1))
            .expect("allowed exactly at earliest");
        // Another band is independent.
        assert_eq!(
            ledger.check(secs(3_600) + secs(1), TEN_PERCENT_HZ, BW, secs(1)),
            Ok(())
        );
    }

    #[test]
    fn earliest_can_fall_inside_an_old_send() {
        let mut ledger = eu868();
        ledger
            .record(secs(0), ONE_PERCENT_HZ, BW, secs(30))
            .expect("30 s");
        // 6 s left; a 10 s send needs 4 s of the old send to have left the window:
        // the window ending at t + 10 s must start at 4 s, so t = 4 + 3600 − 10 = 3594 s.
        let refusal = ledger
            .check(secs(100), ONE_PERCENT_HZ, BW, secs(10))
            .expect_err("over budget");
        assert_eq!(refusal.earliest, Some(secs(3_594)));
        assert_eq!(ledger.check(secs(100), ONE_PERCENT_HZ, BW, secs(6)), Ok(()));
        assert_eq!(ledger.remaining(secs(100), ONE_PERCENT_HZ, BW), secs(6));
    }

    #[test]
    fn ten_percent_band_allows_360_seconds_per_hour() {
        let mut ledger = eu868();
        let frame = Modulation::eu868_default().time_on_air(255); // 1.250304 s
        let mut now = Duration::ZERO;
        let mut sent = Duration::ZERO;
        while ledger.record(now, TEN_PERCENT_HZ, BW, frame).is_ok() {
            sent += frame;
            now += frame;
        }
        // 287 whole frames fit in 360 s (fact sheet), all back to back.
        assert_eq!(sent, frame * 287);
        assert!(sent <= secs(360) && sent + frame > secs(360));
        let refusal = ledger
            .check(now, TEN_PERCENT_HZ, BW, frame)
            .expect_err("full");
        assert!(matches!(refusal.reason, RefusalReason::DutyCycle { .. }));
        // Back-to-back sends were merged into one entry.
        assert_eq!(ledger.bands[4].sends.len(), 1);
    }

    #[test]
    fn single_send_longer_than_the_budget_is_never_allowed() {
        let ledger = eu868();
        let frame = Modulation {
            frequency_hz: TENTH_PERCENT_HZ,
            spreading_factor: 12,
            ..Modulation::eu868_default()
        }
        .time_on_air(255);
        let refusal = ledger
            .check(secs(0), TENTH_PERCENT_HZ, BW, frame)
            .expect_err("9 s > 3.6 s");
        assert_eq!(refusal.earliest, None);
        assert_eq!(
            refusal.reason,
            RefusalReason::TooLong {
                sub_band: "863-865".into(),
                airtime: frame,
                limit: Duration::from_millis(3_600),
            }
        );
        assert!(
            refusal.to_string().ends_with("can never be sent"),
            "{refusal}"
        );
    }

    #[test]
    fn frequency_outside_the_plan_is_never_allowed() {
        let mut ledger = eu868();
        let refusal = ledger
            .record(secs(0), 915_000_000, BW, secs(1))
            .expect_err("not EU868");
        assert_eq!(refusal.earliest, None);
        assert_eq!(
            refusal.reason,
            RefusalReason::NotInPlan {
                frequency_hz: 915_000_000,
                bandwidth_hz: BW
            }
        );
        assert_eq!(ledger.used(secs(0), 915_000_000, BW), Duration::ZERO);
        assert_eq!(ledger.remaining(secs(0), 915_000_000, BW), Duration::ZERO);
    }

    #[test]
    fn a_send_cannot_start_while_the_previous_is_on_air() {
        let mut ledger = eu868();
        ledger
            .record(secs(10), TEN_PERCENT_HZ, BW, secs(2))
            .expect("first");
        let refusal = ledger
            .check(secs(11), ONE_PERCENT_HZ, BW, secs(1))
            .expect_err("on air");
        assert_eq!(refusal.reason, RefusalReason::OnAir);
        assert_eq!(refusal.earliest, Some(secs(12)));
        ledger
            .record(secs(12), ONE_PERCENT_HZ, BW, secs(1))
            .expect("after");
    }

    #[test]
    fn us915_dwell_refuses_a_401_ms_frame_and_limits_each_channel() {
        let plan = RegionPlan::builtin("US915").expect("US915");
        let mut ledger = AirtimeLedger::new(&plan);
        let ms = Duration::from_millis;
        let refusal = ledger
            .check(secs(0), 915_000_000, BW, ms(401))
            .expect_err("401 ms");
        assert_eq!(refusal.earliest, None);
        assert!(matches!(refusal.reason, RefusalReason::TooLong { limit, .. } if limit == ms(400)));

        ledger
            .record(secs(0), 915_000_000, BW, ms(300))
            .expect("300 ms");
        let refusal = ledger
            .check(secs(1), 915_000_000, BW, ms(200))
            .expect_err("dwell");
        assert_eq!(
            refusal.reason,
            RefusalReason::Dwell {
                sub_band: "902-928".into(),
                frequency_hz: 915_000_000
            }
        );
        // Window [t + 0.2 − 20, t + 0.2) must drop 100 ms of the first frame: t = 19.9 s.
        assert_eq!(refusal.earliest, Some(ms(19_900)));
        assert!(ledger.check(ms(19_899), 915_000_000, BW, ms(200)).is_err());
        assert_eq!(ledger.check(ms(19_900), 915_000_000, BW, ms(200)), Ok(()));
        // Another channel has its own dwell budget.
        assert_eq!(ledger.check(secs(1), 915_200_000, BW, ms(400)), Ok(()));
        assert_eq!(ledger.used(secs(1), 915_000_000, BW), ms(300));
        assert_eq!(ledger.remaining(secs(1), 915_000_000, BW), ms(100));
        assert_eq!(ledger.remaining(secs(1), 915_200_000, BW), ms(400));
    }

    #[test]
    fn bands_without_limits_allow_everything() {
        let plan = RegionPlan::builtin("AU915").expect("AU915");
        let mut ledger = AirtimeLedger::new(&plan);
        for i in 0..100 {
            ledger
                .record(secs(10 * i), 916_000_000, BW, secs(10))
                .expect("no limits");
        }
        assert_eq!(
            ledger.remaining(secs(1_000), 916_000_000, BW),
            Duration::MAX
        );
        assert!(ledger.bands[0].sends.is_empty());
    }

    #[test]
    fn entries_are_as_small_as_documented() {
        assert_eq!(std::mem::size_of::<Send>(), 40);
    }

    #[test]
    fn old_sends_are_dropped() {
        let mut ledger = eu868();
        for i in 0..10 {
            ledger
                .record(secs(600 * i), ONE_PERCENT_HZ, BW, secs(1))
                .expect("send");
        }
        // At t = 5400 s only sends ending after 1800 s are kept, from [1800 s, 1801 s) on.
        assert_eq!(ledger.bands[2].sends.len(), 7);
        assert_eq!(ledger.used(secs(5_401), ONE_PERCENT_HZ, BW), secs(6));
    }

    #[test]
    fn summary_reports_every_sub_band() {
        let mut ledger = eu868();
        ledger
            .record(secs(0), TEN_PERCENT_HZ, BW, secs(5))
            .expect("send");
        let summary = ledger.summary(secs(10));
        assert_eq!(summary.len(), 6);
        let busy = &summary[4];
        assert_eq!(busy.sub_band, "869.4-869.65");
        assert_eq!(busy.duty_cycle_used, secs(5));
        assert_eq!(busy.duty_cycle_budget, Some(secs(360)));
        assert_eq!(busy.dwell_limit, None);
        assert_eq!(summary[0].duty_cycle_used, Duration::ZERO);

        let us = AirtimeLedger::new(&RegionPlan::builtin("US915").expect("US915"));
        let mut us = us;
        let ms = Duration::from_millis;
        us.record(secs(0), 915_000_000, BW, ms(100)).expect("a");
        us.record(secs(1), 915_200_000, BW, ms(300)).expect("b");
        let summary = us.summary(secs(2));
        assert_eq!(summary[0].dwell_used, ms(300));
        assert_eq!(summary[0].dwell_limit, Some(ms(400)));
    }

    /// Most airtime in any window `[a, a + window)`: the sum is piecewise linear in `a`, so
    /// its maximum is where a window edge meets a send edge.
    fn brute_force_max(sends: &[(Duration, Duration)], window: Duration) -> Duration {
        let candidates = sends
            .iter()
            .flat_map(|&(start, end)| [start, end.saturating_sub(window)]);
        candidates
            .map(|a| {
                let b = a + window;
                sends
                    .iter()
                    .map(|&(s, e)| e.min(b).saturating_sub(s.max(a)))
                    .sum::<Duration>()
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn accepted_sends_never_break_the_duty_cycle(
            steps in prop::collection::vec(
                (0u64..900_000, 1u64..12_000, 0usize..3, any::<bool>()),
                1..120,
            ),
        ) {
            let channels = [ONE_PERCENT_HZ, TEN_PERCENT_HZ, TENTH_PERCENT_HZ];
            let budgets = [secs(36), secs(360), Duration::from_millis(3_600)];
            let mut ledger = eu868();
            let mut accepted: [Vec<(Duration, Duration)>; 3] = Default::default();
            let mut now = Duration::ZERO;
            for (gap_ms, airtime_ms, channel, retry) in steps {
                now += Duration::from_millis(gap_ms);
                let airtime = Duration::from_millis(airtime_ms);
                let frequency = channels[channel];
                let mut at = now;
                let mut outcome = ledger.record(at, frequency, BW, airtime);
                if let Err(Refusal { earliest: Some(earliest), .. }) = outcome {
                    prop_assert!(earliest > now);
                    // Exact: refused a nanosecond before, allowed at the instant.
                    let before = earliest - Duration::from_nanos(1);
                    prop_assert!(ledger.check(before, frequency, BW, airtime).is_err());
                    if retry {
                        at = earliest;
                        outcome = ledger.record(at, frequency, BW, airtime);
                        prop_assert_eq!(&outcome, &Ok(()));
                        now = earliest;
                    }
                }
                if outcome.is_ok() {
                    accepted[channel].push((at, at + airtime));
                    now = at + airtime;
                }
            }
            for (sends, budget) in accepted.iter().zip(budgets) {
                prop_assert!(brute_force_max(sends, DUTY_CYCLE_WINDOW) <= budget);
            }
        }

        #[test]
        fn accepted_sends_never_break_dwell(
            steps in prop::collection::vec((0u64..30_000, 1u64..400, 0u32..2, any::<bool>()), 1..150),
        ) {
            let plan = RegionPlan::builtin("US915").expect("US915");
            let mut ledger = AirtimeLedger::new(&plan);
            let mut accepted: [Vec<(Duration, Duration)>; 2] = Default::default();
            let mut now = Duration::ZERO;
            for (gap_ms, airtime_ms, channel, retry) in steps {
                now += Duration::from_millis(gap_ms);
                let airtime = Duration::from_millis(airtime_ms);
                let frequency = 915_000_000 + channel * 200_000;
                let mut at = now;
                let mut outcome = ledger.record(at, frequency, BW, airtime);
                if let (Err(Refusal { earliest: Some(earliest), .. }), true) = (&outcome, retry) {
                    at = *earliest;
                    outcome = ledger.record(at, frequency, BW, airtime);
                    prop_assert_eq!(&outcome, &Ok(()));
                }
                if outcome.is_ok() {
                    accepted[channel as usize].push((at, at + airtime));
                    now = at + airtime;
                }
            }
            for sends in &accepted {
                prop_assert!(brute_force_max(sends, secs(20)) <= Duration::from_millis(400));
            }
        }
    }
}
