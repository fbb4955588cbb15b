//! What the engine sends, within each link's airtime budget.

use std::time::Duration;

use heapless::Vec as BoundedVec;

use super::queue::{Entry, Item, Priority};
use super::{Airtime, Engine, EngineTime, LinkId, Lookup, OpStore};
use crate::compact;
use crate::fragment::split;
use crate::message::{
    Height, MAX_SUMMARY_RECENT, MAX_VECTOR_HEIGHTS, MAX_WANT_RANGES, Message, RecentHeight,
    Summary, TopicSummary, Vector, Want, WantRange,
};
use crate::tags::{AuthorTag, OpTag, TopicTag};

/// After a frame on a radio link, the link listens for this many times the frame's airtime
/// before it sends again: the channel stays at most half ours.
const LISTEN_AFTER_SEND: f64 = 1.0;

/// Vector pages sent for one topic in one round; authors beyond are offered in later rounds.
const MAX_VECTOR_PAGES: usize = 8;

impl<S: OpStore> Engine<S> {
    /// The next frame to send on `link` now, if any may go: the best queued entry that the
    /// link's budget allows (keeping a reserve for operations: summaries back off first).
    /// The engine has charged its airtime to the ledger; the owner transmits it and reports the
    /// outcome with [`Engine::handle_transmitted`]. Until then the link sends nothing else:
    /// a radio is half-duplex and sends one frame at a time.
    pub fn poll_transmit(&mut self, now: EngineTime, link: LinkId) -> Option<Vec<u8>> {
        let now = now.since_start();
        self.advance(now);
        let state = &mut self.links[link];
        if state.in_flight.is_some() {
            return None;
        }
        if now < state.listen_until {
            let until = state.listen_until;
            state.wake_by(until);
            return None;
        }
        // Entries refused by the budget at a reserve, and by the answers' share: the rest of
        // the same kind would be refused too, so they are not even built.
        let mut refused_reserve = f64::INFINITY;
        let mut answers_capped = false;
        let ready = self.links[link].queue.ready(now);
        let mut candidates = ready.into_iter();
        // Logs with an operation being read from disk: their later operations wait for it,
        // to keep the log order of `SendQueue::ready`.
        let mut loading: Vec<([u8; 32], [u8; 32])> = Vec::new();
        loop {
            let Some(order) = candidates.next() else {
                let state = &mut self.links[link];
                if state.owes_more && state.queue.len() == 0 {
                    // An answer stopped at its limit and has all gone out: our summary asks
                    // the neighbour for its next Vector or Want, so the repair goes on now
                    // rather than at the next Trickle interval.
                    state.owes_more = false;
                    self.queue_greeting(now, link);
                    candidates = self.links[link].queue.ready(now).into_iter();
                    continue;
                }
                return None;
            };
            let Some(entry) = self.links[link].queue.get(order).cloned() else {
                continue;
            };
            if entry.priority.reserve() >= refused_reserve
                || (answers_capped && entry.priority == Priority::Wanted)
            {
                continue;
            }
            let state = &mut self.links[link];
            if entry.priority.yields() && now < state.quiet_until {
                let until = state.quiet_until;
                state.wake_by(until);
                continue;
            }
            let log = entry
                .item
                .place()
                .map(|(topic, author, _)| (*topic, *author));
            if log.is_some_and(|log| loading.contains(&log)) {
                continue;
            }
            let (mut messages, id) = match self.messages_for(link, &entry.item) {
                Built::Ready(messages, id) => (messages, id),
                // Its body is being read from disk: the next entry meanwhile.
                Built::Loading => {
                    loading.extend(log);
                    continue;
                }
                Built::Moot => {
                    self.links[link].queue.take(order);
                    continue;
                }
            };
            let nonce = self.nonce();
            let mtu = self.links[link].mtu;
            let Ok(frame) = self.codec.encode(self.me, &messages[0], nonce, mtu) else {
                self.links[link].queue.take(order);
                continue;
            };
            match self.charge(now, link, frame.len(), entry.priority) {
                Charge::Sent => {}
                Charge::Busy => return None,
                Charge::AnswersCapped => {
                    answers_capped = true;
                    continue;
                }
                Charge::Refused => {
                    if entry.priority == Priority::Summary {
                        // Trickle offers the summary again next interval.
                        self.links[link].queue.take(order);
                    }
                    refused_reserve = refused_reserve.min(entry.priority.reserve());
                    continue;
                }
            }
            let entry = self.links[link]
                .queue
                .take(order)
                .expect("the entry just built");
            if let Some(Airtime { budget, .. }) = &self.links[link].airtime {
                // A radio is deaf while it sends: leave the channel to the neighbours for a
                // while after each frame, so that their Wants get through a burst of ours.
                let airtime = budget.on_air.time_on_air(frame.len());
                self.links[link].listen_until = now + airtime.mul_f64(1.0 + LISTEN_AFTER_SEND);
            }
            self.own.sent(&frame);
            let first = messages.remove(0);
            self.links[link].in_flight = Some(InFlight {
                entry,
                first,
                rest: messages,
                id,
                len: frame.len(),
            });
            return Some(frame);
        }
    }

