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
