//! What the engine does with what it hears.

use std::time::Duration;

use super::own_tag;
use super::pending::{Pending, Waiting};
use super::queue::{Item, Priority};
use super::{
    Engine, EngineTime, Event, KEY_RETELL, KEY_WANT_FIRST_GAP, LinkId, MAX_NEIGHBOURS,
    MAX_QUIET_FRAMES, Neighbour, OpStore, QUIET_FRAMES, Rejection,
};
use crate::compact::{self, CompactError, OpContext};
use crate::message::{Fragment, Hello, Message, Want, WantRange};
use crate::tags::{AuthorTag, NodeTag, OpTag, TopicTag};

/// Rebuilds headers from the store, the link's topics and the key book.
struct Context<'a, S> {
    engine: &'a Engine<S>,
    link: LinkId,
}

impl<S: OpStore> OpContext for Context<'_, S> {
    fn topics(&self, tag: TopicTag) -> Vec<[u8; 32]> {
        self.engine.link_topics(self.link, tag)
    }
    fn authors(&self, tag: AuthorTag) -> Vec<[u8; 32]> {
        self.engine.keys.get(tag)
    }
    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        self.engine.store.op_id(topic, author, seq)
    }
}

impl<S: OpStore> Engine<S> {
    /// A frame was heard on `link` at `now`, with the module's RSSI and SNR if it gave them.
    pub fn handle_frame(
        &mut self,
        now: EngineTime,
        link: LinkId,
        bytes: &[u8],
        signal: Option<(f32, f32)>,
    ) {
        let now = now.since_start();
        self.advance(now);
        let frame = match self.codec.decode(bytes) {
            Ok(frame) => frame,
            Err(error) => return self.reject(link, Rejection::Frame(error)),
        };
        if frame.sender == self.me {
            if self.own.is_ours(bytes) {
                return;
            }
            self.retag(now);
        }
        if let Some(sequence) = frame.sequence
            && !self.replays.accept(frame.sender, sequence)
        {
            return self.reject(link, Rejection::Replayed);
        }
        self.links[link].stats.frames_heard += 1;
        self.note_neighbour(now, link, frame.sender, signal);
        match frame.message {
            Message::Summary(summary) => self.on_summary(now, link, frame.sender, &summary),
            Message::Vector(vector) => self.on_vector(now, link, frame.sender, &vector),
            Message::Want(want) => self.on_want(now, link, frame.sender, &want),
            Message::Op(bytes) => {
                self.yield_to_sender(now, link);
                self.on_op(now, link, frame.sender, bytes.to_vec())
            }
            Message::Fragment(fragment) => {
                self.yield_to_sender(now, link);
                self.on_fragment(now, link, frame.sender, &fragment)
            }
            Message::Hello(hello) => self.on_hello(now, link, &hello),
            Message::KeyWant(tags) => self.on_key_want(now, link, &tags),
        }
    }

    /// A neighbour is sending operations, most likely an answer of several frames in a row
    /// with a short listening gap after each. Our own traffic other than answers (new
    /// operations, summaries, Vectors, Wants) waits until the channel has been free of
    /// operations for `QUIET_FRAMES` full frames: a radio is deaf while it sends, so a Want
    /// sent into the middle of the answer lost the next frames of it, and each loss drew a
    /// new Want. A catch-up over two radio hops stalled this way (issue 11). One Want after
    /// the answer asks for all its gaps.
    ///
    /// One quiet lasts at most `MAX_QUIET_FRAMES`, and the next starts only after we sent
    /// a frame: anyone can send frames that look like operations.
    fn yield_to_sender(&mut self, now: Duration, link: LinkId) {
        let state = &mut self.links[link];
        let Some(frame) = state.frame_airtime() else {
            return;
        };
        if now >= state.quiet_until {
            if state.quiet_spent {
                return;
            }
            state.quiet_since = now;
        }
        let limit = state.quiet_since + frame * MAX_QUIET_FRAMES;
        let until = now + frame * QUIET_FRAMES;
        if until >= limit {
            state.quiet_spent = true;
        }
        state.quiet_until = state.quiet_until.max(until.min(limit));
    }

