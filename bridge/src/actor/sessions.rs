//! When a topic's stream must be renewed to give back the memory of its past sync sessions.
//!
//! p2panda-sync 0.7.0 (`TopicSyncManager::session`) keeps, for every sync session a stream
//! ever started, a broadcast channel of 1 028 slots (about 200 KB, measured with heaptrack
//! and `--example renewals`) and a receiver that nobody reads, so the slots also keep up to
//! 1 028 of that session's events. Nothing removes them while the stream lives: a stream
//! that stays open while its iroh peers reconnect or renew their own streams grows by about
//! 200 KB per session, without end (most of the four-bridge soak's 1.9 MB a minute). Closing
//! the stream frees all of it, so the bridge renews a stream once it has started
//! enough sessions.
//!
//! A fresh stream starts about two sessions per peer (both sides initiate), so the limit
//! grows with the peers seen, four sessions per peer, to never renew in a loop. It stays
//! between [`FLOOR`] and [`CEILING`] sessions, so the memory a topic holds for past sessions
//! stays below `CEILING` × 200 KB and, with up to four peers, below 3.2 MB.

use std::collections::HashSet;

/// Sessions a stream may start before it is renewed, whatever the number of peers.
const FLOOR: usize = 16;
/// ...and at most, however many peers there are. It also bounds the set of peers.
const CEILING: usize = 256;
/// Sessions allowed per peer seen on the stream.
const PER_PEER: usize = 4;

/// The sync sessions started on one topic's current stream.
#[derive(Debug, Default)]
pub struct Sessions {
    started: usize,
    peers: HashSet<[u8; 32]>,
}

impl Sessions {
    /// A session with `peer` started; returns whether the stream should now be renewed.
    pub fn started(&mut self, peer: [u8; 32]) -> bool {
        self.started += 1;
        if self.peers.len() < CEILING {
            self.peers.insert(peer);
        }
        self.started >= (PER_PEER * self.peers.len()).clamp(FLOOR, CEILING)
    }

    /// The stream was renewed: its sessions are gone with it.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: usize) -> [u8; 32] {
        let mut key = [0; 32];
        key[..8].copy_from_slice(&n.to_le_bytes());
        key
    }

    /// How many sessions in turn among `peers` start until a renewal is due.
    fn sessions_until_renewal(peers: usize) -> usize {
        let mut sessions = Sessions::default();
        (1..=10_000)
            .find(|i| sessions.started(peer(i % peers)))
            .expect("a renewal is due at last")
    }

    #[test]
    fn a_stream_with_few_peers_is_renewed_after_the_floor() {
        assert_eq!(sessions_until_renewal(1), FLOOR);
        assert_eq!(sessions_until_renewal(4), FLOOR);
    }

    #[test]
    fn many_peers_get_four_sessions_each_up_to_the_ceiling() {
        assert_eq!(sessions_until_renewal(10), 40);
        assert_eq!(sessions_until_renewal(1000), CEILING);
    }

    #[test]
    fn a_fresh_stream_opening_two_sessions_per_peer_is_not_renewed_again() {
        for peers in [1, 3, 8, 60] {
            let mut sessions = Sessions::default();
            let renewed = (0..2 * peers).any(|i| sessions.started(peer(i % peers)));
            assert!(!renewed, "{peers} peers");
        }
    }

    #[test]
    fn a_reset_starts_the_count_again() {
        let mut sessions = Sessions::default();
        for _ in 1..FLOOR {
            assert!(!sessions.started(peer(0)));
        }
        sessions.reset();
        assert!(!sessions.started(peer(0)));
    }
}
