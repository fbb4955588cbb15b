//! Checking a p2panda operation header from its bytes, with any extensions.
//!
//! p2panda 0.7.0 (the version LoRes nodes run) decodes CBOR leniently and checks the signature
//! only when asked. The mesh must accept exactly the headers whose bytes are the canonical
//! encoding, because an operation's id is the hash of those bytes: a lenient decode of a
//! re-ordered or padded header would carry the same signed fields under another id. So a
//! header is accepted here only when it decodes, re-encodes to the very same bytes, and its
//! Ed25519 signature verifies.

use p2panda_core::cbor::{decode_cbor, encode_cbor};
use p2panda_core::{Hash, Header};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Extensions of any shape, kept as parsed CBOR so that the header re-encodes byte for byte.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct AnyExtensions(ciborium::Value);

/// What the mesh needs from a checked header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedHeader {
    pub author: [u8; 32],
    pub seq: u64,
    pub payload_size: u32,
    pub payload_hash: Option<[u8; 32]>,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("not a p2panda operation header")]
    Malformed,
    #[error("header bytes are not in canonical form")]
    NotCanonical,
    #[error("header signature does not verify")]
    BadSignature,
}

/// Checks `bytes` as a signed p2panda header (with or without extensions).
pub fn check(bytes: &[u8]) -> Result<CheckedHeader, HeaderError> {
    match decode_cbor::<Header<AnyExtensions>, _>(bytes) {
        Ok(header) => checked(&header, bytes),
        Err(_) => {
            let header: Header<()> = decode_cbor(bytes).map_err(|_| HeaderError::Malformed)?;
            checked(&header, bytes)
        }
    }
}

fn checked<E: Serialize>(header: &Header<E>, bytes: &[u8]) -> Result<CheckedHeader, HeaderError>
where
    E: p2panda_core::Extensions,
{
    if encode_cbor(header).ok().as_deref() != Some(bytes) {
        return Err(HeaderError::NotCanonical);
    }
    if !header.verify() {
        return Err(HeaderError::BadSignature);
    }
    Ok(CheckedHeader {
        author: *header.verifying_key.as_bytes(),
        seq: u64::from(header.seq_num),
        payload_size: header.payload_size,
        payload_hash: header.payload_hash.map(|h: Hash| *h.as_bytes()),
    })
}