    /// A frame we did not send carries our tag: a neighbour has it too. Takes a new one,
    /// unless it changed less than `RETAG_SPACING` ago.
    fn retag(&mut self, now: Duration) {
        if self
            .retagged
            .is_some_and(|at| now < at + own_tag::RETAG_SPACING)
        {
            return;
        }
        let from = self.me;
        while self.me == from {
            let [a, b, ..] = self.random().to_le_bytes();
            self.me = NodeTag([a, b]);
        }
        self.retagged = Some(now);
        self.emit(Event::Retagged { from, to: self.me });
    }

    fn reject(&mut self, link: LinkId, reason: Rejection) {
        self.links[link].stats.frames_rejected += 1;
        self.emit(Event::Rejected { link, reason });
    }

    pub(super) fn link_topics(&self, link: LinkId, tag: TopicTag) -> Vec<[u8; 32]> {
        self.links[link]
            .topics
            .iter()
            .filter(|t| TopicTag::from_topic(t) == tag)
            .copied()
            .collect()
    }

    fn note_neighbour(
        &mut self,
        now: Duration,
        link: LinkId,
        tag: NodeTag,
        signal: Option<(f32, f32)>,
    ) {
        let clock = EngineTime::from_start(now);
        let neighbours = &mut self.links[link].neighbours;
        let index = match neighbours.iter().position(|n| n.tag == tag) {
            Some(index) => index,
            None => {
                if neighbours.len() >= MAX_NEIGHBOURS
                    && let Some(oldest) = (0..neighbours.len())
                        .min_by_key(|i| (neighbours[*i].known(clock), neighbours[*i].last_heard))
                {
                    neighbours.swap_remove(oldest);
                }
                neighbours.push(Neighbour {
                    tag,
                    first_heard: clock,
                    last_heard: clock,
                    rssi_dbm: None,
                    snr_db: None,
                    frames: 0,
                    ops: 0,
                });
                neighbours.len() - 1
            }
        };
        let neighbour = &mut neighbours[index];
        neighbour.last_heard = clock;
        neighbour.frames += 1;
        if let Some((rssi, snr)) = signal {
            neighbour.rssi_dbm = Some(rssi);
            neighbour.snr_db = Some(snr);
        }
    }

    fn on_fragment(&mut self, now: Duration, link: LinkId, sender: NodeTag, fragment: &Fragment) {
        // Someone is sending this operation: our copy is not needed on this link. (Only copies
        // whose id the store knows without waiting can be matched by the fragment's tag.)
        let store = &self.store;
        let cancelled = self.links[link].queue.cancel(|item| match item {
            Item::Op { topic, author, seq } => store
                .op_id(topic, author, *seq)
                .is_some_and(|id| OpTag::from_id(&id) == fragment.op),
            _ => false,
        });
        self.links[link].stats.cancelled += cancelled as u64;
        let known = self.knows(now, link, sender);
        match self.reassembler.push(now, sender, known, fragment) {
            Ok(Some(bytes)) => self.on_op(now, link, sender, bytes),
            Ok(None) => {}
            Err(error) => self.reject(link, Rejection::Fragment(error)),
        }
    }

    /// Cancels our queued copy of operation `seq` of `author` in `topic` on `link`.
    fn cancel_op(&mut self, link: LinkId, topic: &[u8; 32], author: &[u8; 32], seq: u64) {
        let op = Item::Op {
            topic: *topic,
            author: *author,
            seq,
        };
        let cancelled = self.links[link].queue.cancel(|item| *item == op);
        self.links[link].stats.cancelled += cancelled as u64;
    }

