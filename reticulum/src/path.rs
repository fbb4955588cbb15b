//! The path table: for every destination learned from an announce, its key, how far it is,
//! through which transport node to reach it, and until when the path holds.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::announce::{Announce, RANDOM_HASH_LEN, RATCHET_LEN};
use super::identity::PublicIdentity;
use super::packet::Hash16;
use super::sender::SenderKey;

/// Random blobs remembered per destination to spot replayed announces.
const MAX_BLOBS: usize = 8;

#[derive(Clone, Debug)]
pub struct PathEntry {
    pub identity: PublicIdentity,
    pub ratchet: Option<[u8; RATCHET_LEN]>,
    /// Hops to the destination, counting the last one (1 = a direct neighbour).
    pub hops: u8,
    /// The transport node to address (HEADER_2) when the destination is not a neighbour.
    pub next_hop: Option<Hash16>,
    /// Emission time of the announce the path came from (unix seconds).
    pub emitted: u64,
    pub app_data: Vec<u8>,
    pub learned: Duration,
    pub expires: Duration,
    /// When the destination's owner last showed it holds the key: a frame whose sender tag
    /// checked out, or a valid proof. `None` for a path known only from announces.
    pub proven: Option<Duration>,
    /// The key of the sender tags between us and this destination, derived once when the
    /// path is learned (an X25519 exchange is too dear to repeat per packet); `None` when
    /// its announced key shares no secret.
    pub sender_key: Option<SenderKey>,
    blobs: VecDeque<[u8; RANDOM_HASH_LEN]>,
}

/// What an announce did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathUpdate {
    /// A destination not in the table (or whose path had expired).
    New,
    /// A newer announce, or the same one over fewer hops.
    Updated,
    /// Heard before, older, or longer than the path held.
    Ignored,
}

/// Bounded: at most `capacity` destinations (about 250 bytes each with their app data). When
/// full, a path that nobody has proven is forgotten first (the one closest to expiry), then
/// the proven one heard from longest ago. Announcing takes nothing but a fresh key, so a
/// flood of announced identities only pushes out other announced identities: it cannot
/// push out peers that talk to us. (A peer that has announced but not yet talked can still
/// be pushed out; its next announce brings it back.)
#[derive(Clone, Debug)]
pub struct PathTable {
    entries: HashMap<Hash16, PathEntry>,
    capacity: usize,
    lifetime: Duration,
}

