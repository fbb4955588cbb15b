//! How much a radio link gives in answer to what it hears.
//!
//! Anyone with a radio can send a Vector saying "I hold nothing", or replay one: every
//! bridge in range would push what it holds, a few dozen frames for one short frame of the
//! attacker's, and about seventeen such frames an hour used up a bridge's whole duty cycle.
//! A new neighbour asking for everything looks just the same, so requests cannot be told
//! apart; what is bounded is the answer:
//!
//! - an operation we sent on the link in answer is not sent again in answer before a
//!   back-off that starts at `MIN_BACKOFF` and doubles while it keeps being asked for, up
//!   to `MAX_BACKOFF`: a replayed request finds nothing left to draw, and a neighbour that
//!   really lost a frame gets it again in the next round, or within a minute or two after
//!   several losses in a row;
//! - answers use at most `ANSWER_SHARE` of the link's duty-cycle budget in any hour, so fresh
//!   operations and anti-entropy always keep the rest;
//! - strangers, senders none of whose operations has checked out here, share
//!   `STRANGER_ANSWERS_PER_HOUR` answer operations an hour between them. Anyone can invent a
//!   sender tag for each forged request, so a bound per requester would bind no attacker;
//!   one pool for all strangers does. Without it, forged empty Vectors drew about 17 times
//!   their own airtime from the bridges around the attacker (grid-25-attacked). A new bridge
//!   that holds nothing is a stranger too, and catches up at that pace until an operation of
//!   its own or one it relays checks out here.
//!
//! Bounds: `MAX_REMEMBERED` operations per link (the oldest forgotten first), one entry per
//! answer frame of the last hour, and `STRANGER_ANSWERS_PER_HOUR` instants.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// An operation's place: (topic, author, seq).
pub(crate) type Place = ([u8; 32], [u8; 32], u64);

/// Long enough that a request repeated within an answer's own span (a Want for each gap,
/// a replay) draws nothing twice; short enough that a receiver that lost a frame of a long
/// catch-up, and asks once the answer has ended, gets it in the next round. At 30 s every
/// lost frame of a two-hop catch-up cost half a minute, and a few losses in a row minutes.
const MIN_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
const MAX_REMEMBERED: usize = 4096;
/// Share of the hour's duty-cycle budget that answers may use.
pub(crate) const ANSWER_SHARE: f64 = 0.5;
/// Answer operations queued for all strangers of a link together in any hour: one full
/// answer (`max_ops_per_answer`, 32), so a new neighbour's first request is met whole.
const STRANGER_ANSWERS_PER_HOUR: usize = 32;
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
struct Sent {
    at: Duration,
    backoff: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct AnswerGuard {
    sent: HashMap<Place, Sent>,
    order: VecDeque<Place>,
    /// (when, airtime) of the answers sent in the last hour, oldest first.
    spent: VecDeque<(Duration, Duration)>,
    /// When the answer operations for strangers of the last hour were queued, oldest first.
    for_strangers: VecDeque<Duration>,
}

impl AnswerGuard {
    /// Whether an answer with this operation may be queued now.
    pub(crate) fn may_answer(&self, now: Duration, place: &Place) -> bool {
        self.sent.get(place).is_none_or(|s| now >= s.at + s.backoff)
    }

    /// The operation went out on the link, or was heard there from a neighbour.
    pub(crate) fn sent(&mut self, now: Duration, place: Place) {
        let backoff = match self.sent.get(&place) {
            // Sent again within the longest back-off: it keeps being asked for, so the
            // back-off doubles.
            Some(s) if now < s.at + MAX_BACKOFF => (s.backoff * 2).min(MAX_BACKOFF),
            Some(_) => MIN_BACKOFF,
            None => {
                self.order.push_back(place);
                if self.order.len() > MAX_REMEMBERED
                    && let Some(old) = self.order.pop_front()
                {
                    self.sent.remove(&old);
                }
                MIN_BACKOFF
            }
        };
        self.sent.insert(place, Sent { at: now, backoff });
    }