    /// A whole encoded operation heard on `link`: decode, check order, store, pass on.
    fn on_op(&mut self, now: Duration, link: LinkId, sender: NodeTag, bytes: Vec<u8>) {
        let mut work = vec![(link, sender, bytes)];
        while let Some((link, sender, bytes)) = work.pop() {
            let decoded = compact::decode(&bytes, &Context { engine: self, link });
            let op = match decoded {
                Ok(op) => op,
                // Its predecessor is held but not known without waiting, so the op is: a
                // neighbour answered what another neighbour already sent us.
                Err(CompactError::MissingBacklink { topic, author, seq })
                    if seq < self.height(&topic, &author) =>
                {
                    self.links[link].stats.duplicates += 1;
                    self.cancel_op(link, &topic, &author, seq);
                    continue;
                }
                Err(CompactError::MissingBacklink { topic, author, seq }) => {
                    self.await_predecessor(now, link, sender, bytes, (topic, author, seq));
                    continue;
                }
                Err(CompactError::UnknownAuthor(tag)) => {
                    self.hold(now, link, sender, bytes, Waiting::Key(tag));
                    self.want_key(now, link, tag);
                    continue;
                }
                // Not a topic we carry on this link: someone else's traffic, not an error.
                Err(CompactError::UnknownTopic(_)) => continue,
                Err(error) => {
                    self.reject(link, Rejection::Op(error));
                    continue;
                }
            };
            let id = op.op.id();
            self.links[link].heard.insert(id);
            self.cancel_op(link, &op.topic, &op.author, op.seq);
            // It checked out, new to us or not: a real node sent it.
            if let Some(n) = self.links[link]
                .neighbours
                .iter_mut()
                .find(|n| n.tag == sender)
            {
                n.ops += 1;
            }
            if op.seq < self.height(&op.topic, &op.author) {
                match self.store.op_id(&op.topic, &op.author, op.seq) {
                    Some(held) if held != id => self.reject(
                        link,
                        Rejection::Fork {
                            author: op.author,
                            seq: op.seq,
                        },
                    ),
                    _ => self.links[link].stats.duplicates += 1,
                }
                continue;
            }
            if op.seq > self.height(&op.topic, &op.author) && !op.op.prunes() {
                // A full-form op ahead of its log: stored now, it would leave a hole below
                // it that no repair fills. It waits for its predecessor like a compact one.
                self.await_predecessor(now, link, sender, bytes, (op.topic, op.author, op.seq));
                continue;
            }
            self.store_op(now, &op.topic, op.author, op.seq, op.op.clone());
            self.links[link].stats.ops_received += 1;
            self.offer_fresh(now, &op.topic, op.author, op.seq, id, Some((link, sender)));
            self.emit(Event::Received {
                link,
                topic: op.topic,
                author: op.author,
                seq: op.seq,
                op: op.op,
            });
            // Its successor may be waiting.
            let next = Waiting::Backlink {
                topic: op.topic,
                author: op.author,
                seq: op.seq + 1,
            };
            if let Some(index) = self.pending.iter().position(|p| p.waiting == next) {
                let waiting = self.pending.swap_remove(index);
                work.push((waiting.link, waiting.sender, waiting.bytes));
            }
        }
    }

    /// Holds operation `seq` of `author` in `topic`, heard from `sender` before the ones
    /// below it, and wants the gap from `sender`, which holds them: an engine stores (and so
    /// relays) only operations whose predecessors it holds.
    fn await_predecessor(
        &mut self,
        now: Duration,
        link: LinkId,
        sender: NodeTag,
        bytes: Vec<u8>,
        (topic, author, seq): ([u8; 32], [u8; 32], u64),
    ) {
        let from_seq = self.height(&topic, &author);
        self.hold(
            now,
            link,
            sender,
            bytes,
            Waiting::Backlink { topic, author, seq },
        );
        let want = Want {
            topic: TopicTag::from_topic(&topic),
            responder: sender,
            ranges: [WantRange {
                author: AuthorTag::from_key(&author),
                from_seq,
                to_seq: seq - 1,
            }]
            .into_iter()
            .collect(),
        };
        self.queue_want(now, link, want);
    }

