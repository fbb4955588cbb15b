//! The sans-IO sync engine: given what a node holds and what it hears, decide what to send,
//! when and on which link, within the airtime budget.
//!
//! The owner (the daemon's loop, the simulator's event queue) pushes events in and polls
//! decisions out; the engine never sleeps, reads a clock or touches a socket:
//!
//! ```text
//! engine.handle_frame(now, link, bytes, signal)   something was heard
//! engine.handle_local_op(now, topic, op)          an app or an iroh peer produced an op
//! engine.handle_timeout(now)                      the deadline from poll_timeout passed
//! engine.poll_transmit(now, link)                 the next frame to send on a link, if any
//! engine.handle_transmitted(now, link, sent)      that frame went out, or failed
//! engine.poll_timeout()                           when to call handle_timeout next
//! engine.poll_event()                             ops to import, frames rejected
//! ```
//!
//! Call order (the daemon and the simulator follow it):
//!
//! 1. At start, once per link: `add_link`, then, before anything is sent on it,
//!    `restore_airtime` with the sends kept on disk (the duty cycle holds across restarts)
//!    and `mark_heard` with the ids heard before (nothing is echoed after a restart).
//! 2. After each `handle_*` call: drain `poll_event` (operations to import, rejections),
//!    then call `poll_transmit` on every idle link until it gives `None`, then read
//!    `poll_timeout` again: any input may have queued frames or moved the deadline.
//! 3. After `poll_transmit` gave a frame on a link: send it, then call `handle_transmitted`
//!    for that link. Until then the link gives nothing more (a radio sends one frame at a
//!    time); its airtime is already charged.
//! 4. `now` never goes back between calls (timers and the airtime ledger rely on it): it is
//!    an [`EngineTime`], the owner's monotonic clock, never the wall clock. Inside, the
//!    engine reads it as time since the clock's origin.
//! 5. Links come and go at any time between calls (Reticulum peers): `add_link`,
//!    `reset_link` to hand one to another neighbour, `remove_link` for one without an airtime
//!    budget. A `LinkId` is valid until its link is removed; a call given a removed one panics.
//!
//! The protocol: summaries paced by Trickle, naming the logs that grew lately; on a digest
//! mismatch that those logs explain, the hearer Wants what it lacks from the summary's sender
//! and pushes what the sender lacks; on any other mismatch it sends its heights (Vector), and
//! neighbours push what it lacks and Want what they lack; answers wait a random hold-off and
//! are cancelled when a neighbour is overheard sending the same; fresh operations are pushed
//! once on every other link; out-of-order operations wait in a bounded reorder buffer while
//! the gap is wanted.

mod answers;
mod compare;
mod config;
mod links;
mod neighbour;
mod own_tag;
mod pending;
mod queue;
mod receive;
mod replay;
mod requests;
mod slots;
pub mod store;
mod time;
mod transmit;
pub mod trickle;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use lorabridge_hardware::{AirtimeLedger, SubBandUsage};
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::compact::CompactError;
use crate::fragment::{Reassembler, ReassemblyError};
use crate::frame::{FrameCodec, FrameError, RegionKey};
use crate::message::state_digest;
use crate::operation::RawOp;
use crate::recent::RecentIds;
use crate::tags::{NetworkTag, NodeTag};
pub use config::{Budget, EngineConfig, LinkConfig};
pub use links::LinkError;
pub use neighbour::{ACQUAINTANCE, LinkStats, Neighbour};
use pending::{GrownLogs, KeyBook, Pending};
pub use queue::Priority;
use queue::{Item, SendQueue};
pub use slots::LinkId;
use slots::Slots;
pub use store::{Lookup, MemoryStore, OpStore};
pub use time::EngineTime;
pub use trickle::{Trickle, TrickleConfig};

/// Why a frame or an operation heard was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Frame(FrameError),
    Op(CompactError),
    Fragment(ReassemblyError),
    /// A different operation at a seq already held: the author forked its log.
    Fork {
        author: [u8; 32],
        seq: u64,
    },
    /// A sealed frame heard before (or from an earlier start of its sender): a replay.
    Replayed,
}