    /// The frame from the last `poll_transmit` on `link` went out (`sent`), or the transport
    /// failed to send it. A sent frame is counted and its operation marked as heard on the
    /// link, and the rest of its fragments are queued; a frame that failed is not, and its
    /// entry goes back in the queue. (Its airtime stays charged: the module may have sent it
    /// before it failed, and the duty cycle must hold either way.)
    pub fn handle_transmitted(&mut self, now: EngineTime, link: LinkId, sent: bool) {
        let now = now.since_start();
        self.advance(now);
        let Some(flight) = self.links[link].in_flight.take() else {
            return;
        };
        let InFlight {
            entry,
            first,
            rest,
            id,
            len,
        } = flight;
        if !sent {
            let state = &mut self.links[link];
            state.stats.send_failures += 1;
            state.queue.push(entry.priority, now, entry.item);
            return;
        }
        self.note_sent(now, link, &entry.item, &first, id, len);
        if let (Priority::Wanted, Item::Op { topic, author, seq }) = (entry.priority, &entry.item) {
            self.links[link].answers.sent(now, (*topic, *author, *seq));
        }
        if let Some(id) = id {
            for message in rest {
                let continuation = Item::Continuation {
                    op: OpTag::from_id(&id),
                    message,
                };
                self.links[link]
                    .queue
                    .push(Priority::Continuation, now, continuation);
            }
        }
    }

    /// The message(s) for a queue entry, built from the current state, and the id of the
    /// operation they carry.
    fn messages_for(&mut self, link: LinkId, item: &Item) -> Built {
        let single = |m: Message| Built::Ready(vec![m], None);
        match item {
            Item::Summary => single(Message::Summary(self.summary(link))),
            Item::Vector(vector) => single(Message::Vector(vector.clone())),
            Item::Want(want) => match self.still_wanted(link, want) {
                Some(want) => single(Message::Want(want)),
                None => Built::Moot,
            },
            Item::KeyWant(tags) => single(Message::KeyWant(tags.iter().copied().collect())),
            Item::Hello(keys) => single(Message::Hello(crate::message::Hello {
                keys: keys.iter().copied().collect(),
            })),
            Item::Continuation { message, .. } => single(message.clone()),
            Item::Op { topic, author, seq } => {
                let op = match self.store.get(topic, author, *seq) {
                    Lookup::Held(op) => op,
                    Lookup::Loading => return Built::Loading,
                    Lookup::Absent => return Built::Moot,
                };
                let id = op.id();
                let state = &self.links[link];
                let elide = !state.relays.contains(&id)
                    && state
                        .keys_shared
                        .get(author)
                        .is_some_and(|t| self.now < *t + self.config.key_memory);
                let Ok(bytes) = compact::encode(&op, topic, elide) else {
                    return Built::Moot;
                };
                match split(
                    &bytes,
                    OpTag::from_id(&id),
                    state.mtu - self.codec.overhead(),
                ) {
                    Ok(messages) => Built::Ready(messages, Some(id)),
                    Err(_) => Built::Moot,
                }
            }
        }
    }

