//! Setting up the engine's links: adding one, handing one to another neighbour, removing one,
//! greeting on it, changing the topics it carries, and restoring what it sent and heard before
//! a restart (steps 1 and 5 of the call order in the engine's docs). Apart from the top module,
//! which keeps the engine's state and the calls of its event loop (`handle_*`, `poll_*`).

use std::collections::HashMap;
use std::time::Duration;

use lorabridge_hardware::AirtimeLedger;

use super::answers;
use super::queue::{Item, Priority, SendQueue};
use super::{
    Airtime, Engine, EngineTime, KEY_WANT_FIRST_GAP, Link, LinkConfig, LinkId, LinkStats,
    MAX_RECENT_IDS, OpStore, Trickle,
};
use crate::message::MAX_SUMMARY_TOPICS;
use crate::recent::RecentIds;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("a link carries at most {MAX_SUMMARY_TOPICS} topics (one summary frame), not {0}")]
    TooManyTopics(usize),
    #[error("mtu {mtu} leaves no room for fragments after {overhead} bytes of framing")]
    MtuTooSmall { mtu: usize, overhead: usize },
    /// Its ledger would go with it, and the duty cycle must hold: reset it instead.
    #[error("a link with an airtime budget is never removed (its ledger keeps the duty cycle)")]
    HasAirtime,
}

impl<S: OpStore> Engine<S> {
    /// Adds a link; its Trickle timer starts at `now`.
    pub fn add_link(&mut self, now: EngineTime, config: LinkConfig) -> Result<LinkId, LinkError> {
        let now = now.since_start();
        let state = self.new_link(now, config)?;
        let link = self.links.insert(state);
        self.queue_greeting(now, link);
        Ok(link)
    }

    /// Gives `link` to another neighbour (a Reticulum peer that takes the place of one not
    /// heard for longest): all it learned of the old one (queue, neighbours, what they heard,
    /// answers) is forgotten, as on a new link. Its airtime ledger and its counters stay, so
    /// the duty cycle holds across the change and totals only grow.
    pub fn reset_link(
        &mut self,
        now: EngineTime,
        link: LinkId,
        config: LinkConfig,
    ) -> Result<(), LinkError> {
        let now = now.since_start();
        let mut state = self.new_link(now, config)?;
        let old = &mut self.links[link];
        if let (Some(new), Some(old)) = (&mut state.airtime, &mut old.airtime) {
            std::mem::swap(&mut new.ledger, &mut old.ledger);
        }
        // The counters are the slot's, so that totals over links only grow.
        state.stats = old.stats;
        *old = state;
        self.queue_greeting(now, link);
        Ok(())
    }

    /// Removes `link` (a Reticulum peer whose path expired): its queue, its neighbours and
    /// what they heard are forgotten, and operations heard on it that still wait for a gap or
    /// a key are dropped (they are offered again if the peer comes back). Returns its
    /// counters, so that the owner's totals can keep growing. `link` is no longer valid after.
    pub fn remove_link(&mut self, link: LinkId) -> Result<LinkStats, LinkError> {
        if self.links[link].airtime.is_some() {
            return Err(LinkError::HasAirtime);
        }
        self.pending.retain(|p| p.link != link);
        let removed = self.links.remove(link).expect("indexed above");
        Ok(removed.stats)
    }

    /// A link's state as it starts, its Trickle timer at `now`.
    fn new_link(&mut self, now: Duration, config: LinkConfig) -> Result<Link, LinkError> {
        let LinkConfig {
            mtu,
            budget,
            topics,
        } = config;
        if topics.len() > MAX_SUMMARY_TOPICS {
            return Err(LinkError::TooManyTopics(topics.len()));
        }
        if mtu < self.codec.overhead() + 16 {
            return Err(LinkError::MtuTooSmall {
                mtu,
                overhead: self.codec.overhead(),
            });
        }
        self.learn_keys(&topics);
        let random = self.random();
        Ok(Link {
            mtu,
            topics,
            airtime: budget.map(|budget| Airtime {
                ledger: AirtimeLedger::new(&budget.plan),
                budget,
            }),
            trickle: Trickle::new(self.config.trickle, now, random),
            started: now,
            queue: SendQueue::default(),
            neighbours: Vec::new(),
            heard: RecentIds::new(MAX_RECENT_IDS),
            relays: RecentIds::new(MAX_RECENT_IDS),
            keys_shared: HashMap::new(),
            key_want_next: Duration::ZERO,
            key_want_gap: KEY_WANT_FIRST_GAP,
            keys_told: HashMap::new(),
            last_vector: HashMap::new(),
            wake: None,
            listen_until: Duration::ZERO,
            quiet_until: Duration::ZERO,
            quiet_since: Duration::ZERO,
            quiet_spent: false,
            owes_more: false,
            answers: answers::AnswerGuard::default(),
            in_flight: None,
            stats: LinkStats::default(),
        })
    }

    /// Sends our summary on `link` soon, outside Trickle's schedule: when the link is new
    /// (neighbours learn at once that we are here and what we hold, so relays and catch-up
    /// start within seconds instead of half a Trickle interval), when a peer came back, and
    /// when a neighbour's summary shows it lacks what we hold.
    pub fn greet(&mut self, now: EngineTime, link: LinkId) {
        self.queue_greeting(now.since_start(), link);
    }

    /// `greet` for the engine's own calls, which read its clock as time since the start.
    pub(super) fn queue_greeting(&mut self, now: Duration, link: LinkId) {
        let at = now + self.holdoff(link);
        // A summary outside Trickle's schedule serves a repair or a start: it keeps the
        // smaller reserve of control frames, not the one of routine summaries.
        self.links[link]
            .queue
            .push(Priority::Control, at, Item::Summary);
    }

    /// Changes the topics `link` carries (a Reticulum peer re-announced with other topics).
    /// Trickle restarts at its shortest interval, so the neighbour soon learns our state of
    /// the new ones.
    pub fn set_link_topics(
        &mut self,
        now: EngineTime,
        link: LinkId,
        topics: Vec<[u8; 32]>,
    ) -> Result<(), LinkError> {
        let now = now.since_start();
        if topics.len() > MAX_SUMMARY_TOPICS {
            return Err(LinkError::TooManyTopics(topics.len()));
        }
        self.learn_keys(&topics);
        let random = self.random();
        let state = &mut self.links[link];
        state.topics = topics;
        state.trickle.reset(now, random);
        Ok(())
    }

    /// Authors of the operations held in `topics`, so compact operations naming them by tag
    /// decode.
    fn learn_keys(&mut self, topics: &[[u8; 32]]) {
        for topic in topics {
            for (author, _) in self.store.heights(topic) {
                self.keys.add(author);
            }
        }
    }

    /// Charges `link`'s ledger with transmissions made before a restart, (start, airtime)
    /// oldest first, in the engine's time: the duty cycle holds across restarts.
    pub fn restore_airtime(
        &mut self,
        link: LinkId,
        sends: impl IntoIterator<Item = (EngineTime, Duration)>,
    ) {
        let state = &mut self.links[link];
        let Some(Airtime { budget, ledger }) = &mut state.airtime else {
            return;
        };
        let m = &budget.on_air.modulation;
        for (start, airtime) in sends {
            ledger.restore(start.since_start(), m.frequency_hz, m.bandwidth_hz, airtime);
        }
    }

    /// Marks an operation as already heard on a link (the daemon restores this from disk so
    /// nothing is echoed after a restart).
    pub fn mark_heard(&mut self, link: LinkId, id: [u8; 32]) {
        self.links[link].heard.insert(id);
    }
}
