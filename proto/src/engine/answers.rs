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
//! - each requester gets an allowance of answer operations an hour, by what the link knows of
//!   it ([`Requester`]): strangers share `STRANGER_ANSWERS_PER_HOUR` between them, since
//!   anyone can invent a sender tag for each forged request and a bound per tag would bind no
//!   attacker; a tag heard for ten minutes whose own operations have not checked out yet gets
//!   `ACQUAINTED_ANSWERS_PER_HOUR` of its own; a proven neighbour has no allowance beyond the
//!   back-off and the share. Without the strangers' pool, forged empty Vectors drew about 17
//!   times their own airtime from the bridges around the attacker (grid-25-attacked). A new
//!   bridge that holds nothing is a stranger at first, and is answered at those paces until
//!   an operation it sends checks out here.
//!
//! Bounds: `MAX_REMEMBERED` operations per link (the oldest forgotten first), one entry per
//! answer frame of the last hour, and the instants of the last hour's allowances: at most
//! `MAX_ALLOWANCES` requesters, each holding at most its hourly number.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::tags::NodeTag;

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
/// Answer operations queued for one acquainted tag in any hour: four full answers. In EU868's
/// 1 % band at SF7 the answers' half of the budget holds about 130 operation frames, so there
/// this costs an honest listener nothing; on a 10 % band it keeps a tag that an attacker held
/// for ten minutes to a tenth of the answers' share.
const ACQUAINTED_ANSWERS_PER_HOUR: usize = 128;
/// Requesters whose allowance is tracked: the strangers' pool and one per neighbour the link
/// remembers (`MAX_NEIGHBOURS`).
const MAX_ALLOWANCES: usize = 65;
const HOUR: Duration = Duration::from_secs(3600);

/// Who asked for an answer, as far as the link can tell (see `Neighbour::known`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Requester {
    /// An operation it sent checked out here: a real node.
    Proven,
    /// Its tag has been heard for `ACQUAINTANCE`, but none of its operations yet.
    Acquainted(NodeTag),
    /// Anyone else, all together.
    Stranger,
}

impl Requester {
    fn allowance(self) -> Option<usize> {
        match self {
            Requester::Proven => None,
            Requester::Acquainted(_) => Some(ACQUAINTED_ANSWERS_PER_HOUR),
            Requester::Stranger => Some(STRANGER_ANSWERS_PER_HOUR),
        }
    }
}

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
    /// When the answer operations of the last hour were queued, per requester with an
    /// allowance, oldest first.
    allowances: HashMap<Requester, VecDeque<Duration>>,
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

    /// Whether `who`'s allowance has room for one more answer operation now.
    pub(crate) fn has_room(&mut self, now: Duration, who: Requester) -> bool {
        let Some(allowance) = who.allowance() else {
            return true;
        };
        let Some(times) = self.allowances.get_mut(&who) else {
            return true;
        };
        while times.front().is_some_and(|at| now >= *at + HOUR) {
            times.pop_front();
        }
        times.len() < allowance
    }

    /// An answer operation for `who` was queued (after [`Self::has_room`]).
    pub(crate) fn spend(&mut self, now: Duration, who: Requester) {
        if who.allowance().is_none() {
            return;
        }
        if !self.allowances.contains_key(&who) && self.allowances.len() >= MAX_ALLOWANCES {
            // Forget the acquaintance that asked least lately; never the strangers' pool,
            // or acquaintances could empty it.
            let stalest = self
                .allowances
                .iter()
                .filter(|(who, _)| **who != Requester::Stranger)
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(who, _)| *who);
            if let Some(stalest) = stalest {
                self.allowances.remove(&stalest);
            }
        }
        self.allowances.entry(who).or_default().push_back(now);
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
    fn each_requester_draws_on_its_own_allowance_an_hour() {
        let mut guard = AnswerGuard::default();
        let someone = Requester::Acquainted(NodeTag([1, 2]));
        for i in 0..STRANGER_ANSWERS_PER_HOUR as u32 {
            assert!(guard.has_room(S * i, Requester::Stranger));
            guard.spend(S * i, Requester::Stranger);
        }
        assert!(
            !guard.has_room(S * 100, Requester::Stranger),
            "the pool is used up"
        );
        assert!(
            !guard.has_room(HOUR - S, Requester::Stranger),
            "the first leaves at 1 h"
        );
        assert!(guard.has_room(HOUR, Requester::Stranger));
        // An acquaintance has its own, larger allowance; a proven neighbour none.
        for _ in 0..ACQUAINTED_ANSWERS_PER_HOUR {
            assert!(guard.has_room(S * 100, someone));
            guard.spend(S * 100, someone);
        }
        assert!(!guard.has_room(S * 100, someone));
        assert!(guard.has_room(S * 100, Requester::Proven));
    }

    #[test]
    fn allowances_are_kept_for_a_bounded_number_of_requesters() {
        let mut guard = AnswerGuard::default();
        guard.spend(Duration::ZERO, Requester::Stranger);
        for tag in 0..200u16 {
            guard.spend(
                S * u32::from(tag),
                Requester::Acquainted(NodeTag(tag.to_be_bytes())),
            );
        }
        assert_eq!(guard.allowances.len(), MAX_ALLOWANCES);
        assert!(
            guard
                .allowances
                .contains_key(&Requester::Acquainted(NodeTag(199u16.to_be_bytes()))),
            "the latest is kept"
        );
        assert!(
            guard.allowances.contains_key(&Requester::Stranger),
            "the strangers' pool is never forgotten"
        );
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
