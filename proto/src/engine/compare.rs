//! Comparing a neighbour's summary with our state through the logs that grew lately.
//!
//! A digest says only *that* two states differ. Most differences are an operation or two
//! that a relay wave missed, in a log that grew lately on one side: the sender names its
//! recently grown logs with its heights, and we know which logs grew lately here. Putting
//! those heights into ours and comparing digests tells whether they are the whole difference;
//! if so we know exactly what each side lacks, and repair costs one Want (or one push) per
//! missing range instead of a Vector round answered by every neighbour.

use heapless::Vec as BoundedVec;

use super::{Engine, OpStore};
use crate::message::{
    MAX_SUMMARY_RECENT, MAX_WANT_RANGES, RecentHeight, TopicSummary, WantRange, state_digest,
};
use crate::tags::AuthorTag;

/// What a summary that disagrees with ours shows, for one topic.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    /// Ranges of named logs the sender holds and we lack.
    pub wants: BoundedVec<WantRange, MAX_WANT_RANGES>,
    /// Logs the sender lacks the end of: (author, first seq it lacks).
    pub lacking: Vec<([u8; 32], u64)>,
    /// Whether `wants` and `lacking` are the whole difference. If not, a Vector round is
    /// needed to find the rest.
    pub explained: bool,
}

/// Which key a 2-byte author tag stands for, here.
enum Key {
    One([u8; 32]),
    /// We know no author with this tag: we hold nothing of the log.
    Unknown,
    /// Two authors share the tag: we cannot tell which log the sender means.
    Ambiguous,
}

impl<S: OpStore> Engine<S> {
    /// Compares our state of `topic` with the sender's `entry`, through the logs it named.
    pub(super) fn compare(
        &self,
        topic: &[u8; 32],
        entry: &TopicSummary,
        named: &[RecentHeight],
    ) -> Comparison {
        let mut comparison = Comparison::default();
        // Our heights, turned step by step into our best guess of the sender's.
        let mut theirs = self.store.heights(topic);
        // Ops of named logs whose keys we do not know: they count, but cannot be hashed.
        let mut unknown_ops: u64 = 0;
        let mut ambiguous = false;
        for log in named.iter().filter(|n| n.topic == entry.topic) {
            match self.key_for(&theirs, log.author) {
                Key::One(author) => {
                    let ours = set_height(&mut theirs, author, log.ops);
                    if log.ops > ours {
                        comparison.want(log.author, ours, log.ops);
                    } else if log.ops < ours {
                        comparison.lacking.push((author, log.ops));
                    }
                }
                Key::Unknown => {
                    comparison.want(log.author, 0, log.ops);
                    unknown_ops = unknown_ops.saturating_add(log.ops);
                }
                Key::Ambiguous => ambiguous = true,
            }
        }
        if ambiguous {
            return comparison;
        }
        let total = ops_in(&theirs).saturating_add(unknown_ops);
        if unknown_ops > 0 {
            // The digest cannot be checked without the keys; the counts must agree, and the
            // next summary, heard once those logs have arrived (with their keys), checks it.
            comparison.explained = total == u64::from(entry.ops);
            return comparison;
        }
        if total == u64::from(entry.ops) && state_digest(theirs.iter().copied()) == entry.digest {
            comparison.explained = true;
        } else if let Some(lacking) = self.lacking_own_log(topic, entry, named, &theirs) {
            comparison.lacking.push(lacking);
            comparison.explained = true;
        }
        comparison
    }

