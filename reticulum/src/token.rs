//! The encrypted token SINGLE packets carry: keys from HKDF-SHA256 over an X25519 shared
//! secret, then IV ‖ AES-256-CBC(PKCS#7) ciphertext ‖ HMAC-SHA256(IV ‖ ciphertext).
//!
//! The HMAC is checked (in constant time) before anything is decrypted, so a forged or
//! corrupted token costs one HMAC and reveals nothing about padding.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const IV_LEN: usize = 16;
pub const MAC_LEN: usize = 32;
const BLOCK: usize = 16;
/// IV and HMAC around the ciphertext.
pub const OVERHEAD: usize = IV_LEN + MAC_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too short or not whole cipher blocks")]
    Length,
    #[error("token HMAC does not match")]
    Hmac,
    #[error("bad padding after a valid HMAC")]
    Padding,
}

/// The two keys a token uses.
#[derive(Clone)]
pub struct TokenKeys {
    hmac: [u8; 32],
    aes: [u8; 32],
}

impl TokenKeys {
    /// HKDF-SHA256 (RFC 5869) of `secret` with `salt` and no info, 64 bytes: HMAC key then
    /// AES key.
    pub fn derive(secret: &[u8], salt: &[u8]) -> Self {
        let mut okm = [0u8; 64];
        Hkdf::<Sha256>::new(Some(salt), secret)
            .expand(&[], &mut okm)
            .expect("64 bytes is a valid HKDF-SHA256 output length");
        let mut keys = Self {
            hmac: [0; 32],
            aes: [0; 32],
        };
        keys.hmac.copy_from_slice(&okm[..32]);
        keys.aes.copy_from_slice(&okm[32..]);
        keys
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac).expect("HMAC takes any key length")
    }

    pub fn encrypt(&self, iv: [u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
        let ciphertext = cbc::Encryptor::<Aes256>::new(&self.aes.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut out = Vec::with_capacity(OVERHEAD + ciphertext.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ciphertext);
        let mut mac = self.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    pub fn decrypt(&self, token: &[u8]) -> Result<Vec<u8>, TokenError> {
        if token.len() < OVERHEAD + BLOCK || !(token.len() - OVERHEAD).is_multiple_of(BLOCK) {
            return Err(TokenError::Length);
        }
        let (signed, tag) = token.split_at(token.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| TokenError::Hmac)?;
        let (iv, ciphertext) = signed.split_at(IV_LEN);
        let mut iv_arr = [0u8; IV_LEN];
        iv_arr.copy_from_slice(iv);
        cbc::Decryptor::<Aes256>::new(&self.aes.into(), &iv_arr.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| TokenError::Padding)
    }
}

/// Plaintext bytes that fit in `room` bytes of token (PKCS#7 always adds at least one byte).
pub const fn max_plaintext(room: usize) -> usize {
    (room.saturating_sub(OVERHEAD) / BLOCK * BLOCK).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_steps_with_empty_info() {
        // T(1) = HMAC(PRK, 0x01) with PRK = HMAC(salt, IKM), computed independently with
        // Python's `hmac` module for RFC 5869 test case 1's IKM and salt.
        let keys = TokenKeys::derive(&[0x0b; 22], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(
            keys.hmac[..8],
            [0xb2, 0xa3, 0xd4, 0x51, 0x26, 0xd3, 0x1f, 0xb6]
        );
    }

    #[test]
    fn round_trip_and_sizes() {
        let keys = TokenKeys::derive(b"secret", b"salt");
        for len in [0, 1, 15, 16, 17, 383] {
            let token = keys.encrypt([3; 16], &vec![0xaa; len]);
            assert_eq!(token.len(), OVERHEAD + (len / 16 + 1) * 16);
            assert_eq!(keys.decrypt(&token).unwrap(), vec![0xaa; len]);
        }
        assert_eq!(max_plaintext(500 - 35 - 32), 383);
    }

    #[test]
    fn tampering_is_caught_by_the_hmac() {
        let keys = TokenKeys::derive(b"secret", b"salt");
        let mut token = keys.encrypt([3; 16], b"hello");
        for i in [0, 20, token.len() - 1] {
            token[i] ^= 1;
            assert_eq!(keys.decrypt(&token), Err(TokenError::Hmac));
            token[i] ^= 1;
        }
        let other = TokenKeys::derive(b"other", b"salt");
        assert_eq!(other.decrypt(&token), Err(TokenError::Hmac));
        assert_eq!(keys.decrypt(&token[..40]), Err(TokenError::Length));
    }
}
