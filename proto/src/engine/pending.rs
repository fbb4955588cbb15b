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
