//! Identities (an X25519 key for encryption and an Ed25519 key for signatures), their hashes,
//! destination hashing, and SINGLE-destination encryption.
//!
//! Key material comes in as bytes (the caller draws them from the OS); nothing here reads a
//! file or a random source.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use super::packet::Hash16;
use super::token::{TokenError, TokenKeys};

/// Public key bytes: X25519 public ‖ Ed25519 public.
pub const PUBLIC_KEY_LEN: usize = 64;
/// The key file: X25519 private ‖ Ed25519 private seed (the layout `rnid` writes, so an
/// identity can be inspected or reused with the reference tools).
pub const KEY_FILE_LEN: usize = 64;
pub const SIGNATURE_LEN: usize = 64;
pub const NAME_HASH_LEN: usize = 10;
/// X25519 public key that starts every encrypted SINGLE payload.
pub const EPHEMERAL_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key file must be {KEY_FILE_LEN} bytes, not {0}")]
    KeyFileLength(usize),
    #[error("public key must be {PUBLIC_KEY_LEN} bytes, not {0}")]
    PublicKeyLength(usize),
    #[error("the Ed25519 public key is not a valid point")]
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("encrypted payload too short")]
    Length,
    #[error("key exchange with a low-order point")]
    WeakKey,
    /// X25519 ignores the top bit and reduces modulo p, so 20 encodings of each key exist;
    /// honest senders use the canonical one, and refusing the others stops a replayed packet
    /// from passing the duplicate filter under a new hash.
    #[error("ephemeral key is not canonically encoded")]
    NonCanonicalKey,
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Someone else's identity, as learned from an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicIdentity {
    encryption: [u8; 32],
    verifying: VerifyingKey,
    hash: Hash16,
}

impl PublicIdentity {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(KeyError::PublicKeyLength(bytes.len()));
        }
        let mut encryption = [0; 32];
        encryption.copy_from_slice(&bytes[..32]);
        let mut ed = [0; 32];
        ed.copy_from_slice(&bytes[32..]);
        let verifying = VerifyingKey::from_bytes(&ed).map_err(|_| KeyError::Ed25519)?;
        Ok(Self {
            encryption,
            verifying,
            hash: Hash16::truncated(bytes),
        })
    }

    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0; PUBLIC_KEY_LEN];
        out[..32].copy_from_slice(&self.encryption);
        out[32..].copy_from_slice(self.verifying.as_bytes());
        out
    }

    /// SHA-256 of the public key, truncated: the identity hash.
    pub fn hash(&self) -> Hash16 {
        self.hash
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.verifying.verify_strict(message, &signature).is_ok()
    }

    /// Encrypts for this identity (or for its announced `ratchet` key): the ephemeral X25519
    /// public key, then the token. `ephemeral` and `iv` must be fresh random bytes.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        ephemeral: [u8; 32],
        iv: [u8; 16],
        ratchet: Option<&[u8; 32]>,
    ) -> Vec<u8> {
        let secret = StaticSecret::from(ephemeral);
        let target = PublicKey::from(*ratchet.unwrap_or(&self.encryption));
        let shared = secret.diffie_hellman(&target);
        let keys = TokenKeys::derive(shared.as_bytes(), &self.hash.0);
        let mut out = PublicKey::from(&secret).as_bytes().to_vec();
        out.extend(keys.encrypt(iv, plaintext));
        out
    }
}

/// Our own identity, with its private keys.
#[derive(Clone)]
pub struct Identity {
    encryption: StaticSecret,
    signing: SigningKey,
    public: PublicIdentity,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.public.hash)
    }
}

impl Identity {
    /// An identity from 64 secret bytes: fresh random bytes make a new identity, a key file's
    /// contents restore one.
    pub fn from_key_file(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != KEY_FILE_LEN {
            return Err(KeyError::KeyFileLength(bytes.len()));
        }
        let mut x = [0; 32];
        x.copy_from_slice(&bytes[..32]);
        let mut ed = [0; 32];
        ed.copy_from_slice(&bytes[32..]);
        let encryption = StaticSecret::from(x);
        let signing = SigningKey::from_bytes(&ed);
        let mut public = [0; PUBLIC_KEY_LEN];
        public[..32].copy_from_slice(PublicKey::from(&encryption).as_bytes());
        public[32..].copy_from_slice(signing.verifying_key().as_bytes());
        let public = PublicIdentity::from_bytes(&public)?;
        Ok(Self {
            encryption,
            signing,
            public,
        })
    }

    /// The bytes to persist; [`Identity::from_key_file`] reads them back.
    pub fn to_key_file(&self) -> [u8; KEY_FILE_LEN] {
        let mut out = [0; KEY_FILE_LEN];
        out[..32].copy_from_slice(self.encryption.as_bytes());
        out[32..].copy_from_slice(self.signing.as_bytes());
        out
    }

    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    pub fn hash(&self) -> Hash16 {
        self.public.hash
    }