/// What the owner must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new, verified operation arrived in order and was stored: import it into p2panda.
    Received {
        link: LinkId,
        topic: [u8; 32],
        author: [u8; 32],
        seq: u64,
        op: RawOp,
    },
    /// Something heard was refused.
    Rejected { link: LinkId, reason: Rejection },
    /// A neighbour sends with our node tag, so ours changed (see `own_tag`).
    Retagged { from: NodeTag, to: NodeTag },
}

/// Answer and relay hold-offs span at least this many full frames of airtime.
const HOLDOFF_FRAMES: u32 = 8;
/// Full frames of airtime without operations heard before our sends other than answers: a
/// sender leaves one frame's time between the frames of an answer (`LISTEN_AFTER_SEND`), so
/// two frames' time means it has finished.
const QUIET_FRAMES: u32 = 2;
/// The longest a link stays quiet in one go, in full frames of airtime: an answer of
/// `max_ops_per_answer` (32) operations with a listening gap after each. Beyond it the link
/// sends before it is quiet again, so a stranger sending junk operations cannot silence it.
const MAX_QUIET_FRAMES: u32 = 64;
/// A fresh operation shortens the Trickle interval to this many `imin`, instead of
/// resetting it to `imin`: the op itself is already being pushed and relayed, so summaries
/// compared while that wave passes only disagree and start redundant repairs; a real
/// inconsistency (a summary that disagrees) still resets to `imin`. In grid-25 this cut
/// summaries from 562 to 359 and frames from 1 839 to 1 583, at the same delivery.
const FRESH_INTERVAL_IMINS: u32 = 4;

/// Our KeyWants on a link (merged, up to `MAX_HELLO_KEYS` tags each) are spaced by a gap that
/// starts at `KEY_WANT_FIRST_GAP`, doubles with each KeyWant, and is at most `KEY_WANT_GAP`;
/// a Hello that lets a waiting operation decode sets it back. An honest node whose Hello
/// answer was lost asks again after 30 s; unkeyed junk, which no Hello answers, costs a
/// hearer at most 5 KeyWants in its first 10 minutes and 12 an hour after.
const KEY_WANT_FIRST_GAP: Duration = Duration::from_secs(30);
const KEY_WANT_GAP: Duration = Duration::from_secs(5 * 60);
/// A key told in a Hello on a link is not told there again for this long: a replayed KeyWant
/// then buys at most one telling of each key a minute from each hearer, while a neighbour
/// that lost our Hello (or did not hear it) gets the key at its next ask.
const KEY_RETELL: Duration = Duration::from_secs(60);

/// Operation ids remembered per link as heard there, and as relayed there. (The daemon
/// restores this many of the radio's heard ids at start.)
pub const MAX_RECENT_IDS: usize = 8192;
/// Neighbours remembered per link; the least recently heard stranger is forgotten first,
/// then the least recently heard neighbour.
const MAX_NEIGHBOURS: usize = 64;
/// Events waiting for the owner; the oldest is dropped past this (the owner should drain).
const MAX_EVENTS: usize = 4096;

