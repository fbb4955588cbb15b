//! Frames that carry our own sender tag.
//!
//! A node tag is two bytes of the node key, so among 20 bridges about one pair in 330 shares
//! one. Frames with our tag were dropped as our own, so two such bridges in range never
//! synced. Now only frames we sent ourselves (remembered by hash) are dropped. Any other
//! frame with our tag means a neighbour has it too, and the engine takes a new random tag, at
//! most once per `RETAG_SPACING` so that forged or replayed frames cannot keep it changing.
//!
//! A replay of a frame we sent long ago must not count as a neighbour with our tag: a new tag
//! is a stranger's at every neighbour, answered only from the strangers' pool, so an
//! attacker replaying old frames could keep a bridge's tag new. So many frames are
//! remembered that a replay must be older than `REMEMBERED` of our sends: more than an hour
//! of a bridge sending full SF7 frames at the 10 % duty cycle (about 900 an hour), days at
//! the rates a neighbourhood sends.
//!
//! Bound: the hashes of the last `REMEMBERED` frames sent, 8 KiB.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

const REMEMBERED: usize = 1024;
/// Shortest time between two changes of our tag.
pub(crate) const RETAG_SPACING: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub(crate) struct OwnFrames {
    hashes: VecDeque<u64>,
}

impl OwnFrames {
    pub(crate) fn sent(&mut self, frame: &[u8]) {
        self.hashes.push_front(hash(frame));
        self.hashes.truncate(REMEMBERED);
    }

    /// Whether `frame` is one we sent lately, heard back.
    pub(crate) fn is_ours(&self, frame: &[u8]) -> bool {
        self.hashes.contains(&hash(frame))
    }
}

fn hash(frame: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    frame.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_frames_sent_are_ours() {
        let mut own = OwnFrames::default();
        for i in 0..=REMEMBERED as u32 {
            own.sent(&i.to_be_bytes());
        }
        assert!(!own.is_ours(&0u32.to_be_bytes()), "forgotten");
        assert!(own.is_ours(&1u32.to_be_bytes()));
        assert!(own.is_ours(&(REMEMBERED as u32).to_be_bytes()));
        assert!(!own.is_ours(b"never sent"));
    }
}