    /// Whether the strangers' pool has room for one more answer operation now.
    pub(crate) fn stranger_room(&mut self, now: Duration) -> bool {
        while self
            .for_strangers
            .front()
            .is_some_and(|at| now >= *at + HOUR)
        {
            self.for_strangers.pop_front();
        }
        self.for_strangers.len() < STRANGER_ANSWERS_PER_HOUR
    }

    /// An answer operation for a stranger was queued (after [`Self::stranger_room`]).
    pub(crate) fn answered_stranger(&mut self, now: Duration) {
        self.for_strangers.push_back(now);
    }

    /// Charges an answer's airtime against `cap` (the answers' share of the hour's budget).
    /// `Err(at)`: it does not fit before `at`.
    pub(crate) fn charge(
        &mut self,
        now: Duration,
        airtime: Duration,
        cap: Duration,
    ) -> Result<(), Duration> {
        while self.spent.front().is_some_and(|(at, _)| now >= *at + HOUR) {
            self.spent.pop_front();
        }
        let mut used: Duration = self.spent.iter().map(|(_, a)| *a).sum();
        if used + airtime <= cap {
            self.spent.push_back((now, airtime));
            return Ok(());
        }
        // The earliest instant enough of the window has passed.
        for (at, a) in &self.spent {
            used = used.saturating_sub(*a);
            if used + airtime <= cap {
                return Err(*at + HOUR);
            }
        }
        Err(now + HOUR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: Place = ([1; 32], [2; 32], 7);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_answer_backs_off_while_it_keeps_being_asked_for() {
        let mut guard = AnswerGuard::default();
        let t0 = S;
        assert!(guard.may_answer(t0, &PLACE));
        guard.sent(t0, PLACE);
        assert!(!guard.may_answer(t0 + MIN_BACKOFF - S, &PLACE));
        let t1 = t0 + MIN_BACKOFF;
        assert!(guard.may_answer(t1, &PLACE));
        guard.sent(t1, PLACE);
        assert!(
            !guard.may_answer(t1 + MIN_BACKOFF * 2 - S, &PLACE),
            "doubled"
        );
        assert!(guard.may_answer(t1 + MIN_BACKOFF * 2, &PLACE));
        // Not sent for longer than the longest back-off: back to the first one.
        let t2 = t1 + MAX_BACKOFF + S;
        guard.sent(t2, PLACE);
        assert!(guard.may_answer(t2 + MIN_BACKOFF, &PLACE));
    }

    #[test]
    fn answers_stay_within_their_share_of_the_hour() {
        let mut guard = AnswerGuard::default();
        let cap = S * 10;
        for i in 0..10 {
            guard.charge(S * i, S, cap).expect("fits");
        }
        assert_eq!(
            guard.charge(S * 20, S, cap),
            Err(HOUR),
            "the first leaves at 1 h"
        );
        assert!(guard.charge(HOUR + S, S, cap).is_ok());
    }

    #[test]
    fn strangers_share_one_pool_an_hour() {
        let mut guard = AnswerGuard::default();
        for i in 0..STRANGER_ANSWERS_PER_HOUR as u32 {
            assert!(guard.stranger_room(S * i));
            guard.answered_stranger(S * i);
        }
        assert!(!guard.stranger_room(S * 100), "the hour's pool is used up");
        assert!(!guard.stranger_room(HOUR - S), "the first leaves at 1 h");
        assert!(guard.stranger_room(HOUR));
    }

    #[test]
    fn memory_is_bounded() {
        let mut guard = AnswerGuard::default();
        for seq in 0..(MAX_REMEMBERED as u64 + 10) {
            guard.sent(S, ([1; 32], [2; 32], seq));
        }
        assert_eq!(guard.sent.len(), MAX_REMEMBERED);
        assert!(
            guard.may_answer(S, &([1; 32], [2; 32], 0)),
            "the oldest forgotten"
        );
    }
}
