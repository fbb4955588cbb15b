//! Bounded memories of the engine: author keys, logs grown, operations waiting.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::LinkId;
use crate::tags::{AuthorTag, NodeTag};

/// Author keys known, by tag. Bound: `MAX_KEYS`; the key learned first is forgotten first
/// (authors with ops in the store are re-added whenever their ops are used).
#[derive(Debug, Default)]
pub(crate) struct KeyBook {
    by_tag: HashMap<AuthorTag, Vec<[u8; 32]>>,
    order: VecDeque<[u8; 32]>,
}

const MAX_KEYS: usize = 4096;

impl KeyBook {
    pub(crate) fn add(&mut self, key: [u8; 32]) {
        let keys = self.by_tag.entry(AuthorTag::from_key(&key)).or_default();
        if keys.contains(&key) {
            return;
        }
        keys.push(key);
        self.order.push_back(key);
        if self.order.len() > MAX_KEYS
            && let Some(old) = self.order.pop_front()
        {
            let tag = AuthorTag::from_key(&old);
            if let Some(keys) = self.by_tag.get_mut(&tag) {
                keys.retain(|k| *k != old);
                if keys.is_empty() {
                    self.by_tag.remove(&tag);
                }
            }
        }
    }

    pub(crate) fn get(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
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