    /// Our summary for `link`: every topic's state, and the logs that grew within the
    /// recent window, newest first, as many as fit the link's frames.
    fn summary(&self, link: LinkId) -> Summary {
        let state = &self.links[link];
        let topics = state.topics.iter().map(|topic| {
            let (ops, digest) = self.topic_state(topic);
            TopicSummary {
                topic: TopicTag::from_topic(topic),
                ops,
                digest,
            }
        });
        let since = self.now.saturating_sub(self.recent_window());
        let recent = self
            .grown
            .since(since)
            .filter(|g| state.topics.contains(&g.topic))
            .take(MAX_SUMMARY_RECENT)
            .map(|g| RecentHeight {
                topic: TopicTag::from_topic(&g.topic),
                author: AuthorTag::from_key(&g.author),
                ops: self.height(&g.topic, &g.author),
            });
        let mut summary = Summary {
            topics: topics.collect(),
            recent: recent.collect(),
        };
        // The topics always fit (see `MAX_SUMMARY_TOPICS`); the oldest named logs give way.
        let room = state.mtu - self.codec.overhead();
        while encoded_len(&Message::Summary(summary.clone())) > room {
            if summary.recent.pop().is_none() {
                break;
            }
        }
        summary
    }

    /// `want` less what arrived since it was queued; `None` if nothing is left to ask.
    fn still_wanted(&self, link: LinkId, want: &Want) -> Option<Want> {
        let held: Vec<([u8; 32], u64)> = self
            .link_topics(link, want.topic)
            .iter()
            .flat_map(|topic| self.store.heights(topic))
            .collect();
        let ranges: BoundedVec<WantRange, MAX_WANT_RANGES> = want
            .ranges
            .iter()
            .filter_map(|range| {
                // With colliding tags, assume the lower height.
                let height = held
                    .iter()
                    .filter(|(a, _)| AuthorTag::from_key(a) == range.author)
                    .map(|(_, h)| *h)
                    .min()
                    .unwrap_or(0);
                let from_seq = range.from_seq.max(height);
                (from_seq <= range.to_seq).then_some(WantRange { from_seq, ..*range })
            })
            .collect();
        (!ranges.is_empty()).then(|| Want {
            ranges,
            ..want.clone()
        })
    }

    /// Our heights for `topic` as Vector pages over the whole author-tag range. Authors with
    /// one tag stay on one page, so every page's range is exact.
    pub(super) fn vector_pages(&self, topic: &[u8; 32]) -> Vec<Vector> {
        let mut heights: Vec<Height> = self
            .store
            .heights(topic)
            .into_iter()
            .map(|(a, ops)| Height {
                author: AuthorTag::from_key(&a),
                ops,
            })
            .collect();
        heights.sort_by_key(|h| h.author);
        let mut pages = Vec::new();
        let mut from = AuthorTag([0, 0]);
        let mut rest = &heights[..];
        while pages.len() < MAX_VECTOR_PAGES {
            let mut take = rest.len().min(MAX_VECTOR_HEIGHTS);
            if take < rest.len() {
                let boundary = rest[take].author;
                while take > 1 && rest[take - 1].author == boundary {
                    take -= 1;
                }
            }
            let (page, tail) = rest.split_at(take);
            let to = match tail.first() {
                Some(next) => AuthorTag(
                    u16::from_be_bytes(next.author.0)
                        .saturating_sub(1)
                        .to_be_bytes(),
                ),
                None => AuthorTag([0xff, 0xff]),
            };
            let heights: BoundedVec<Height, MAX_VECTOR_HEIGHTS> = page.iter().copied().collect();
            pages.push(Vector {
                topic: TopicTag::from_topic(topic),
                from,
                to,
                heights,
            });
            match tail.first() {
                Some(next) => from = next.author,
                None => break,
            }
            rest = tail;
        }
        pages
    }

    /// The next sealed frame's nonce (see `frame::Sequence`).
    fn nonce(&mut self) -> [u8; 12] {
        let sequence = crate::frame::Sequence {
            epoch: self.config.epoch,
            counter: self.sealed,
        };
        self.sealed += 1;
        sequence.nonce(self.me)
    }

