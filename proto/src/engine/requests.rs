//! What a neighbour's Summary, Vector or Want asks of us, and the answers we queue: the
//! pushes of what it lacks, our Wants of what we lack, and the budgets that keep a forged
//! request from drawing more than its share (see `answers`).

use std::time::Duration;

use heapless::Vec as BoundedVec;

use super::answers::Requester;
use super::queue::{Item, Priority};
use super::{Engine, EngineTime, LinkId, OpStore};
use crate::message::{MAX_WANT_RANGES, Summary, Vector, Want, WantRange};
use crate::tags::{AuthorTag, NodeTag};

impl<S: OpStore> Engine<S> {
    pub(super) fn on_summary(
        &mut self,
        now: Duration,
        link: LinkId,
        sender: NodeTag,
        summary: &Summary,
    ) {
        let (mut agree, mut disagree, mut lacks) = (false, false, false);
        for entry in &summary.topics {
            for topic in self.link_topics(link, entry.topic) {
                let (ops, digest) = self.topic_state(&topic);
                if (ops, digest) == (entry.ops, entry.digest) {
                    agree = true;
                    continue;
                }
                let comparison = self.compare(&topic, entry, &summary.recent);
                if !comparison.wants.is_empty() {
                    let want = Want {
                        topic: entry.topic,
                        responder: sender,
                        ranges: comparison.wants,
                    };
                    self.queue_want(now, link, want);
                }
                self.push_lacking(now, link, sender, &topic, &comparison.lacking);
                if comparison.explained {
                    // Both sides now know what to send: neither a Vector nor a sooner
                    // summary of ours would add anything.
                    continue;
                }
                disagree = true;
                // Only the side that may lack something describes itself: a sender holding
                // fewer ops than we do will hear our summary (our Trickle resets below) and
                // send its Vector, which tells us both what to push and what to want. Halves
                // the Vectors of a repair.
                if entry.ops >= ops {
                    self.queue_vector(now, link, &topic);
                } else {
                    lacks = true;
                }
            }
        }
        let random = self.random();
        let trickle = &mut self.links[link].trickle;
        if disagree {
            trickle.reset(now, random);
        } else if agree {
            trickle.heard_consistent();
            // A neighbour said what our queued summary would say.
            let cancelled = self.links[link].queue.cancel(|item| *item == Item::Summary);
            self.links[link].stats.cancelled += cancelled as u64;
        }
        if lacks {
            // The sender lacks what we hold: our summary, soon rather than at the reset
            // interval, lets it send the Vector that starts the repair.
            self.queue_greeting(now, link);
        }
    }

    /// Pushes the ends of logs a neighbour lacks: (author, first seq it lacks) in `topic`.
    fn push_lacking(
        &mut self,
        now: Duration,
        link: LinkId,
        sender: NodeTag,
        topic: &[u8; 32],
        lacking: &[([u8; 32], u64)],
    ) {
        let mut budget = self.answer_limit(link);
        let at = now + self.holdoff(link);
        for (author, from) in lacking {
            let height = self.height(topic, author);
            let from = (*from).max(self.store.first(topic, author));
            if height.saturating_sub(from) > budget as u64 {
                self.links[link].owes_more = true;
            }
            for seq in (from..height).take(budget) {
                budget -= 1;
                self.queue_answer(now, at, (link, sender), topic, *author, seq);
            }
        }
    }

    /// Queues `want`, or folds it into a Want already queued to the same responder for the
    /// same topic: out-of-order arrivals during a burst each ask for their gap, and one frame
    /// can ask for all of them.
    pub(super) fn queue_want(&mut self, now: Duration, link: LinkId, want: Want) {
        let absorbed = self.links[link].queue.absorb(|item| match item {
            Item::Want(queued)
                if (queued.topic, queued.responder) == (want.topic, want.responder) =>
            {
                fold_ranges(&mut queued.ranges, &want.ranges)
            }
            _ => false,
        });
        if absorbed {
            return;
        }
        let at = now + self.holdoff(link);
        self.links[link]
            .queue
            .push(Priority::Control, at, Item::Want(want));
    }

    /// Queues every page of our heights for `topic`, at most once per half `imin`.
    pub(super) fn queue_vector(&mut self, now: Duration, link: LinkId, topic: &[u8; 32]) {
        let min_gap = self.config.trickle.imin / 2;
        if self.links[link]
            .last_vector
            .get(topic)
            .is_some_and(|t| now < *t + min_gap)
        {
            return;
        }
        self.links[link].last_vector.insert(*topic, now);
        for vector in self.vector_pages(topic) {
            let at = now + self.holdoff(link);
            self.links[link]
                .queue
                .push(Priority::Control, at, Item::Vector(vector));
        }
    }