impl PathTable {
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            lifetime,
        }
    }

    /// Considers a validated announce heard `hops` away (already counting the last hop),
    /// rebroadcast by `next_hop` if it came through a transport node. `sender_key` is asked
    /// only for a destination (or identity) not held yet.
    pub fn learn(
        &mut self,
        now: Duration,
        announce: &Announce,
        hops: u8,
        next_hop: Option<Hash16>,
        sender_key: impl FnOnce() -> Option<SenderKey>,
    ) -> PathUpdate {
        let emitted = announce.emitted();
        let update = match self.entries.get(&announce.destination) {
            Some(old) if old.expires > now => {
                if old.identity != announce.identity
                    || old.blobs.contains(&announce.random_hash) && hops >= old.hops
                {
                    PathUpdate::Ignored
                } else if emitted > old.emitted || (emitted == old.emitted && hops < old.hops) {
                    PathUpdate::Updated
                } else {
                    PathUpdate::Ignored
                }
            }
            _ => PathUpdate::New,
        };
        if update == PathUpdate::Ignored {
            return update;
        }
        let kept = self
            .entries
            .remove(&announce.destination)
            .filter(|old| old.identity == announce.identity);
        let sender_key = match &kept {
            Some(old) => old.sender_key.clone(),
            None => sender_key(),
        };
        let (mut blobs, proven) = kept.map(|old| (old.blobs, old.proven)).unwrap_or_default();
        if !blobs.contains(&announce.random_hash) {
            if blobs.len() >= MAX_BLOBS {
                blobs.pop_front();
            }
            blobs.push_back(announce.random_hash);
        }
        if self.entries.len() >= self.capacity
            && let Some(victim) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.proven.is_some(), e.proven, e.expires))
                .map(|(k, _)| *k)
        {
            self.entries.remove(&victim);
        }
        self.entries.insert(
            announce.destination,
            PathEntry {
                identity: announce.identity.clone(),
                ratchet: announce.ratchet,
                hops,
                next_hop,
                emitted,
                app_data: announce.app_data.clone(),
                learned: now,
                expires: now + self.lifetime,
                proven,
                sender_key,
                blobs,
            },
        );
        update
    }

    /// `destination`'s owner showed at `now` that it holds the key.
    pub fn prove(&mut self, now: Duration, destination: &Hash16) {
        if let Some(entry) = self.entries.get_mut(destination) {
            entry.proven = Some(now);
        }
    }

    /// A live path to `destination`.
    pub fn get(&self, now: Duration, destination: &Hash16) -> Option<&PathEntry> {
        self.entries.get(destination).filter(|e| e.expires > now)
    }

    /// Removes expired paths and returns their destinations.
    pub fn expire(&mut self, now: Duration) -> Vec<Hash16> {
        let gone: Vec<Hash16> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.entries.remove(k);
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<Duration> {
        self.entries.values().map(|e| e.expires).min()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hash16, &PathEntry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::{Identity, name_hash};
    use super::super::packet::Packet;
    use super::*;

    fn announce(seed: u8, random: u8, at: u64) -> Announce {
        let id = Identity::from_key_file(&[seed; 64]).unwrap();
        let p: Packet = Announce::build(&id, &name_hash("a.b"), [random; 5], at, None, b"");
        Announce::validate(&p).unwrap()
    }

    const S: Duration = Duration::from_secs(1);

    /// What the table does with an announce; no sender key is needed here.
    fn learn(
        t: &mut PathTable,
        now: Duration,
        a: &Announce,
        hops: u8,
        next_hop: Option<Hash16>,
    ) -> PathUpdate {
        t.learn(now, a, hops, next_hop, || None)
    }

    #[test]
    fn newer_or_shorter_replaces_replays_and_older_do_not() {
        let mut t = PathTable::new(8, 100 * S);
        let a = announce(1, 1, 1000);
        assert_eq!(
            learn(&mut t, S, &a, 3, Some(Hash16([9; 16]))),
            PathUpdate::New
        );
        assert_eq!(learn(&mut t, S, &a, 3, None), PathUpdate::Ignored, "replay");
        assert_eq!(
            learn(&mut t, S, &a, 2, None),
            PathUpdate::Updated,
            "same, shorter"
        );
        assert_eq!(t.get(S, &a.destination).unwrap().next_hop, None);
        assert_eq!(
            learn(&mut t, S, &announce(1, 2, 999), 1, None),
            PathUpdate::Ignored
        );
        assert_eq!(
            learn(&mut t, S, &announce(1, 3, 1001), 5, None),
            PathUpdate::Updated
        );
        assert_eq!(t.get(S, &a.destination).unwrap().hops, 5);
    }

    #[test]
    fn paths_expire_and_capacity_is_bounded() {
        let mut t = PathTable::new(2, 10 * S);
        for seed in 1..=3u8 {
            let now = u32::from(seed) * S;
            learn(&mut t, now, &announce(seed, 1, 5), 1, None);
        }
        assert_eq!(t.len(), 2);
        let first = announce(1, 1, 5).destination;
        assert!(t.get(3 * S, &first).is_none(), "the oldest was evicted");
        assert_eq!(t.next_expiry(), Some(12 * S));
        assert_eq!(t.expire(12 * S).len(), 1);
        assert!(t.get(13 * S, &announce(3, 1, 5).destination).is_none());
    }

    #[test]
    fn proven_paths_are_forgotten_last_and_the_longest_silent_first() {
        let mut t = PathTable::new(3, 100 * S);
        let [one, two, three] = [1u8, 2, 3].map(|seed| announce(seed, 1, 5).destination);
        for seed in 1..=3u8 {
            learn(&mut t, u32::from(seed) * S, &announce(seed, 1, 5), 1, None);
        }
        t.prove(4 * S, &two);
        t.prove(5 * S, &one);
        // Newcomers push out the unproven path, then each other, never a proven one.
        for seed in 10..20u8 {
            learn(&mut t, u32::from(seed) * S, &announce(seed, 1, 5), 1, None);
            assert!(t.get(20 * S, &three).is_none());
            assert!(t.get(20 * S, &one).is_some() && t.get(20 * S, &two).is_some());
        }
        // With only proven paths left, the one heard from longest ago goes first.
        t.prove(30 * S, &announce(19, 1, 5).destination);
        learn(&mut t, 31 * S, &announce(30, 1, 5), 1, None);
        assert!(
            t.get(31 * S, &two).is_none(),
            "proven at 4 s, the longest silent"
        );
        assert!(t.get(31 * S, &one).is_some());
        // A newer announce keeps what was proven.
        learn(&mut t, 32 * S, &announce(1, 2, 6), 1, None);
        assert_eq!(t.get(32 * S, &one).unwrap().proven, Some(5 * S));
    }
}