struct Link {
    /// Largest frame the link carries.
    mtu: usize,
    /// The topics carried over this link (at most `MAX_SUMMARY_TOPICS`).
    topics: Vec<[u8; 32]>,
    /// A radio link's airtime (see [`LinkConfig::budget`]); `None` on a point-to-point link.
    airtime: Option<Airtime>,
    trickle: Trickle,
    /// When the link started: until `imin` later its neighbour table may still miss
    /// neighbours whose greeting was lost, so it relays as if they were there.
    started: Duration,
    queue: SendQueue,
    neighbours: Vec<Neighbour>,
    /// Operations heard on this link: never pushed back on it because of that hearing.
    heard: RecentIds,
    /// Operations queued as relays of what we heard on this link: sent with the author key
    /// in full, because a relay exists to reach nodes the sender did not, and those have not
    /// heard the key from us either (eliding it there cost a KeyWant and a Hello per missed
    /// key: in grid-25, 143 KeyWant and Hello frames before this rule, 17 after).
    relays: RecentIds,
    /// Authors whose keys we sent in full on this link, and when. Only our own sends count:
    /// a key heard from a neighbour reached that neighbour's neighbours, not ours.
    keys_shared: HashMap<[u8; 32], Duration>,
    /// When our next KeyWant may go on this link, and the gap after that one (see
    /// `KEY_WANT_GAP`).
    key_want_next: Duration,
    key_want_gap: Duration,
    /// Keys we sent in Hellos on this link within `KEY_RETELL`, and when: not told again
    /// before then. Bound: the verified keys (`MAX_KEYS`); older entries are dropped as
    /// KeyWants come.
    keys_told: HashMap<[u8; 32], Duration>,
    /// When our Vector for a topic was last queued.
    last_vector: HashMap<[u8; 32], Duration>,
    /// When a refused send may go.
    wake: Option<Duration>,
    /// A radio link sends nothing before this (see `LISTEN_AFTER_SEND`).
    listen_until: Duration,
    /// A radio link sends nothing that `Priority::yields` before this: a neighbour is
    /// sending operations (see `Engine::yield_to_sender`).
    quiet_until: Duration,
    /// When the current quiet began, and whether it reached `MAX_QUIET_FRAMES`: then the
    /// link is not quiet again before it has sent a frame.
    quiet_since: Duration,
    quiet_spent: bool,
    /// An answer on this link stopped at its limit with more to send: once the queue is
    /// empty, our summary asks for the next round.
    owes_more: bool,
    /// What answers may still draw from this link (radio links only).
    answers: answers::AnswerGuard,
    /// The frame handed out by `poll_transmit` and not yet reported by `handle_transmitted`.
    in_flight: Option<transmit::InFlight>,
    stats: LinkStats,
}

/// A radio link's airtime: what the link is charged for a frame, within which plan, and the
/// ledger of its sends. One `Option` of both, so that no link has a budget without a ledger.
struct Airtime {
    budget: Budget,
    ledger: AirtimeLedger,
}

impl Link {
    /// Asks to be polled again by `at`, keeping an earlier wake-up already asked for.
    fn wake_by(&mut self, at: Duration) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// The airtime of a full frame on a radio link: the unit of its hold-offs and quiets.
    /// `None` on a point-to-point link.
    fn frame_airtime(&self) -> Option<Duration> {
        let airtime = self.airtime.as_ref()?;
        Some(airtime.budget.on_air.time_on_air(self.mtu))
    }
}

/// The sync engine of one node. See the module docs.
pub struct Engine<S> {
    config: EngineConfig,
    me: NodeTag,
    codec: FrameCodec,
    store: S,
    links: Slots,
    keys: KeyBook,
    grown: GrownLogs,
    reassembler: Reassembler,
    pending: Vec<Pending>,
    events: VecDeque<Event>,
    rng: ChaCha12Rng,
    /// Frames sealed so far this start (the counter of their nonces).
    sealed: u64,
    replays: replay::ReplayWindow,
    own: own_tag::OwnFrames,
    /// When our tag last changed because a neighbour shared it.
    retagged: Option<Duration>,
    now: Duration,
}

impl<S: OpStore> Engine<S> {
    pub fn new(config: EngineConfig, store: S) -> Self {
        let network = NetworkTag::from_network_id(&config.network_id);
        let codec = FrameCodec::new(network, config.region_key.as_ref().map(RegionKey::new));
        Self {
            me: NodeTag::from_key(&config.node_key),
            codec,
            store,
            links: Slots::default(),
            keys: KeyBook::default(),
            grown: GrownLogs::default(),
            reassembler: Reassembler::new(config.reassembly),
            pending: Vec::new(),
            events: VecDeque::new(),
            rng: ChaCha12Rng::from_seed(config.seed),
            sealed: 0,
            replays: replay::ReplayWindow::default(),
            own: own_tag::OwnFrames::default(),
            retagged: None,
            now: Duration::ZERO,
            config,
        }
    }