    /// One of the logs that grew lately here and the sender did not name, whose end the
    /// sender lacks, if that is the rest of the difference. The sender's ops count fixes the
    /// height it must hold of such a log, so each candidate costs one digest.
    fn lacking_own_log(
        &self,
        topic: &[u8; 32],
        entry: &TopicSummary,
        named: &[RecentHeight],
        theirs: &[([u8; 32], u64)],
    ) -> Option<([u8; 32], u64)> {
        let total = ops_in(theirs);
        let since = self.now.saturating_sub(self.recent_window());
        let named_by_sender = |author: &[u8; 32]| {
            named
                .iter()
                .any(|n| n.author == AuthorTag::from_key(author))
        };
        self.grown
            .since(since)
            .filter(|g| g.topic == *topic && !named_by_sender(&g.author))
            .map(|g| g.author)
            .take(MAX_SUMMARY_RECENT)
            .find_map(|author| {
                let ours = theirs.iter().find(|(a, _)| *a == author)?.1;
                let height = u64::from(entry.ops).checked_sub(total - ours)?;
                let mut guess = theirs.to_vec();
                set_height(&mut guess, author, height);
                (height < ours && state_digest(guess) == entry.digest).then_some((author, height))
            })
    }

    /// The key `tag` stands for: among the logs we hold, else among the keys we know.
    fn key_for(&self, heights: &[([u8; 32], u64)], tag: AuthorTag) -> Key {
        let held: Vec<[u8; 32]> = heights
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| AuthorTag::from_key(a) == tag)
            .collect();
        // Only keys that signed operations here: a key a Hello claims could make a tag
        // ambiguous and stop the comparison.
        let candidates = if held.is_empty() {
            self.keys.verified(tag)
        } else {
            held
        };
        match candidates[..] {
            [] => Key::Unknown,
            [key] => Key::One(key),
            _ => Key::Ambiguous,
        }
    }
}

impl Comparison {
    fn want(&mut self, author: AuthorTag, from_seq: u64, height: u64) {
        // A neighbour may name an empty log (nothing to want); never underflow on it.
        let Some(to_seq) = height.checked_sub(1) else {
            return;
        };
        let range = WantRange {
            author,
            from_seq,
            to_seq,
        };
        // Never full: a summary names fewer logs than a Want holds.
        let _ = self.wants.push(range);
    }
}

/// The ops in `heights`, saturating: a neighbour's summary may name absurd heights.
fn ops_in(heights: &[([u8; 32], u64)]) -> u64 {
    heights.iter().fold(0, |sum, (_, h)| sum.saturating_add(*h))
}

