//! Glue between Reticulum peers and the sync engine: one engine link per peer bridge.
//!
//! Reticulum delivers a SINGLE packet to one destination, so unlike a LoRa channel a frame
//! sent to one peer is not overheard by the others. One link per peer tells the engine the
//! truth: what peer A sent was heard on A's link only, so the engine forwards it to B. (One
//! shared link for all peers would make the engine believe B heard what A said.)

use std::collections::HashMap;

use lorabridge_proto::engine::{
    Engine, EngineTime, LinkConfig, LinkError, LinkId, LinkStats, OpStore,
};
use lorabridge_proto::tags::TopicTag;
use lorabridge_reticulum::endpoint::MAX_FRAME;
use lorabridge_reticulum::packet::Hash16;

/// Maps peers to engine links. Bounded by `max_links`: when a new peer announces and every
/// link is taken, a peer that has only announced gives up its link (the one heard from
/// longest ago), and only when every peer has sent frames does the one whose last frame is
/// oldest; the engine resets the link for the newcomer. Announcing costs nothing but a fresh
/// key, while a frame proves its sender (see [`lorabridge_reticulum::sender`]), so identities announced in
/// bulk take links from each other and not from peers that talk. An honest peer pushed out
/// before its first frame gets a link back at its next announce; each change of hands costs
/// a summary, never a lost operation. A peer whose path expired loses its link (the engine
/// would otherwise keep building frames that cannot go).
#[derive(Debug)]
pub struct PeerLinks {
    /// Each peer's link, the topics it carries, and when it was last heard from.
    by_peer: HashMap<Hash16, Peer>,
    max_links: usize,
    /// The counters of the links removed, so that totals over all links only grow.
    retired: LinkStats,
}

#[derive(Debug)]
struct Peer {
    link: LinkId,
    topics: Vec<[u8; 32]>,
    /// Its last announce or frame.
    last_heard: EngineTime,
    /// Its last frame.
    last_frame: Option<EngineTime>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerLinkError {
    #[error("the peer carries none of our topics")]
    NoCommonTopic,
    #[error(transparent)]
    Link(#[from] LinkError),
}

impl PeerLinks {
    pub fn new(max_links: usize) -> Self {
        Self {
            by_peer: HashMap::new(),
            max_links,
            retired: LinkStats::default(),
        }
    }

    /// The link for a peer that announced `peer_topics`, added to the engine on first sight
    /// with the topics we carry (`our_topics`) that the peer announced too. When a known peer
    /// announces other topics (its steward changed its regions), its link follows.
    pub fn on_peer<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        now: EngineTime,
        peer: Hash16,
        peer_topics: &[TopicTag],
        our_topics: &[[u8; 32]],
    ) -> Result<LinkId, PeerLinkError> {
        let topics: Vec<[u8; 32]> = our_topics
            .iter()
            .filter(|t| peer_topics.contains(&TopicTag::from_topic(t)))
            .copied()
            .collect();
        if let Some(known) = self.by_peer.get_mut(&peer) {
            known.last_heard = now;
            if known.topics != topics {
                engine.set_link_topics(now, known.link, topics.clone())?;
                known.topics = topics;
            }
            // It announced again: it may have restarted behind us, so tell it where we are.
            engine.greet(now, known.link);
            return Ok(known.link);
        }
        if topics.is_empty() {
            return Err(PeerLinkError::NoCommonTopic);
        }
        let config = LinkConfig {
            mtu: MAX_FRAME,
            budget: None,
            topics: topics.clone(),
        };
        let link = if self.by_peer.len() < self.max_links {
            engine.add_link(now, config)?
        } else {
            let quietest = *self
                .by_peer
                .iter()
                .min_by_key(|(_, p)| (p.last_frame.is_some(), p.last_frame, p.last_heard))
                .map(|(peer, _)| peer)
                .expect("a full table has peers");
            let link = self.by_peer[&quietest].link;
            engine.reset_link(now, link, config)?;
            self.by_peer.remove(&quietest);
            link
        };
        self.by_peer.insert(
            peer,
            Peer {
                link,
                topics,
                last_heard: now,
                last_frame: None,
            },
        );
        Ok(link)
    }

    /// A frame from `peer` arrived: its link, if it has one, and it counts as heard now.
    pub fn heard(&mut self, now: EngineTime, peer: &Hash16) -> Option<LinkId> {
        let known = self.by_peer.get_mut(peer)?;
        known.last_heard = now;
        known.last_frame = Some(now);
        Some(known.link)
    }

    /// `peer`'s path expired: its link is removed. It gets a new one at its next announce.
    pub fn expired<S: OpStore>(&mut self, engine: &mut Engine<S>, peer: &Hash16) {
        let Some(gone) = self.by_peer.get(peer) else {
            return;
        };
        // Our peer links have no airtime budget, so the engine removes them.
        if let Ok(stats) = engine.remove_link(gone.link) {
            self.retired += stats;
            self.by_peer.remove(peer);
        }
    }

    /// The counters of the links removed so far.
    pub fn retired(&self) -> LinkStats {
        self.retired
    }

    pub fn link(&self, peer: &Hash16) -> Option<LinkId> {
        self.by_peer.get(peer).map(|p| p.link)
    }

    /// Every (peer, link) pair.
    pub fn iter(&self) -> impl Iterator<Item = (Hash16, LinkId)> + '_ {
        self.by_peer.iter().map(|(peer, p)| (*peer, p.link))
    }

