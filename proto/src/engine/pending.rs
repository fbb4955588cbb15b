//! Bounded memories of the engine: author keys, logs grown, operations waiting.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::LinkId;
use crate::tags::{AuthorTag, NodeTag};

/// Author keys known, by tag, in two tiers so that keys anyone can claim never displace
/// the keys of operations that checked out.
///
/// - Verified: authors of operations stored here (their signatures checked), at most
///   `MAX_KEYS`; the key learned first is forgotten first (authors with ops in the store are
///   re-added whenever their ops are used).
/// - Claimed: keys from Hello frames, which anyone can send, at most `MAX_CLAIMED`, the
///   oldest forgotten first. A claimed key becomes verified once an operation signed by it
///   is stored.
///
/// Candidates for a tag list the verified keys first, so a flood of Hellos naming a known
/// author's tag cannot push that author's key out of the few the decoder tries.
#[derive(Debug, Default)]
pub(crate) struct KeyBook {
    verified: KeyTier,
    claimed: KeyTier,
}

const MAX_KEYS: usize = 4096;
const MAX_CLAIMED: usize = 1024;

impl KeyBook {
    /// The author of an operation that checked out.
    pub(crate) fn add(&mut self, key: [u8; 32]) {
        self.claimed.remove(&key);
        self.verified.add(key, MAX_KEYS);
    }

    /// A key a neighbour says exists (a Hello).
    pub(crate) fn claim(&mut self, key: [u8; 32]) {
        if !self.verified.contains(&key) {
            self.claimed.add(key, MAX_CLAIMED);
        }
    }

    /// Keys with tag `tag`: the verified ones first, then the claimed ones, newest first.
    pub(crate) fn get(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        let mut keys = self.verified.get(tag);
        keys.extend(self.claimed.get(tag).into_iter().rev());
        keys
    }

    /// Keys with tag `tag` that signed operations stored here: what to tell a neighbour.
    pub(crate) fn verified(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        self.verified.get(tag)
    }

    /// Whether `key` signed an operation stored here.
    pub(crate) fn is_verified(&self, key: &[u8; 32]) -> bool {
        self.verified.contains(key)
    }
}

/// Keys by tag, forgotten in the order they were learned.
#[derive(Debug, Default)]
struct KeyTier {
    by_tag: HashMap<AuthorTag, Vec<[u8; 32]>>,
    order: VecDeque<[u8; 32]>,
}

impl KeyTier {
    fn add(&mut self, key: [u8; 32], max: usize) {
        let keys = self.by_tag.entry(AuthorTag::from_key(&key)).or_default();
        if keys.contains(&key) {
            return;
        }
        keys.push(key);
        self.order.push_back(key);
        if self.order.len() > max
            && let Some(old) = self.order.pop_front()
        {
            self.forget(&old);
        }
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.by_tag
            .get(&AuthorTag::from_key(key))
            .is_some_and(|keys| keys.contains(key))
    }

    fn remove(&mut self, key: &[u8; 32]) {
        if self.contains(key) {
            self.order.retain(|k| k != key);
            self.forget(key);
        }
    }

    fn forget(&mut self, key: &[u8; 32]) {
        let tag = AuthorTag::from_key(key);
        if let Some(keys) = self.by_tag.get_mut(&tag) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_tag.remove(&tag);
            }
        }
    }

    fn get(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        self.by_tag.get(&tag).cloned().unwrap_or_default()
    }
}

/// Logs that grew here lately, newest first: what our summaries name as recent. Bound:
/// `MAX_GROWN` logs; the one that grew longest ago is forgotten first.
#[derive(Debug, Default)]
pub(crate) struct GrownLogs {
    logs: VecDeque<Grown>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Grown {
    pub topic: [u8; 32],
    pub author: [u8; 32],
    pub at: Duration,
}

const MAX_GROWN: usize = 64;

impl GrownLogs {
    pub(crate) fn grew(&mut self, topic: [u8; 32], author: [u8; 32], at: Duration) {
        self.logs.retain(|g| (g.topic, g.author) != (topic, author));
        self.logs.push_front(Grown { topic, author, at });
        self.logs.truncate(MAX_GROWN);
    }

    /// The logs that grew at or after `since`, newest first.
    pub(crate) fn since(&self, since: Duration) -> impl Iterator<Item = &Grown> {
        self.logs.iter().take_while(move |g| g.at >= since)
    }
}

/// What a held operation waits for before it can be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Its predecessor in the log (it arrived out of order).
    Backlink {
        topic: [u8; 32],
        author: [u8; 32],
        seq: u64,
    },
    /// Its author's key (it arrived with the key elided).
    Key(AuthorTag),
}