    /// The X25519 secret this identity shares with `peer`: both compute the same, nobody
    /// else can. `None` when the peer's key is a low-order point, which would make the
    /// secret one that everybody knows.
    pub fn shared_with(&self, peer: &PublicIdentity) -> Option<[u8; 32]> {
        let shared = self
            .encryption
            .diffie_hellman(&PublicKey::from(peer.encryption));
        shared.was_contributory().then(|| *shared.as_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// Decrypts a payload made by [`PublicIdentity::encrypt`] to `secret`: one of our
    /// ratchets, or (in tests) our identity key; the token keys are salted with the identity
    /// hash either way.
    pub fn decrypt_with(
        &self,
        secret: &StaticSecret,
        payload: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if payload.len() <= EPHEMERAL_LEN {
            return Err(DecryptError::Length);
        }
        let mut eph = [0; 32];
        eph.copy_from_slice(&payload[..EPHEMERAL_LEN]);
        if !is_canonical_x25519(&eph) {
            return Err(DecryptError::NonCanonicalKey);
        }
        let shared = secret.diffie_hellman(&PublicKey::from(eph));
        if !shared.was_contributory() {
            return Err(DecryptError::WeakKey);
        }
        let keys = TokenKeys::derive(shared.as_bytes(), &self.public.hash.0);
        Ok(keys.decrypt(&payload[EPHEMERAL_LEN..])?)
    }
}

/// Whether `u` is a little-endian field element below p = 2^255 − 19 (top bit clear).
fn is_canonical_x25519(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    u[31] < 0x7f || u[1..31].iter().any(|b| *b != 0xff) || u[0] < 0xed
}

/// SHA-256 of the dotted destination name (`app.aspect…`), truncated to 10 bytes.
pub fn name_hash(name: &str) -> [u8; NAME_HASH_LEN] {
    let full = Sha256::digest(name.as_bytes());
    let mut out = [0; NAME_HASH_LEN];
    out.copy_from_slice(&full[..NAME_HASH_LEN]);
    out
}

/// The address of a SINGLE destination: SHA-256(name hash ‖ identity hash), truncated.
pub fn destination_hash(name_hash: &[u8; NAME_HASH_LEN], identity: &Hash16) -> Hash16 {
    let mut material = [0u8; NAME_HASH_LEN + 16];
    material[..NAME_HASH_LEN].copy_from_slice(name_hash);
    material[NAME_HASH_LEN..].copy_from_slice(&identity.0);
    Hash16::truncated(&material)
}

/// The address of a PLAIN destination (no identity): SHA-256(name hash), truncated.
pub fn plain_destination_hash(name: &str) -> Hash16 {
    Hash16::truncated(&name_hash(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u8) -> Identity {
        Identity::from_key_file(&[seed; 64]).unwrap()
    }

    #[test]
    fn key_file_round_trip_and_length_check() {
        let id = identity(1);
        let again = Identity::from_key_file(&id.to_key_file()).unwrap();
        assert_eq!(again.public(), id.public());
        assert_eq!(
            Identity::from_key_file(&[0; 63]).unwrap_err(),
            KeyError::KeyFileLength(63)
        );
    }

    #[test]
    fn encrypt_decrypt_and_wrong_recipient() {
        let alice = identity(1);
        let bob = identity(2);
        let sealed = bob.public().encrypt(b"hi bob", [5; 32], [6; 16], None);
        assert_eq!(sealed.len(), 32 + 16 + 16 + 32);
        assert_eq!(
            bob.decrypt_with(&bob.encryption, &sealed).unwrap(),
            b"hi bob"
        );
        assert_eq!(
            alice.decrypt_with(&alice.encryption, &sealed),
            Err(DecryptError::Token(TokenError::Hmac))
        );
        assert_eq!(
            bob.decrypt_with(&bob.encryption, &sealed[..32]),
            Err(DecryptError::Length)
        );
        let mut zero = sealed.clone();
        zero[..32].fill(0);
        assert_eq!(
            bob.decrypt_with(&bob.encryption, &zero),
            Err(DecryptError::WeakKey)
        );
        let mut high = sealed.clone();
        high[31] ^= 0x80;
        assert_eq!(
            bob.decrypt_with(&bob.encryption, &high),
            Err(DecryptError::NonCanonicalKey)
        );
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!is_canonical_x25519(&p));
        p[0] = 0xec;
        assert!(is_canonical_x25519(&p));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let id = identity(3);
        let sig = id.sign(b"message");
        assert!(id.public().verify(b"message", &sig));
        assert!(!id.public().verify(b"messagf", &sig));
        assert!(!id.public().verify(b"message", &sig[..63]));
    }

    #[test]
    fn hashes_match_the_reference_implementation() {
        // Computed with rns 1.5.7: Identity.load_private_key(bytes([1] * 64)),
        // Destination.hash(identity, "p2panda", "bridge", "abcd").
        let id = identity(1);
        assert_eq!(id.hash().to_hex(), "d78b7b124ffdf25c7b0fabdeb46877ee");
        let name = name_hash("p2panda.bridge.abcd");
        assert_eq!(
            name,
            [0xd4, 0x90, 0x42, 0x83, 0x55, 0x09, 0xdb, 0x67, 0x0c, 0x0d]
        );
        assert_eq!(
            destination_hash(&name, &id.hash()).to_hex(),
            "e4f183cd1bead278445217123df1cc31"
        );
    }

    #[test]
    fn path_request_destination_matches_the_reference() {
        // rns 1.5.7: Destination.hash_from_name_and_identity("rnstransport.path.request", None)
        assert_eq!(
            plain_destination_hash("rnstransport.path.request").to_hex(),
            "6b9f66014d9853faab220fba47d02761"
        );
    }
}