    pub fn len(&self) -> usize {
        self.by_peer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lorabridge_proto::engine::{EngineConfig, MemoryStore};
    use std::time::Duration;

    const SEC: Duration = Duration::from_secs(1);
    const START: EngineTime = EngineTime::ZERO;

    fn engine() -> Engine<MemoryStore> {
        let config = EngineConfig::new([1; 32], [2; 32], [3; 32]);
        Engine::new(config, MemoryStore::default())
    }

    /// The topics of the next summary the engine sends on `link`.
    fn summarised(engine: &mut Engine<MemoryStore>, link: LinkId) -> Vec<TopicTag> {
        use lorabridge_proto::{FrameCodec, Message, NetworkTag};
        let codec = FrameCodec::new(NetworkTag::from_network_id(&[1; 32]), None);
        let mut now = START;
        for _ in 0..1000 {
            engine.handle_timeout(now);
            while let Some(frame) = engine.poll_transmit(now, link) {
                engine.handle_transmitted(now, link, true);
                if let Message::Summary(s) = codec.decode(&frame).unwrap().message {
                    return s.topics.iter().map(|t| t.topic).collect();
                }
            }
            now += Duration::from_secs(1);
        }
        panic!("no summary within 1000 s");
    }

    #[test]
    fn one_link_per_peer_with_the_common_topics_and_a_bound() {
        let mut engine = engine();
        let ours = [[0x42; 32], [0x43; 32]];
        let tag = TopicTag::from_topic(&ours[0]);
        let mut links = PeerLinks::new(2);
        let now = START;
        let a = links
            .on_peer(&mut engine, now, Hash16([1; 16]), &[tag], &ours)
            .unwrap();
        // Re-announced with another topic: same link, now carrying that one.
        let other = TopicTag::from_topic(&ours[1]);
        assert_eq!(
            links.on_peer(&mut engine, now, Hash16([1; 16]), &[other], &ours),
            Ok(a)
        );
        assert_eq!(summarised(&mut engine, a), vec![other]);
        assert_eq!(links.link(&Hash16([1; 16])), Some(a));
        assert_eq!(
            links.on_peer(
                &mut engine,
                now,
                Hash16([2; 16]),
                &[TopicTag([0, 0])],
                &ours
            ),
            Err(PeerLinkError::NoCommonTopic)
        );
        let c = links
            .on_peer(&mut engine, now, Hash16([3; 16]), &[tag], &ours)
            .unwrap();
        assert_eq!(links.heard(now + SEC * 5, &Hash16([3; 16])), Some(c));
        // Full: a newcomer takes the link of a peer that never sent a frame, reset for it.
        let d = links
            .on_peer(&mut engine, now + SEC * 10, Hash16([4; 16]), &[tag], &ours)
            .unwrap();
        assert_eq!(d, a);
        assert_eq!(links.len(), 2);
        assert_eq!(links.link(&Hash16([1; 16])), None);
        assert_eq!(links.link(&Hash16([3; 16])), Some(c));
        assert_eq!(summarised(&mut engine, d), vec![tag]);
        // The evicted peer gets a link back when it announces again, from the other peer
        // that has only announced, not from the one that talks.
        let back = links
            .on_peer(&mut engine, now + SEC * 20, Hash16([1; 16]), &[tag], &ours)
            .unwrap();
        assert_eq!(back, d, "peer 4 has only announced");
        assert_eq!(links.link(&Hash16([3; 16])), Some(c));
        // When every peer talks, the one whose last frame is oldest goes.
        links.heard(now + SEC * 21, &Hash16([1; 16]));
        let e = links
            .on_peer(&mut engine, now + SEC * 22, Hash16([5; 16]), &[tag], &ours)
            .unwrap();
        assert_eq!(e, c, "peer 3's last frame, at 5 s, is the oldest");
    }

    #[test]
    fn announced_identities_in_bulk_take_no_link_from_a_peer_that_talks() {
        let (mut engine, mut links) = (engine(), PeerLinks::new(4));
        let ours = [[0x42; 32]];
        let tag = TopicTag::from_topic(&ours[0]);
        let honest = Hash16([1; 16]);
        let link = links
            .on_peer(&mut engine, START, honest, &[tag], &ours)
            .unwrap();
        links.heard(START + SEC, &honest);
        for n in 0..500u16 {
            let mut fake = [0xfa; 16];
            fake[..2].copy_from_slice(&n.to_be_bytes());
            let at = START + SEC * (2 + u32::from(n));
            links
                .on_peer(&mut engine, at, Hash16(fake), &[tag], &ours)
                .unwrap();
            assert_eq!(links.link(&honest), Some(link), "after {n} fakes");
        }
        assert_eq!(links.len(), 4);
    }

    #[test]
    fn a_peer_whose_path_expired_loses_its_link_and_its_counters_are_kept() {
        let (mut engine, mut links) = (engine(), PeerLinks::new(4));
        let ours = [[0x42; 32]];
        let tag = TopicTag::from_topic(&ours[0]);
        let (gone, stays) = (Hash16([1; 16]), Hash16([2; 16]));
        let old = links
            .on_peer(&mut engine, START, gone, &[tag], &ours)
            .unwrap();
        let kept = links
            .on_peer(&mut engine, START, stays, &[tag], &ours)
            .unwrap();
        summarised(&mut engine, old);
        let sent = engine.stats(old);
        assert!(sent.summaries_sent > 0);

        links.expired(&mut engine, &gone);
        assert_eq!((links.link(&gone), links.len()), (None, 1));
        assert_eq!(links.retired(), sent);
        assert_eq!(links.link(&stays), Some(kept));
        // Expiring it again, or a peer never seen, changes nothing.
        links.expired(&mut engine, &gone);
        links.expired(&mut engine, &Hash16([9; 16]));
        assert_eq!((links.len(), links.retired()), (1, sent));

        // Back with a new announce: a fresh link in the freed slot, told apart from the old
        // handle, with counters of its own.
        let new = links
            .on_peer(&mut engine, START + SEC, gone, &[tag], &ours)
            .unwrap();
        assert_ne!(new, old);
        assert_eq!(engine.stats(new).summaries_sent, 0);
        let stale = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.stats(old)));
        assert!(stale.is_err(), "the old handle no longer reaches a link");
    }
}
