//! Our ratchets: short-lived X25519 keys, announced beside the identity key, that peers
//! encrypt to instead of it.
//!
//! They are what makes a recorded packet useless later. The duplicate filter stops a replay
//! only while it remembers the packet, and it starts empty at every start; ratchets are
//! never written to disk, so after a restart nothing sent to us before it decrypts, and
//! within a run a packet stops decrypting once its ratchet has rotated out. Packets to the
//! identity key itself are refused for the same reason. A peer that has not heard our
//! latest announce yet loses a packet or two, which the engine's summaries repair.

use std::collections::VecDeque;
use std::time::Duration;

use x25519_dalek::{PublicKey, StaticSecret};

use super::announce::RATCHET_LEN;

/// How long one ratchet is announced before the next replaces it.
pub const ROTATION: Duration = Duration::from_secs(30 * 60);
/// Ratchets kept for decryption, the announced one first: a peer that missed up to three
/// announces still reaches us, and a packet older than about two hours does not.
pub const KEPT: usize = 4;

#[derive(Clone)]
pub struct Ratchets {
    /// Newest first.
    secrets: VecDeque<StaticSecret>,
    announced: [u8; RATCHET_LEN],
    /// When the newest was first announced.
    made: Option<Duration>,
}

impl Ratchets {
    /// A first ratchet from fresh random bytes.
    pub fn new(fresh: [u8; 32]) -> Self {
        let mut ratchets = Self {
            secrets: VecDeque::with_capacity(KEPT),
            announced: [0; RATCHET_LEN],
            made: None,
        };
        ratchets.push(fresh);
        ratchets
    }

    fn push(&mut self, fresh: [u8; 32]) {
        let secret = StaticSecret::from(fresh);
        self.announced = PublicKey::from(&secret).to_bytes();
        self.secrets.push_front(secret);
        self.secrets.truncate(KEPT);
    }

    /// The public key to announce at `now`: a new one, from `fresh` random bytes, once the
    /// last has served `ROTATION` (or the clock went back past its making, so that a clock
    /// set back cannot keep one for ever).
    pub fn for_announce(&mut self, now: Duration, fresh: [u8; 32]) -> &[u8; RATCHET_LEN] {
        match self.made {
            Some(made) if now < made || now >= made + ROTATION => {
                self.push(fresh);
                self.made = Some(now);
            }
            Some(_) => {}
            None => self.made = Some(now),
        }
        &self.announced
    }

    /// The secrets a packet to us may be encrypted to, newest first.
    pub fn secrets(&self) -> impl Iterator<Item = &StaticSecret> {
        self.secrets.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn rotation_announces_a_new_key_and_keeps_a_bounded_few() {
        let mut r = Ratchets::new([1; 32]);
        let first = *r.for_announce(MIN, [2; 32]);
        assert_eq!(*r.for_announce(MIN * 30, [3; 32]), first, "not yet");
        let second = *r.for_announce(MIN * 31, [4; 32]);
        assert_ne!(second, first);
        assert_ne!(*r.for_announce(MIN, [5; 32]), second, "the clock went back");
        for n in 6..20u8 {
            r.for_announce(MIN * 31 * u32::from(n), [n; 32]);
        }
        assert_eq!(r.secrets().count(), KEPT);
        let newest = PublicKey::from(r.secrets().next().unwrap()).to_bytes();
        assert_eq!(newest, *r.for_announce(MIN * 31 * 19, [0; 32]));
    }
}