    /// Charges a frame to the link's ledger, keeping the priority's reserve.
    fn charge(&mut self, now: Duration, link: LinkId, len: usize, priority: Priority) -> Charge {
        let state = &mut self.links[link];
        let Some(Airtime { budget, ledger }) = &mut state.airtime else {
            return Charge::Sent;
        };
        let m = &budget.on_air.modulation;
        let airtime = budget.on_air.time_on_air(len);
        let reserve = budget
            .plan
            .sub_band(m.frequency_hz, m.bandwidth_hz)
            .and_then(|band| band.duty_budget())
            .map_or(Duration::ZERO, |b| b.mul_f64(priority.reserve()));
        if priority == Priority::Wanted {
            let cap = budget
                .plan
                .sub_band(m.frequency_hz, m.bandwidth_hz)
                .and_then(|band| band.duty_budget())
                .map(|b| b.mul_f64(super::answers::ANSWER_SHARE));
            if let Some(cap) = cap
                && let Err(at) = state.answers.charge(now, airtime, cap)
            {
                state.stats.budget_refusals += 1;
                state.wake_by(at);
                return Charge::AnswersCapped;
            }
        }
        // Asking for airtime plus reserve gives the exact instant the reserve is also met.
        match ledger.check(now, m.frequency_hz, m.bandwidth_hz, airtime + reserve) {
            Ok(()) => {
                if ledger
                    .record(now, m.frequency_hz, m.bandwidth_hz, airtime)
                    .is_err()
                {
                    return Charge::Refused;
                }
                state.stats.airtime_sent += airtime;
                Charge::Sent
            }
            Err(refusal) => {
                let busy = matches!(refusal.reason, lorabridge_hardware::RefusalReason::OnAir);
                state.stats.budget_refusals += u64::from(!busy);
                if let Some(at) = refusal.earliest {
                    state.wake_by(at);
                }
                if busy { Charge::Busy } else { Charge::Refused }
            }
        }
    }

    fn note_sent(
        &mut self,
        now: Duration,
        link: LinkId,
        item: &Item,
        message: &Message,
        id: Option<[u8; 32]>,
        len: usize,
    ) {
        let state = &mut self.links[link];
        state.quiet_spent = false;
        state.stats.frames_sent += 1;
        state.stats.bytes_sent += len as u64;
        match message {
            Message::Summary(_) => state.stats.summaries_sent += 1,
            Message::Vector(_) => state.stats.vectors_sent += 1,
            Message::Want(_) => state.stats.wants_sent += 1,
            Message::Hello(hello) => {
                state.stats.hellos_sent += 1;
                for key in &hello.keys {
                    state.keys_shared.insert(*key, now);
                    state.keys_told.insert(*key, now);
                }
            }
            Message::KeyWant(_) => {
                state.stats.key_wants_sent += 1;
                state.key_want_next = now + state.key_want_gap;
                state.key_want_gap = (state.key_want_gap * 2).min(super::KEY_WANT_GAP);
            }
            Message::Op(_) => state.stats.ops_sent += 1,
            Message::Fragment(f) if f.index == 0 => state.stats.ops_sent += 1,
            Message::Fragment(_) => {}
        }
        if matches!(message, Message::Fragment(_)) {
            state.stats.fragments_sent += 1;
        }
        if let (Item::Op { author, .. }, Some(id)) = (item, id) {
            state.heard.insert(id);
            state.keys_shared.entry(*author).or_insert(now);
        }
    }
}

/// Bytes `message` takes in a frame, before the framing.
fn encoded_len(message: &Message) -> usize {
    postcard::to_allocvec(message).map_or(usize::MAX, |bytes| bytes.len())
}

/// What a queue entry turns into when its turn comes.
enum Built {
    /// The messages to send (fragments of one operation, or one message), and the id of the
    /// operation they carry.
    Ready(Vec<Message>, Option<[u8; 32]>),
    /// The operation is being fetched from disk: try the next entry.
    Loading,
    /// Nothing left to send (answered meanwhile, no longer held, too large).
    Moot,
}

/// A frame handed to the owner and not yet reported sent or failed.
#[derive(Clone, Debug)]
pub(super) struct InFlight {
    entry: Entry,
    first: Message,
    /// The operation's other fragments, queued once the first is sent.
    rest: Vec<Message>,
    id: Option<[u8; 32]>,
    len: usize,
}

enum Charge {
    Sent,
    /// The transmitter is still on air.
    Busy,
    /// The budget (or its reserve) does not allow this frame now.
    Refused,
    /// Answers have used their share of the hour's budget.
    AnswersCapped,
}