    /// An operation produced here (an app's publish) or received from an iroh peer: if new,
    /// store it and push it once on every link that carries its topic and has not heard it.
    pub fn handle_local_op(
        &mut self,
        now: EngineTime,
        topic: &[u8; 32],
        op: RawOp,
    ) -> Result<(), CompactError> {
        let now = now.since_start();
        self.advance(now);
        let header = crate::header::check(&op.header).map_err(|_| CompactError::BadSignature)?;
        let (author, seq) = (header.author, header.seq);
        let id = op.id();
        // Already held: it came from one of our links (and was offered on the others then),
        // or it is an echo of our own op, e.g. an iroh peer handing back a radio import.
        if seq < self.height(topic, &author) {
            return Ok(());
        }
        self.store_op(now, topic, author, seq, op);
        self.offer_fresh(now, topic, author, seq, id, None);
        Ok(())
    }

    /// Advances timers to `now`: queues summaries that are due, drops what timed out.
    pub fn handle_timeout(&mut self, now: EngineTime) {
        let now = now.since_start();
        self.advance(now);
        let ids: Vec<LinkId> = self.links.ids().collect();
        for id in ids {
            let random = self.random();
            let link = &mut self.links[id];
            if link.trickle.poll(now, random) {
                link.queue.push(Priority::Summary, now, Item::Summary);
            }
            if link.wake.is_some_and(|w| w <= now) {
                link.wake = None;
            }
        }
        self.reassembler.expire(now);
        let timeout = self.config.pending_timeout;
        self.pending
            .retain(|p| now.saturating_sub(p.since) < timeout);
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<EngineTime> {
        let links = self.links.iter().flat_map(|(_, l)| {
            [
                Some(l.trickle.deadline()),
                l.queue.next_ready(self.now),
                l.wake,
            ]
        });
        let pending = self
            .pending
            .iter()
            .map(|p| Some(p.since + self.config.pending_timeout));
        links
            .chain(pending)
            .chain([self.reassembler.next_deadline()])
            .flatten()
            .min()
            .map(EngineTime::from_start)
    }

    /// The next thing the owner must act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, for its owner to hand in what it fetched from disk.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn stats(&self, link: LinkId) -> LinkStats {
        self.links[link].stats
    }

    pub fn neighbours(&self, link: LinkId) -> &[Neighbour] {
        &self.links[link].neighbours
    }

    /// Frames waiting to be sent on a link.
    pub fn queue_depth(&self, link: LinkId) -> usize {
        self.links[link].queue.len()
    }

    /// How much of each sub-band's airtime the link used in the window ending at `now`, if it
    /// has a budget (for status pages).
    pub fn airtime_used(&self, link: LinkId, now: EngineTime) -> Option<Vec<SubBandUsage>> {
        let airtime = self.links[link].airtime.as_ref()?;
        Some(airtime.ledger.summary(now.since_start()))
    }

    fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A random hold-off for an answer or relay on `link`: below `answer_holdoff`, or below
    /// `HOLDOFF_FRAMES` full frames of airtime on a slow radio link, whichever is longer.
    /// Suppression works only if a neighbour's copy can be heard before ours goes, so the
    /// window must span several frames: 3 s is 7 SF7 frames but only 2.4 SF9 frames, and in
    /// grid-25 (SF9) a 10 s window cut frames by a third against 3 s.
    fn holdoff(&mut self, link: LinkId) -> Duration {
        let Some(frame) = self.links[link].frame_airtime() else {
            // Point to point: nobody overhears, nothing to wait for.
            return Duration::ZERO;
        };
        let frames = frame * HOLDOFF_FRAMES;
        let max = self.config.answer_holdoff.max(frames).as_nanos().max(1) as u64;
        Duration::from_nanos(self.random() % max)
    }