    pub(super) fn on_vector(
        &mut self,
        now: Duration,
        link: LinkId,
        sender: NodeTag,
        vector: &Vector,
    ) {
        // A neighbour said what we were about to say.
        let cancelled = self.links[link]
            .queue
            .cancel(|item| *item == Item::Vector(vector.clone()));
        self.links[link].stats.cancelled += cancelled as u64;
        let in_range = |tag: AuthorTag| vector.from <= tag && tag <= vector.to;
        let at = now + self.holdoff(link);
        for topic in self.link_topics(link, vector.topic) {
            let ours: Vec<_> = self
                .store
                .heights(&topic)
                .into_iter()
                .filter(|(a, _)| in_range(AuthorTag::from_key(a)))
                .collect();
            // Push what the sender lacks. With colliding tags, assume the lower height.
            let mut budget = self.answer_limit(link);
            for (author, height) in &ours {
                let tag = AuthorTag::from_key(author);
                let theirs = vector
                    .heights
                    .iter()
                    .filter(|h| h.author == tag)
                    .map(|h| h.ops)
                    .min()
                    .unwrap_or(0)
                    .max(self.store.first(&topic, author));
                for seq in theirs..*height {
                    if budget == 0 {
                        self.links[link].owes_more = true;
                        break;
                    }
                    budget -= 1;
                    self.queue_answer(now, at, (link, sender), &topic, *author, seq);
                }
            }
            // Want what we lack.
            let mut ranges = BoundedVec::<WantRange, MAX_WANT_RANGES>::new();
            for height in &vector.heights {
                let mine = ours
                    .iter()
                    .filter(|(a, _)| AuthorTag::from_key(a) == height.author)
                    .map(|(_, h)| *h)
                    .max()
                    .unwrap_or(0);
                if height.ops > mine {
                    let range = WantRange {
                        author: height.author,
                        from_seq: mine,
                        to_seq: height.ops - 1,
                    };
                    if ranges.push(range).is_err() {
                        break;
                    }
                }
            }
            if !ranges.is_empty() {
                let want = Want {
                    topic: vector.topic,
                    responder: sender,
                    ranges,
                };
                self.queue_want(now, link, want);
            }
        }
    }

    pub(super) fn on_want(&mut self, now: Duration, link: LinkId, sender: NodeTag, want: &Want) {
        let cancelled = self.links[link]
            .queue
            .cancel(|item| *item == Item::Want(want.clone()));
        self.links[link].stats.cancelled += cancelled as u64;
        if want.responder != self.me {
            return;
        }
        let mut budget = self.answer_limit(link);
        let at = now + self.holdoff(link);
        for topic in self.link_topics(link, want.topic) {
            for range in &want.ranges {
                for (author, height) in self.store.heights(&topic) {
                    if AuthorTag::from_key(&author) != range.author {
                        continue;
                    }
                    let to = range.to_seq.min(height.saturating_sub(1));
                    let from = range.from_seq.max(self.store.first(&topic, &author));
                    for seq in from..=to {
                        if height == 0 {
                            return;
                        }
                        if budget == 0 {
                            self.links[link].owes_more = true;
                            return;
                        }
                        budget -= 1;
                        self.queue_answer(now, at, (link, sender), &topic, author, seq);
                    }
                }
            }
        }
    }

    /// Queues a held operation as an answer, not before `at`: a hold-off that lets a
    /// neighbour's identical answer cancel it. One answer shares one hold-off, so that its
    /// operations become ready together and go out in log order (see `SendQueue::ready`):
    /// a receiver stores only operations whose predecessors it holds, and one hold-off per
    /// operation shuffled a catch-up so that most of it waited in `pending` and was asked
    /// for again. On a radio channel, each answer is drawn from the requester's allowance
    /// (see `answers`).
    fn queue_answer(
        &mut self,
        now: Duration,
        at: Duration,
        (link, requester): (LinkId, NodeTag),
        topic: &[u8; 32],
        author: [u8; 32],
        seq: u64,
    ) {
        let who = self.requester(now, link, requester);
        let state = &mut self.links[link];
        let radio = state.airtime.is_some();
        if radio && !state.answers.may_answer(now, &(*topic, author, seq)) {
            return;
        }
        if radio && !state.answers.has_room(now, who) {
            return;
        }
        let item = Item::Op {
            topic: *topic,
            author,
            seq,
        };
        if state.queue.push(Priority::Wanted, at, item) {
            if radio {
                state.answers.spend(now, who);
            }
            // A store on disk starts reading it now, so that it is at hand when its turn
            // comes.
            self.store.prefetch(topic, &author, seq);
        }
    }

    /// Whether `sender` is a known neighbour on `link` (see [`Neighbour::known`]).
    pub(super) fn knows(&self, now: Duration, link: LinkId, sender: NodeTag) -> bool {
        self.links[link]
            .neighbours
            .iter()
            .any(|n| n.tag == sender && n.known(EngineTime::from_start(now)))
    }

    /// What `link` knows of `tag`, for its answer allowance.
    fn requester(&self, now: Duration, link: LinkId, tag: NodeTag) -> Requester {
        match self.links[link].neighbours.iter().find(|n| n.tag == tag) {
            Some(n) if n.ops > 0 => Requester::Proven,
            Some(n) if n.known(EngineTime::from_start(now)) => Requester::Acquainted(tag),
            _ => Requester::Stranger,
        }
    }
}

/// Folds `more` into `ranges` (ranges of one author become one covering range); false if a
/// range did not fit, and then `ranges` is unchanged.
fn fold_ranges(ranges: &mut BoundedVec<WantRange, MAX_WANT_RANGES>, more: &[WantRange]) -> bool {
    let mut folded = ranges.clone();
    for range in more {
        match folded.iter_mut().find(|r| r.author == range.author) {
            Some(r) => {
                r.from_seq = r.from_seq.min(range.from_seq);
                r.to_seq = r.to_seq.max(range.to_seq);
            }
            None => {
                if folded.push(*range).is_err() {
                    return false;
                }
            }
        }
    }
    *ranges = folded;
    true
}
