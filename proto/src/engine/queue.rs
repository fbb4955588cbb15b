//! One link's send queue: what to send next, in priority order, with random hold-offs that
//! let a neighbour's identical transmission cancel ours.
//!
//! Bound: at most `MAX_ENTRIES` entries; a new entry that does not fit displaces the
//! lowest-priority, most recently queued one (or is dropped if it is the lowest). Dropping
//! loses nothing: operations stay in the store and anti-entropy offers them again.

use std::time::Duration;

use crate::message::{Message, Vector, Want};
use crate::tags::{AuthorTag, OpTag};

pub(crate) const MAX_ENTRIES: usize = 256;

/// Lower sends first. Fragments of an operation already started go before anything else, so
/// receivers are not left holding partial operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Continuation,
    Wanted,
    Fresh,
    Control,
    Summary,
}

impl Priority {
    /// Share of the airtime budget that must remain after a send of this priority: the last
    /// tenth is kept for anti-entropy (summaries, Vectors, Wants), so that no load, a burst
    /// or an attacker drawing answers, can silence the repair of what was missed.
    pub(crate) fn reserve(self) -> f64 {
        match self {
            Priority::Continuation | Priority::Fresh | Priority::Wanted => 0.1,
            Priority::Control | Priority::Summary => 0.0,
        }
    }

    /// Whether a send of this priority waits while a neighbour is sending operations (see
    /// `Engine::yield_to_sender`). Answers and the rest of a started operation do not: they
    /// are what the neighbours are waiting for.
    pub(crate) fn yields(self) -> bool {
        matches!(
            self,
            Priority::Fresh | Priority::Control | Priority::Summary
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Summary,
    Vector(Vector),
    Want(Want),
    KeyWant(Vec<AuthorTag>),
    Hello(Vec<[u8; 32]>),
    /// An operation, by its place in its log: its id (and body) may be on disk until sent.
    Op {
        topic: [u8; 32],
        author: [u8; 32],
        seq: u64,
    },
    /// A fragment of an operation whose first fragment has been sent.
    Continuation {
        op: OpTag,
        message: Message,
    },
}

impl Item {
    /// An operation's place in its log, for ordering sends; `None` for everything else.
    pub(crate) fn place(&self) -> Option<(&[u8; 32], &[u8; 32], u64)> {
        match self {
            Item::Op { topic, author, seq } => Some((topic, author, *seq)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub priority: Priority,
    pub not_before: Duration,
    pub item: Item,
    order: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SendQueue {
    entries: Vec<Entry>,
    next_order: u64,
}

impl SendQueue {
    /// Queues `item` unless an equal one is queued already (then the earlier hold-off stays).
    pub(crate) fn push(&mut self, priority: Priority, not_before: Duration, item: Item) {
        if self.entries.iter().any(|e| e.item == item) {
            return;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.entries.push(Entry {
            priority,
            not_before,
            item,
            order,
        });
        if self.entries.len() > MAX_ENTRIES
            && let Some(worst) = (0..self.entries.len())
                .max_by_key(|i| (self.entries[*i].priority, self.entries[*i].order))
        {
            self.entries.swap_remove(worst);
        }
    }

    /// The entries ready at `now`, best first, by their queue order (which, unlike their
    /// position, stays valid while others are taken out). Operations of one priority go in
    /// log order, whatever their hold-offs: a receiver stores an operation only once it holds
    /// the one before, so a catch-up sent out of order mostly waits and is asked for again.
    pub(crate) fn ready(&self, now: Duration) -> Vec<u64> {
        let mut ready: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.not_before <= now)
            .collect();
        ready.sort_by_key(|e| (e.priority, e.item.place(), e.not_before, e.order));
        ready.into_iter().map(|e| e.order).collect()
    }

    pub(crate) fn get(&self, order: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.order == order)
    }

    pub(crate) fn take(&mut self, order: u64) -> Option<Entry> {
        let index = self.entries.iter().position(|e| e.order == order)?;
        Some(self.entries.remove(index))
    }

    /// Offers each queued item to `absorb` until one takes what the caller was about to queue
    /// (by changing itself); returns whether one did.
    pub(crate) fn absorb(&mut self, mut absorb: impl FnMut(&mut Item) -> bool) -> bool {
        self.entries.iter_mut().any(|e| absorb(&mut e.item))
    }

    /// Removes the entries `cancel` matches (overheard from a neighbour, or made moot).
    pub(crate) fn cancel(&mut self, cancel: impl Fn(&Item) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !cancel(&e.item));
        before - self.entries.len()
    }

    /// The earliest hold-off still in the future.
    pub(crate) fn next_ready(&self, now: Duration) -> Option<Duration> {
        self.entries
            .iter()
            .map(|e| e.not_before)
            .filter(|t| *t > now)
            .min()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