    /// Operations pushed in one answer on `link`: `max_ops_per_answer` on a radio channel,
    /// whose airtime is scarce; on a point-to-point link as many as its queue holds.
    fn answer_limit(&self, link: LinkId) -> usize {
        match self.links[link].airtime {
            Some(_) => self.config.max_ops_per_answer,
            None => queue::MAX_ENTRIES,
        }
    }

    /// (operation count, digest) of what we hold in `topic`: what a summary says.
    fn topic_state(&self, topic: &[u8; 32]) -> (u32, [u8; 4]) {
        let heights = self.store.heights(topic);
        let ops = heights.iter().map(|(_, h)| *h).sum::<u64>();
        (
            u32::try_from(ops).unwrap_or(u32::MAX),
            state_digest(heights),
        )
    }

    /// How long a grown log stays named in our summaries: one fresh-op Trickle interval, which
    /// is about the longest gap between our summaries while operations flow, so what grew is
    /// usually named in the next summary or two. (Twice as long named the same logs in more
    /// idle summaries for no fewer frames in grid-25; half as long cost 4 % more frames.)
    fn recent_window(&self) -> Duration {
        self.config.trickle.imin * FRESH_INTERVAL_IMINS
    }

    /// Stores an operation that was checked (or made here), and notes its log as grown.
    fn store_op(&mut self, now: Duration, topic: &[u8; 32], author: [u8; 32], seq: u64, op: RawOp) {
        self.store.insert(topic, &author, seq, op);
        self.keys.add(author);
        self.grown.grew(*topic, author, now);
    }

    fn height(&self, topic: &[u8; 32], author: &[u8; 32]) -> u64 {
        self.store
            .heights(topic)
            .into_iter()
            .find(|(a, _)| a == author)
            .map_or(0, |(_, h)| h)
    }

    /// A new operation: push it once on every link carrying its topic that has not heard it
    /// (but not back on `heard_from`'s link unless someone besides its sender may lack it),
    /// and restart their summaries.
    fn offer_fresh(
        &mut self,
        now: Duration,
        topic: &[u8; 32],
        author: [u8; 32],
        seq: u64,
        id: [u8; 32],
        heard_from: Option<(LinkId, NodeTag)>,
    ) {
        let random = self.random();
        // One hold-off per link, in the order `iter_mut` gives them.
        let links: Vec<LinkId> = self.links.ids().collect();
        let relay_at: Vec<Duration> = links
            .into_iter()
            .map(|link| now + self.holdoff(link))
            .collect();
        let (heard_on, sender) = (heard_from.map(|(l, _)| l), heard_from.map(|(_, s)| s));
        let fresh_interval = self.config.trickle.imin * FRESH_INTERVAL_IMINS;
        let imin = self.config.trickle.imin;
        for ((link_id, link), relay_at) in self.links.iter_mut().zip(relay_at) {
            if !link.topics.contains(topic) {
                continue;
            }
            link.trickle.shorten(now, fresh_interval, random);
            let item = Item::Op {
                topic: *topic,
                author,
                seq,
            };
            if heard_on == Some(link_id) {
                // A radio link is a broadcast medium: neighbours of ours that did not hear
                // the sender get the op only if someone relays it. Relay once, after a
                // hold-off that lets a neighbour's relay, overheard, cancel ours; and only
                // if someone other than the sender is in range (else it is an echo). A link
                // that has just started may not have heard everyone yet: the greetings of a
                // mesh that starts at once collide where two senders cannot hear each other,
                // and Trickle repeats a lost one only 45-90 s later. Its relay costs one
                // frame per op in that first interval, and saved the first op of three fresh
                // bridges in a line about 45 s.
                let others = link.neighbours.iter().any(|n| Some(n.tag) != sender)
                    || now < link.started + imin;
                if link.airtime.is_some() && others {
                    link.relays.insert(id);
                    link.queue.push(Priority::Fresh, relay_at, item);
                }
            } else if !link.heard.contains(&id) {
                link.queue.push(Priority::Fresh, now, item);
            }
        }
    }
}