/// An encoded operation that could not be decoded yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub link: LinkId,
    /// The neighbour it was heard from.
    pub sender: NodeTag,
    pub bytes: Vec<u8>,
    pub since: Duration,
    pub waiting: Waiting,
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A key whose tag is `tag`, told apart from others of that tag by `n`.
    fn key(tag: u16, n: u32) -> [u8; 32] {
        let mut key = [0; 32];
        key[..2].copy_from_slice(&tag.to_le_bytes());
        key[2..6].copy_from_slice(&n.to_le_bytes());
        key
    }

    fn tag(tag: u16) -> AuthorTag {
        AuthorTag(tag.to_le_bytes())
    }

    /// The `n`th of many keys with different tags (for `n` below 65 536).
    fn distinct(n: usize) -> [u8; 32] {
        key(n as u16, 0)
    }

    #[test]
    fn an_empty_key_book_knows_no_key() {
        let book = KeyBook::default();
        assert!(book.get(tag(1)).is_empty());
        assert!(book.verified(tag(1)).is_empty());
        assert!(!book.is_verified(&key(1, 0)));
    }

    #[test]
    fn keys_are_found_by_their_tag_only() {
        let mut book = KeyBook::default();
        book.add(key(1, 0));
        book.add(key(1, 1));
        book.add(key(2, 0));
        assert_eq!(book.get(tag(1)), vec![key(1, 0), key(1, 1)]);
        assert_eq!(book.get(tag(2)), vec![key(2, 0)]);
        assert!(book.get(tag(3)).is_empty());
    }

    #[test]
    fn a_claimed_key_is_a_candidate_but_not_verified() {
        let mut book = KeyBook::default();
        book.claim(key(1, 0));
        assert_eq!(book.get(tag(1)), vec![key(1, 0)]);
        assert!(book.verified(tag(1)).is_empty());
        assert!(!book.is_verified(&key(1, 0)));
    }

    #[test]
    fn verified_keys_come_before_claimed_ones_and_claimed_ones_newest_first() {
        let mut book = KeyBook::default();
        book.claim(key(1, 10));
        book.claim(key(1, 11));
        book.add(key(1, 0));
        book.claim(key(1, 12));
        assert_eq!(
            book.get(tag(1)),
            vec![key(1, 0), key(1, 12), key(1, 11), key(1, 10)]
        );
        assert_eq!(book.verified(tag(1)), vec![key(1, 0)]);
    }

    #[test]
    fn a_claimed_key_becomes_verified_once_it_signs_a_stored_operation() {
        let mut book = KeyBook::default();
        book.claim(key(1, 0));
        book.add(key(1, 0));
        assert!(book.is_verified(&key(1, 0)));
        assert_eq!(book.get(tag(1)), vec![key(1, 0)], "listed once");
        assert_eq!(book.verified(tag(1)), vec![key(1, 0)]);
    }

    #[test]
    fn claiming_a_verified_key_changes_nothing() {
        let mut book = KeyBook::default();
        book.add(key(1, 0));
        book.claim(key(1, 0));
        assert_eq!(book.get(tag(1)), vec![key(1, 0)]);
        assert!(book.is_verified(&key(1, 0)));
    }

    #[test]
    fn a_key_learned_twice_is_listed_once() {
        let mut book = KeyBook::default();
        book.add(key(1, 0));
        book.add(key(1, 0));
        book.claim(key(1, 1));
        book.claim(key(1, 1));
        assert_eq!(book.get(tag(1)), vec![key(1, 0), key(1, 1)]);
    }

    #[test]
    fn past_max_keys_the_verified_key_learned_first_is_forgotten_first() {
        let mut book = KeyBook::default();
        for n in 0..MAX_KEYS {
            book.add(distinct(n));
        }
        // Learning a key again does not take a second place in the bound.
        book.add(distinct(0));
        assert!(
            book.is_verified(&distinct(0)),
            "at the bound, nothing forgotten"
        );
        book.add(distinct(MAX_KEYS));
        assert!(!book.is_verified(&distinct(0)));
        assert!(book.get(AuthorTag::from_key(&distinct(0))).is_empty());
        assert!(book.is_verified(&distinct(1)));
        assert!(book.is_verified(&distinct(MAX_KEYS)));
        book.add(distinct(MAX_KEYS + 1));
        assert!(!book.is_verified(&distinct(1)));
        assert!(book.is_verified(&distinct(2)));
    }

    #[test]
    fn past_max_claimed_the_oldest_claim_is_forgotten_first() {
        let mut book = KeyBook::default();
        for n in 0..=MAX_CLAIMED {
            book.claim(distinct(n));
        }
        assert!(book.get(AuthorTag::from_key(&distinct(0))).is_empty());
        assert_eq!(
            book.get(AuthorTag::from_key(&distinct(1))),
            vec![distinct(1)]
        );
        assert_eq!(
            book.get(AuthorTag::from_key(&distinct(MAX_CLAIMED))),
            vec![distinct(MAX_CLAIMED)]
        );
    }

    #[test]
    fn a_flood_of_claims_never_displaces_a_verified_key() {
        let mut book = KeyBook::default();
        book.add(key(1, 0));
        for n in 1..=(2 * MAX_CLAIMED as u32) {
            book.claim(key(1, n));
        }
        assert!(book.is_verified(&key(1, 0)));
        let candidates = book.get(tag(1));
        assert_eq!(candidates[0], key(1, 0), "the verified key is tried first");
        assert_eq!(
            candidates[1],
            key(1, 2 * MAX_CLAIMED as u32),
            "newest claim"
        );
        assert_eq!(candidates.len(), 1 + MAX_CLAIMED);
    }

    #[test]
    fn a_claim_made_verified_frees_its_place_among_the_claims() {
        let mut book = KeyBook::default();
        for n in 0..MAX_CLAIMED {
            book.claim(distinct(n));
        }
        book.add(distinct(MAX_CLAIMED - 1));
        // The claims hold one less now: one more fits without forgetting the oldest claim.
        book.claim(distinct(MAX_CLAIMED));
        assert_eq!(
            book.get(AuthorTag::from_key(&distinct(0))),
            vec![distinct(0)]
        );
        assert!(book.is_verified(&distinct(MAX_CLAIMED - 1)));
    }

    #[test]
    fn no_log_grew_in_an_empty_record() {
        let grown = GrownLogs::default();
        assert_eq!(grown.since(Duration::ZERO).count(), 0);
    }

    fn authors_since(grown: &GrownLogs, since: Duration) -> Vec<[u8; 32]> {
        grown.since(since).map(|g| g.author).collect()
    }

    #[test]
    fn grown_logs_are_listed_newest_first() {
        let mut grown = GrownLogs::default();
        grown.grew([0; 32], key(1, 0), S);
        grown.grew([0; 32], key(2, 0), 2 * S);
        grown.grew([0; 32], key(3, 0), 3 * S);
        assert_eq!(
            authors_since(&grown, Duration::ZERO),
            vec![key(3, 0), key(2, 0), key(1, 0)]
        );
    }

    #[test]
    fn since_includes_logs_grown_at_that_instant_and_none_before() {
        let mut grown = GrownLogs::default();
        grown.grew([0; 32], key(1, 0), S);
        grown.grew([0; 32], key(2, 0), 2 * S);
        grown.grew([0; 32], key(3, 0), 3 * S);
        assert_eq!(authors_since(&grown, 2 * S), vec![key(3, 0), key(2, 0)]);
        assert!(authors_since(&grown, 4 * S).is_empty());
    }

    #[test]
    fn a_log_that_grows_again_moves_to_the_front_and_is_listed_once() {
        let mut grown = GrownLogs::default();
        grown.grew([0; 32], key(1, 0), S);
        grown.grew([0; 32], key(2, 0), 2 * S);
        grown.grew([0; 32], key(1, 0), 3 * S);
        let logs: Vec<Grown> = grown.since(Duration::ZERO).copied().collect();
        assert_eq!(logs.len(), 2);
        assert_eq!((logs[0].author, logs[0].at), (key(1, 0), 3 * S));
        assert_eq!(logs[1].author, key(2, 0));
    }

    #[test]
    fn one_author_in_two_topics_is_two_logs() {
        let mut grown = GrownLogs::default();
        grown.grew([1; 32], key(1, 0), S);
        grown.grew([2; 32], key(1, 0), 2 * S);
        let topics: Vec<[u8; 32]> = grown.since(Duration::ZERO).map(|g| g.topic).collect();
        assert_eq!(topics, vec![[2; 32], [1; 32]]);
    }

    #[test]
    fn past_max_grown_the_log_that_grew_longest_ago_is_forgotten() {
        let mut grown = GrownLogs::default();
        for n in 0..=MAX_GROWN {
            grown.grew([0; 32], distinct(n), S * n as u32);
        }
        let authors = authors_since(&grown, Duration::ZERO);
        assert_eq!(authors.len(), MAX_GROWN);
        assert_eq!(authors[0], distinct(MAX_GROWN));
        assert_eq!(authors[MAX_GROWN - 1], distinct(1));
        assert!(!authors.contains(&distinct(0)));
    }
}
