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
    /// Queues `item` unless an equal one is queued already (then the earlier hold-off stays);
    /// says whether it was added.
    pub(crate) fn push(&mut self, priority: Priority, not_before: Duration, item: Item) -> bool {
        if self.entries.iter().any(|e| e.item == item) {
            return false;
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
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const TOPIC: [u8; 32] = [7; 32];
    const AUTHOR: [u8; 32] = [9; 32];

    fn op(seq: u64) -> Item {
        Item::Op {
            topic: TOPIC,
            author: AUTHOR,
            seq,
        }
    }

    fn key_want(tag: u8) -> Item {
        Item::KeyWant(vec![AuthorTag([tag, 0])])
    }

    /// The items ready at `now`, in the order `ready` gives them.
    fn ready_items(queue: &SendQueue, now: Duration) -> Vec<Item> {
        queue
            .ready(now)
            .into_iter()
            .map(|order| {
                queue
                    .get(order)
                    .expect("ready orders are queued")
                    .item
                    .clone()
            })
            .collect()
    }

    fn seqs(queue: &SendQueue, now: Duration) -> Vec<u64> {
        ready_items(queue, now)
            .iter()
            .map(|item| item.place().expect("only ops queued").2)
            .collect()
    }

    #[test]
    fn an_empty_queue_has_nothing_ready_and_no_deadline() {
        let queue = SendQueue::default();
        assert_eq!(queue.len(), 0);
        assert!(queue.ready(Duration::MAX).is_empty());
        assert_eq!(queue.next_ready(Duration::ZERO), None);
    }

    #[test]
    fn lower_priorities_are_ready_first() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Summary, Duration::ZERO, Item::Summary);
        queue.push(Priority::Control, Duration::ZERO, key_want(1));
        queue.push(Priority::Fresh, Duration::ZERO, op(3));
        queue.push(Priority::Wanted, Duration::ZERO, op(2));
        queue.push(Priority::Continuation, Duration::ZERO, key_want(2));
        assert_eq!(
            ready_items(&queue, Duration::ZERO),
            vec![key_want(2), op(2), op(3), key_want(1), Item::Summary]
        );
    }

    #[test]
    fn an_entry_is_ready_from_its_hold_off_on_and_not_before() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Wanted, 10 * MS, op(0));
        assert!(queue.ready(10 * MS - Duration::from_nanos(1)).is_empty());
        assert_eq!(seqs(&queue, 10 * MS), vec![0]);
    }

    #[test]
    fn operations_of_one_priority_go_in_log_order_whatever_their_hold_offs() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Wanted, Duration::ZERO, op(2));
        queue.push(Priority::Wanted, 5 * MS, op(0));
        queue.push(Priority::Wanted, 3 * MS, op(1));
        assert_eq!(seqs(&queue, 10 * MS), vec![0, 1, 2]);
        // Before its hold-off an operation is not ready, even if it comes first in its log.
        assert_eq!(seqs(&queue, 4 * MS), vec![1, 2]);
    }

    #[test]
    fn log_order_does_not_lift_an_operation_above_a_better_priority() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Fresh, Duration::ZERO, op(0));
        queue.push(Priority::Wanted, Duration::ZERO, op(5));
        assert_eq!(seqs(&queue, Duration::ZERO), vec![5, 0]);
    }

    #[test]
    fn other_items_of_one_priority_go_by_hold_off_then_by_queue_order() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Control, 2 * MS, key_want(1));
        queue.push(Priority::Control, MS, key_want(2));
        queue.push(Priority::Control, 2 * MS, key_want(3));
        assert_eq!(
            ready_items(&queue, 2 * MS),
            vec![key_want(2), key_want(1), key_want(3)]
        );
    }

    #[test]
    fn an_item_already_queued_is_not_queued_again_and_keeps_its_earlier_hold_off() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Fresh, MS, op(0));
        queue.push(Priority::Wanted, 50 * MS, op(0));
        assert_eq!(queue.len(), 1);
        let order = queue.ready(MS)[0];
        let entry = queue.get(order).unwrap();
        assert_eq!(entry.not_before, MS);
        assert_eq!(entry.priority, Priority::Fresh);
    }

    #[test]
    fn an_item_taken_out_can_be_queued_again() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Wanted, Duration::ZERO, op(0));
        let order = queue.ready(Duration::ZERO)[0];
        assert_eq!(queue.take(order).unwrap().item, op(0));
        queue.push(Priority::Wanted, Duration::ZERO, op(0));
        assert_eq!(queue.len(), 1);
        assert_ne!(queue.ready(Duration::ZERO), vec![order], "a fresh order");
    }

    #[test]
    fn queue_orders_stay_valid_while_others_are_taken_out() {
        let mut queue = SendQueue::default();
        for seq in 0..4 {
            queue.push(Priority::Wanted, Duration::ZERO, op(seq));
        }
        let ready = queue.ready(Duration::ZERO);
        assert_eq!(queue.take(ready[0]).unwrap().item, op(0));
        assert_eq!(queue.take(ready[2]).unwrap().item, op(2));
        assert_eq!(queue.get(ready[1]).unwrap().item, op(1));
        assert_eq!(queue.get(ready[3]).unwrap().item, op(3));
        assert!(queue.get(ready[0]).is_none());
        assert!(queue.take(ready[0]).is_none(), "taken only once");
        assert_eq!(queue.len(), 2);
    }

    /// A queue of `MAX_ENTRIES` operations at `priority`, seqs `0..MAX_ENTRIES`.
    fn full_queue(priority: Priority) -> SendQueue {
        let mut queue = SendQueue::default();
        for seq in 0..MAX_ENTRIES as u64 {
            queue.push(priority, Duration::ZERO, op(seq));
        }
        assert_eq!(queue.len(), MAX_ENTRIES);
        queue
    }

    #[test]
    fn a_full_queue_drops_a_new_entry_of_the_lowest_priority() {
        let mut queue = full_queue(Priority::Wanted);
        queue.push(Priority::Summary, Duration::ZERO, Item::Summary);
        assert_eq!(queue.len(), MAX_ENTRIES);
        assert!(!ready_items(&queue, Duration::ZERO).contains(&Item::Summary));
        // A new entry of the same priority is the most recently queued: it is the one dropped.
        queue.push(Priority::Wanted, Duration::ZERO, op(1000));
        assert_eq!(
            seqs(&queue, Duration::ZERO),
            (0..MAX_ENTRIES as u64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_full_queue_evicts_the_most_recently_queued_entry_of_the_lowest_priority() {
        let mut queue = full_queue(Priority::Fresh);
        queue.push(Priority::Continuation, Duration::ZERO, key_want(1));
        assert_eq!(queue.len(), MAX_ENTRIES);
        let items = ready_items(&queue, Duration::ZERO);
        assert_eq!(items[0], key_want(1));
        let last = MAX_ENTRIES as u64 - 1;
        assert!(!items.contains(&op(last)), "the latest Fresh op is evicted");
        assert!(items.contains(&op(0)) && items.contains(&op(last - 1)));
    }

    #[test]
    fn a_full_queue_evicts_a_lower_priority_entry_before_a_more_recent_better_one() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Fresh, Duration::ZERO, key_want(1));
        for seq in 1..MAX_ENTRIES as u64 {
            queue.push(Priority::Wanted, Duration::ZERO, op(seq));
        }
        queue.push(Priority::Wanted, Duration::ZERO, op(0));
        assert_eq!(queue.len(), MAX_ENTRIES);
        assert_eq!(
            seqs(&queue, Duration::ZERO),
            (0..MAX_ENTRIES as u64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn absorb_stops_at_the_first_item_that_takes_the_new_one() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Control, Duration::ZERO, key_want(1));
        queue.push(Priority::Control, Duration::ZERO, key_want(2));
        queue.push(Priority::Control, Duration::ZERO, key_want(3));
        let mut offered = 0;
        let absorbed = queue.absorb(|item| {
            offered += 1;
            match item {
                Item::KeyWant(tags) if tags[0] == AuthorTag([2, 0]) => {
                    tags.push(AuthorTag([4, 0]));
                    true
                }
                _ => false,
            }
        });
        assert!(absorbed);
        assert_eq!(offered, 2, "the third item is not offered");
        let items = ready_items(&queue, Duration::ZERO);
        assert!(items.contains(&Item::KeyWant(vec![AuthorTag([2, 0]), AuthorTag([4, 0])])));
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn absorb_says_so_when_no_item_takes_the_new_one() {
        let mut queue = SendQueue::default();
        assert!(!queue.absorb(|_| true), "nothing queued, nothing absorbs");
        queue.push(Priority::Control, Duration::ZERO, key_want(1));
        assert!(!queue.absorb(|_| false));
    }

    #[test]
    fn cancel_removes_only_the_matching_entries_and_counts_them() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Summary, Duration::ZERO, Item::Summary);
        for seq in 0..3 {
            queue.push(Priority::Fresh, Duration::ZERO, op(seq));
        }
        assert_eq!(
            queue.cancel(|item| item.place().is_some_and(|p| p.2 != 1)),
            2
        );
        assert_eq!(
            ready_items(&queue, Duration::ZERO),
            vec![op(1), Item::Summary]
        );
        assert_eq!(queue.cancel(|item| *item == op(0)), 0);
    }

    #[test]
    fn next_ready_is_the_earliest_hold_off_still_in_the_future() {
        let mut queue = SendQueue::default();
        queue.push(Priority::Wanted, 5 * MS, op(0));
        queue.push(Priority::Wanted, 2 * MS, op(1));
        queue.push(Priority::Wanted, 9 * MS, op(2));
        assert_eq!(queue.next_ready(Duration::ZERO), Some(2 * MS));
        assert_eq!(
            queue.next_ready(2 * MS),
            Some(5 * MS),
            "ready ones do not count"
        );
        assert_eq!(queue.next_ready(9 * MS), None);
    }

    #[test]
    fn only_operations_have_a_place_in_a_log() {
        assert_eq!(op(4).place(), Some((&TOPIC, &AUTHOR, 4)));
        assert_eq!(Item::Summary.place(), None);
        assert_eq!(key_want(1).place(), None);
        assert_eq!(Item::Hello(vec![AUTHOR]).place(), None);
    }

    #[test]
    fn only_anti_entropy_may_use_the_last_tenth_of_the_airtime() {
        for p in [Priority::Continuation, Priority::Wanted, Priority::Fresh] {
            assert_eq!(p.reserve(), 0.1, "{p:?}");
        }
        for p in [Priority::Control, Priority::Summary] {
            assert_eq!(p.reserve(), 0.0, "{p:?}");
        }
    }

    #[test]
    fn answers_and_continuations_do_not_yield_to_a_sending_neighbour() {
        assert!(!Priority::Continuation.yields());
        assert!(!Priority::Wanted.yields());
        assert!(Priority::Fresh.yields());
        assert!(Priority::Control.yields());
        assert!(Priority::Summary.yields());
    }
}
