//! Glue between Reticulum peers and the sync engine: one engine link per peer bridge.
//!
//! Reticulum delivers a SINGLE packet to one destination, so unlike a LoRa channel a frame
//! sent to one peer is not overheard by the others. One link per peer tells the engine the
//! truth: what peer A sent was heard on A's link only, so the engine forwards it to B. (One
//! shared link for all peers would make the engine believe B heard what A said.)

use std::collections::HashMap;
use std::time::Duration;

use super::endpoint::MAX_FRAME;
use super::packet::Hash16;
use crate::engine::{Engine, LinkConfig, LinkError, LinkId, OpStore};
use crate::tags::TopicTag;

/// Maps peers to engine links. Bounded by `max_links`: the engine cannot remove links, so a
/// peer keeps its link for the life of the engine (and gets it back when it re-announces).
#[derive(Debug)]
pub struct PeerLinks {
    /// Each peer's link and the topics it carries.
    by_peer: HashMap<Hash16, (LinkId, Vec<[u8; 32]>)>,
    by_link: HashMap<LinkId, Hash16>,
    max_links: usize,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerLinkError {
    #[error("the peer carries none of our topics")]
    NoCommonTopic,
    #[error("already {0} peer links")]
    Full(usize),
    #[error(transparent)]
    Link(#[from] LinkError),
}

impl PeerLinks {
    pub fn new(max_links: usize) -> Self {
        Self {
            by_peer: HashMap::new(),
            by_link: HashMap::new(),
            max_links,
        }
    }

    /// The link for a peer that announced `peer_topics`, added to the engine on first sight
    /// with the topics we carry (`our_topics`) that the peer announced too. When a known peer
    /// announces other topics (its steward changed its regions), its link follows.
    pub fn on_peer<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        now: Duration,
        peer: Hash16,
        peer_topics: &[TopicTag],
        our_topics: &[[u8; 32]],
    ) -> Result<LinkId, PeerLinkError> {
        let topics: Vec<[u8; 32]> = our_topics
            .iter()
            .filter(|t| peer_topics.contains(&TopicTag::from_topic(t)))
            .copied()
            .collect();
        if let Some((link, carried)) = self.by_peer.get_mut(&peer) {
            if *carried != topics {
                engine.set_link_topics(now, *link, topics.clone())?;
                *carried = topics;
            }
            // It announced again: it may have restarted behind us, so tell it where we are.
            engine.greet(now, *link);
            return Ok(*link);
        }
        if self.by_peer.len() >= self.max_links {
            return Err(PeerLinkError::Full(self.max_links));
        }
        if topics.is_empty() {
            return Err(PeerLinkError::NoCommonTopic);
        }
        let link = engine.add_link(
            now,
            LinkConfig {
                mtu: MAX_FRAME,
                budget: None,
                topics: topics.clone(),
            },
        )?;
        self.by_peer.insert(peer, (link, topics));
        self.by_link.insert(link, peer);
        Ok(link)
    }

    pub fn link(&self, peer: &Hash16) -> Option<LinkId> {
        self.by_peer.get(peer).map(|(link, _)| *link)
    }

    pub fn peer(&self, link: LinkId) -> Option<Hash16> {
        self.by_link.get(&link).copied()
    }

    /// Every (peer, link) pair.
    pub fn iter(&self) -> impl Iterator<Item = (Hash16, LinkId)> + '_ {
        self.by_peer.iter().map(|(p, (l, _))| (*p, *l))
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
    use crate::engine::{EngineConfig, MemoryStore};

    /// The topics of the next summary the engine sends on `link`.
    fn summarised(engine: &mut Engine<MemoryStore>, link: LinkId) -> Vec<TopicTag> {
        use crate::{FrameCodec, Message, NetworkTag};
        let codec = FrameCodec::new(NetworkTag::from_network_id(&[1; 32]), None);
        let mut now = Duration::ZERO;
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
        let mut engine = Engine::new(
            EngineConfig::new([1; 32], [2; 32], [3; 32]),
            MemoryStore::default(),
        );
        let ours = [[0x42; 32], [0x43; 32]];
        let tag = TopicTag::from_topic(&ours[0]);
        let mut links = PeerLinks::new(2);
        let now = Duration::ZERO;
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
        assert_eq!(links.peer(a), Some(Hash16([1; 16])));
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
        links
            .on_peer(&mut engine, now, Hash16([3; 16]), &[tag], &ours)
            .unwrap();
        assert_eq!(
            links.on_peer(&mut engine, now, Hash16([4; 16]), &[tag], &ours),
            Err(PeerLinkError::Full(2))
        );
    }
}