/// Sets `author`'s height in `heights` (adding the log if absent); returns the old height.
fn set_height(heights: &mut Vec<([u8; 32], u64)>, author: [u8; 32], height: u64) -> u64 {
    match heights.iter_mut().find(|(a, _)| *a == author) {
        Some((_, h)) => std::mem::replace(h, height),
        None => {
            heights.push((author, height));
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::{EngineConfig, Lookup};
    use crate::operation::RawOp;
    use crate::tags::TopicTag;

    const TOPIC: [u8; 32] = [5; 32];

    /// A store that only knows heights, of `TOPIC`: all `compare` reads.
    struct Heights(Vec<([u8; 32], u64)>);

    impl OpStore for Heights {
        fn heights(&self, topic: &[u8; 32]) -> Vec<([u8; 32], u64)> {
            if *topic == TOPIC {
                self.0.clone()
            } else {
                Vec::new()
            }
        }
        fn first(&self, _: &[u8; 32], _: &[u8; 32]) -> u64 {
            0
        }
        fn get(&mut self, _: &[u8; 32], _: &[u8; 32], _: u64) -> Lookup {
            Lookup::Absent
        }
        fn op_id(&self, _: &[u8; 32], _: &[u8; 32], _: u64) -> Option<[u8; 32]> {
            None
        }
        fn insert(&mut self, _: &[u8; 32], _: &[u8; 32], _: u64, _: RawOp) {
            unreachable!("comparing stores nothing")
        }
    }

    fn engine(ours: &[([u8; 32], u64)]) -> Engine<Heights> {
        let config = EngineConfig::new([1; 32], [2; 32], [3; 32]);
        Engine::new(config, Heights(ours.to_vec()))
    }

    /// An author key with tag `[tag, 0]`, told apart from others of that tag by `n`.
    fn key(tag: u8, n: u8) -> [u8; 32] {
        let mut key = [0; 32];
        key[0] = tag;
        key[2] = n;
        key
    }

    /// What a sender holding `heights` of `TOPIC` says in its summary.
    fn summary_of(heights: &[([u8; 32], u64)]) -> TopicSummary {
        TopicSummary {
            topic: TopicTag::from_topic(&TOPIC),
            ops: heights.iter().map(|(_, h)| *h as u32).sum(),
            digest: state_digest(heights.iter().copied()),
        }
    }

    fn named(author: &[u8; 32], ops: u64) -> RecentHeight {
        RecentHeight {
            topic: TopicTag::from_topic(&TOPIC),
            author: AuthorTag::from_key(author),
            ops,
        }
    }

    fn range(author: &[u8; 32], from_seq: u64, to_seq: u64) -> WantRange {
        WantRange {
            author: AuthorTag::from_key(author),
            from_seq,
            to_seq,
        }
    }

    #[test]
    fn a_named_log_the_sender_holds_more_of_is_wanted_and_explains_the_difference() {
        let (a, b) = (key(1, 0), key(2, 0));
        let engine = engine(&[(a, 3), (b, 2)]);
        let entry = summary_of(&[(a, 5), (b, 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a, 5)]);
        assert_eq!(c.wants.as_slice(), &[range(&a, 3, 4)]);
        assert!(c.lacking.is_empty());
        assert!(c.explained);
    }

    #[test]
    fn a_named_log_the_sender_holds_less_of_is_lacking_from_its_height() {
        let (a, b) = (key(1, 0), key(2, 0));
        let engine = engine(&[(a, 5), (b, 2)]);
        let entry = summary_of(&[(a, 3), (b, 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a, 3)]);
        assert!(c.wants.is_empty());
        assert_eq!(c.lacking, vec![(a, 3)]);
        assert!(c.explained);
    }

    #[test]
    fn a_named_log_at_our_height_is_neither_wanted_nor_lacking() {
        let (a, b) = (key(1, 0), key(2, 0));
        let engine = engine(&[(a, 3), (b, 2)]);
        // The difference lies in a log the sender did not name, and that did not grow here.
        let entry = summary_of(&[(a, 3), (b, 4)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a, 3)]);
        assert!(c.wants.is_empty());
        assert!(c.lacking.is_empty());
        assert!(!c.explained, "a Vector round must find the rest");
    }

    #[test]
    fn a_difference_the_named_logs_do_not_cover_is_not_explained() {
        let (a, b) = (key(1, 0), key(2, 0));
        let engine = engine(&[(a, 3), (b, 2)]);
        let entry = summary_of(&[(a, 5), (b, 3)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a, 5)]);
        assert_eq!(c.wants.as_slice(), &[range(&a, 3, 4)], "still wanted");
        assert!(!c.explained);
    }

    #[test]
    fn logs_named_for_another_topic_are_ignored() {
        let a = key(1, 0);
        let engine = engine(&[(a, 3)]);
        let entry = summary_of(&[(a, 5)]);
        let mut other = named(&a, 5);
        other.topic = TopicTag([!entry.topic.0[0], entry.topic.0[1]]);
        let c = engine.compare(&TOPIC, &entry, &[other]);
        assert!(c.wants.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_log_of_an_unknown_author_is_wanted_whole_and_explained_by_the_counts() {
        let a = key(1, 0);
        let stranger = key(9, 0);
        let engine = engine(&[(a, 3)]);
        let entry = summary_of(&[(a, 3), (stranger, 4)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&stranger, 4)]);
        assert_eq!(c.wants.as_slice(), &[range(&stranger, 0, 3)]);
        assert!(c.explained);
    }

    #[test]
    fn a_log_of_an_unknown_author_does_not_explain_counts_that_disagree() {
        let a = key(1, 0);
        let stranger = key(9, 0);
        let engine = engine(&[(a, 3)]);
        let entry = summary_of(&[(a, 4), (stranger, 4)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&stranger, 4)]);
        assert_eq!(c.wants.as_slice(), &[range(&stranger, 0, 3)]);
        assert!(!c.explained);
    }

    #[test]
    fn an_empty_named_log_of_an_unknown_author_is_not_wanted() {
        let a = key(1, 0);
        let engine = engine(&[(a, 3)]);
        let entry = summary_of(&[(a, 3)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&key(9, 0), 0)]);
        assert!(c.wants.is_empty());
    }

    #[test]
    fn a_verified_key_of_a_log_we_do_not_hold_is_checked_by_the_digest() {
        let (a, known) = (key(1, 0), key(9, 0));
        let mut engine = engine(&[(a, 3)]);
        engine.keys.add(known);
        let c = engine.compare(
            &TOPIC,
            &summary_of(&[(a, 3), (known, 2)]),
            &[named(&known, 2)],
        );
        assert_eq!(c.wants.as_slice(), &[range(&known, 0, 1)]);
        assert!(c.explained);
        // The same counts with another key of that tag: the digest tells them apart.
        let c = engine.compare(
            &TOPIC,
            &summary_of(&[(a, 3), (key(9, 1), 2)]),
            &[named(&known, 2)],
        );
        assert!(!c.explained);
    }

    #[test]
    fn two_held_logs_sharing_the_named_tag_stop_the_comparison() {
        let (a1, a2, b) = (key(1, 0), key(1, 1), key(2, 0));
        let mut engine = engine(&[(a1, 2), (a2, 3), (b, 5)]);
        // Were the comparison to go on, `b` would be found lacking.
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        let entry = summary_of(&[(a1, 2), (a2, 3), (b, 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a2, 3)]);
        assert!(c.wants.is_empty());
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn two_verified_keys_sharing_the_named_tag_stop_the_comparison() {
        let a = key(1, 0);
        let mut engine = engine(&[(a, 3)]);
        engine.keys.add(key(9, 0));
        engine.keys.add(key(9, 1));
        let entry = summary_of(&[(a, 3), (key(9, 0), 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&key(9, 0), 2)]);
        assert!(c.wants.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_key_only_claimed_in_a_hello_does_not_make_a_tag_ambiguous() {
        let (a, known) = (key(1, 0), key(9, 0));
        let mut engine = engine(&[(a, 3)]);
        engine.keys.add(known);
        engine.keys.claim(key(9, 1));
        let entry = summary_of(&[(a, 3), (known, 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&known, 2)]);
        assert_eq!(c.wants.as_slice(), &[range(&known, 0, 1)]);
        assert!(c.explained);
    }

    #[test]
    fn a_held_log_is_preferred_to_other_known_keys_of_its_tag() {
        let (a, other) = (key(1, 0), key(1, 1));
        let mut engine = engine(&[(a, 3)]);
        engine.keys.add(other);
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 5)]), &[named(&a, 5)]);
        assert_eq!(c.wants.as_slice(), &[range(&a, 3, 4)]);
        assert!(c.explained);
    }

    #[test]
    fn absurd_named_heights_of_unknown_authors_neither_panic_nor_explain() {
        let a = key(1, 0);
        let engine = engine(&[(a, 3)]);
        let entry = summary_of(&[(a, 3)]);
        let c = engine.compare(
            &TOPIC,
            &entry,
            &[named(&a, u64::MAX), named(&key(9, 0), u64::MAX)],
        );
        assert_eq!(
            c.wants.as_slice(),
            &[
                range(&a, 3, u64::MAX - 1),
                range(&key(9, 0), 0, u64::MAX - 1)
            ]
        );
        assert!(!c.explained);
    }

    #[test]
    fn absurd_named_heights_of_held_logs_neither_panic_nor_blame_a_grown_log() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        let entry = summary_of(&[(a, 3), (b, 2)]);
        let c = engine.compare(&TOPIC, &entry, &[named(&a, u64::MAX)]);
        assert_eq!(c.wants.as_slice(), &[range(&a, 3, u64::MAX - 1)]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_log_grown_here_and_not_named_is_found_lacking_at_the_height_the_counts_imply() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 3), (b, 2)]), &[]);
        assert!(c.wants.is_empty());
        assert_eq!(c.lacking, vec![(b, 2)]);
        assert!(c.explained);
    }

    #[test]
    fn a_log_grown_here_is_not_blamed_when_its_guess_fails_the_digest() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        // Same count as "b at 2", but the sender's state is another.
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 1), (b, 4)]), &[]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_log_grown_here_is_not_blamed_when_the_sender_would_hold_more_of_it() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 3), (b, 7)]), &[]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_sender_holding_fewer_ops_than_our_other_logs_is_not_blamed_or_underflowed() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        // 1 op in all: fewer than our 3 of `a` alone, so no height of `b` explains it.
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 1)]), &[]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_log_that_grew_before_the_recent_window_is_not_blamed() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        engine.now = engine.recent_window() + Duration::from_secs(1);
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 3), (b, 2)]), &[]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn a_log_that_grew_in_another_topic_is_not_blamed() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew([6; 32], b, Duration::ZERO);
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 3), (b, 2)]), &[]);
        assert!(!c.explained);
    }

    #[test]
    fn a_grown_log_the_sender_named_is_not_blamed_again() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut engine = engine(&[(a, 3), (b, 5)]);
        engine.grown.grew(TOPIC, b, Duration::ZERO);
        // The sender says it holds all of `b`: then the counts cannot blame `b`.
        let c = engine.compare(&TOPIC, &summary_of(&[(a, 3), (b, 2)]), &[named(&b, 5)]);
        assert!(c.lacking.is_empty());
        assert!(!c.explained);
    }

    #[test]
    fn only_the_most_recently_grown_logs_a_summary_could_name_are_tried() {
        let authors: Vec<[u8; 32]> = (0..=MAX_SUMMARY_RECENT as u8)
            .map(|n| key(n + 1, 0))
            .collect();
        let ours: Vec<([u8; 32], u64)> = authors.iter().map(|a| (*a, 2)).collect();
        let mut engine = engine(&ours);
        for (n, author) in authors.iter().enumerate() {
            engine
                .grown
                .grew(TOPIC, *author, Duration::from_secs(n as u64));
        }
        engine.now = Duration::from_secs(authors.len() as u64);
        let lacks = |author: &[u8; 32]| -> Vec<([u8; 32], u64)> {
            ours.iter()
                .map(|(a, h)| (*a, if a == author { 1 } else { *h }))
                .collect()
        };
        // The oldest of MAX_SUMMARY_RECENT + 1 grown logs is not tried...
        let c = engine.compare(&TOPIC, &summary_of(&lacks(&authors[0])), &[]);
        assert!(!c.explained);
        // ...the next oldest is.
        let c = engine.compare(&TOPIC, &summary_of(&lacks(&authors[1])), &[]);
        assert_eq!(c.lacking, vec![(authors[1], 1)]);
        assert!(c.explained);
    }

    #[test]
    fn set_height_returns_the_old_height_and_adds_a_missing_log_from_zero() {
        let (a, b) = (key(1, 0), key(2, 0));
        let mut heights = vec![(a, 3)];
        assert_eq!(set_height(&mut heights, a, 7), 3);
        assert_eq!(set_height(&mut heights, b, 2), 0);
        assert_eq!(heights, vec![(a, 7), (b, 2)]);
    }

    #[test]
    fn ops_in_saturates_on_absurd_heights() {
        assert_eq!(ops_in(&[]), 0);
        assert_eq!(ops_in(&[(key(1, 0), 2), (key(2, 0), 3)]), 5);
        assert_eq!(ops_in(&[(key(1, 0), u64::MAX), (key(2, 0), 3)]), u64::MAX);
    }
}
