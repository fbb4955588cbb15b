//! Who sent a SINGLE packet, proven to its recipient.
//!
//! SINGLE packets are encrypted to the recipient with a fresh ephemeral key, so anyone who
//! heard its announce can write one, and the sender's destination hash at the start of the
//! plaintext is only a claim. The claim is backed by a tag that only the two bridges can
//! make: an HMAC of both destination hashes and the frame, keyed from the X25519 secret the
//! sender's and the recipient's static keys share (both learned from announces). A forger
//! holds neither private key, so it can send frames only in its own name.
//!
//! Tag: HMAC-SHA256(key, from ‖ to ‖ frame) truncated to 16 bytes, with key =
//! HKDF-SHA256(salt = `SALT`, ikm = shared secret), 32 bytes. 16 bytes cost a forger 2^128
//! tries; that is what the frame's room pays for it.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::packet::Hash16;

/// Bytes of the tag after the sender's hash.
pub const TAG_LEN: usize = 16;
/// Keeps these keys apart from any other use of the same shared secret.
const SALT: &[u8] = b"lorabridge reticulum sender v1";

/// A key for the tags between two bridges, from their shared X25519 secret.
#[derive(Clone)]
pub struct SenderKey([u8; 32]);

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SenderKey(..)")
    }
}

impl SenderKey {
    pub fn derive(shared: &[u8; 32]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), shared)
            .expand(&[], &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(key)
    }

    fn mac(&self, from: &Hash16, to: &Hash16, frame: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&from.0);
        mac.update(&to.0);
        mac.update(frame);
        mac
    }

    /// The tag `from` puts before `frame` in a packet to `to`.
    pub fn tag(&self, from: &Hash16, to: &Hash16, frame: &[u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.mac(from, to, frame).finalize().into_bytes()[..TAG_LEN]);
        tag
    }

    /// Whether `tag` proves that `from` sent `frame` to `to` (compared in constant time).
    pub fn verify(&self, from: &Hash16, to: &Hash16, frame: &[u8], tag: &[u8]) -> bool {
        tag.len() == TAG_LEN && self.mac(from, to, frame).verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Hash16 = Hash16([0xaa; 16]);
    const B: Hash16 = Hash16([0xbb; 16]);

    #[test]
    fn a_tag_proves_its_sender_its_recipient_and_its_frame_only() {
        let key = SenderKey::derive(&[7; 32]);
        let tag = key.tag(&A, &B, b"frame");
        assert!(key.verify(&A, &B, b"frame", &tag));
        assert!(!key.verify(&B, &A, b"frame", &tag), "the other direction");
        assert!(!key.verify(&A, &B, b"frame!", &tag), "another frame");
        assert!(
            !SenderKey::derive(&[8; 32]).verify(&A, &B, b"frame", &tag),
            "another key"
        );
        assert!(!key.verify(&A, &B, b"frame", &tag[..8]), "a shortened tag");
        assert!(!key.verify(&A, &B, b"frame", &[]), "no tag");
    }
}