    /// Holds an operation that cannot be decoded yet. Bound: `max_pending` operations; the
    /// oldest is dropped first (it will be wanted again).
    fn hold(
        &mut self,
        now: Duration,
        link: LinkId,
        sender: NodeTag,
        bytes: Vec<u8>,
        waiting: Waiting,
    ) {
        if self.pending.iter().any(|p| p.bytes == bytes) {
            return;
        }
        if self.pending.len() >= self.config.max_pending {
            // Keep operations of authors whose ops checked out here first: anyone can send
            // operations of unknown authors, and none can be checked before its key and
            // predecessor are known. Among equals keep what is nearest to decodable: after a
            // loss in a burst, the operations just past the gap are the ones the repair brings
            // next; those far beyond it will be sent again anyway.
            let rank = |w: &Waiting| match w {
                Waiting::Backlink { topic, author, seq } => (
                    !self.keys.is_verified(author),
                    seq.saturating_sub(self.height(topic, author)),
                ),
                Waiting::Key(_) => (true, 0),
            };
            let Some(farthest) =
                (0..self.pending.len()).max_by_key(|i| rank(&self.pending[*i].waiting))
            else {
                return;
            };
            if rank(&waiting) >= rank(&self.pending[farthest].waiting) {
                return;
            }
            self.pending.swap_remove(farthest);
        }
        self.pending.push(Pending {
            link,
            sender,
            bytes,
            since: now,
            waiting,
        });
    }

    fn on_hello(&mut self, now: Duration, link: LinkId, hello: &Hello) {
        for key in &hello.keys {
            self.keys.claim(*key);
        }
        let heard = |keys: &Vec<[u8; 32]>| keys.iter().all(|k| hello.keys.contains(k));
        let cancelled = self.links[link]
            .queue
            .cancel(|item| matches!(item, Item::Hello(keys) if heard(keys)));
        self.links[link].stats.cancelled += cancelled as u64;
        // Operations waiting for one of these keys can be decoded now.
        let tags: Vec<AuthorTag> = hello.keys.iter().map(AuthorTag::from_key).collect();
        let (ready, waiting): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|p| matches!(p.waiting, Waiting::Key(tag) if tags.contains(&tag)));
        self.pending = waiting;
        if !ready.is_empty() {
            self.links[link].key_want_gap = KEY_WANT_FIRST_GAP;
        }
        for pending in ready {
            self.on_op(now, pending.link, pending.sender, pending.bytes);
        }
    }

    fn on_key_want(&mut self, now: Duration, link: LinkId, tags: &[AuthorTag]) {
        // Keys told in a Hello here within `KEY_RETELL` are not told again: a replayed
        // KeyWant would otherwise buy a Hello from every hearer each time. (A key that went
        // out with an operation does not count: the KeyWant says that frame was lost.)
        let told = &mut self.links[link].keys_told;
        told.retain(|_, at| now < *at + KEY_RETELL);
        let keys: Vec<[u8; 32]> = tags
            .iter()
            .flat_map(|tag| self.keys.verified(*tag))
            .filter(|key| !told.contains_key(key))
            .take(crate::message::MAX_HELLO_KEYS)
            .collect();
        if !keys.is_empty() {
            let at = now + self.holdoff(link);
            self.links[link]
                .queue
                .push(Priority::Control, at, Item::Hello(keys));
        }
        // A neighbour asked for keys we wanted too: its answer will serve us.
        let queue = &mut self.links[link].queue;
        queue.absorb(|item| {
            if let Item::KeyWant(wanted) = item {
                wanted.retain(|tag| !tags.contains(tag));
            }
            false
        });
        let cancelled = queue.cancel(|item| matches!(item, Item::KeyWant(t) if t.is_empty()));
        self.links[link].stats.cancelled += cancelled as u64;
    }

    /// Asks the link's neighbours for the key of author `tag`: folded into the KeyWant
    /// already queued, else a new one, not before `key_want_next`. A tag that does not fit a
    /// full KeyWant is not asked for now; its operation waits, and asks again when it is
    /// heard again.
    fn want_key(&mut self, now: Duration, link: LinkId, tag: AuthorTag) {
        let holdoff = self.holdoff(link);
        let state = &mut self.links[link];
        let mut queued = false;
        state.queue.absorb(|item| match item {
            Item::KeyWant(tags) => {
                queued = true;
                if !tags.contains(&tag) && tags.len() < crate::message::MAX_HELLO_KEYS {
                    tags.push(tag);
                }
                true
            }
            _ => false,
        });
        if queued {
            return;
        }
        let at = (now + holdoff).max(state.key_want_next);
        state
            .queue
            .push(Priority::Control, at, Item::KeyWant(vec![tag]));
    }
}
