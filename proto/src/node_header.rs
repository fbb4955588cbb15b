//! The fields of a p2panda operation header written by the `p2panda` Node API, and its
//! canonical encoding.
//!
//! A Node-API header is the CBOR array
//! `[1, verifying_key, signature, payload_size, payload_hash?, seq_num, backlink?,
//!   [1, 0, log_id, timestamp, prune_flag]]`
//! (`payload_hash` iff `payload_size > 0`, `backlink` iff `seq_num > 0`; extensions version 1,
//! variant 0 "basic"). `log_id` is BLAKE3 of the topic, `payload_*` follow from the body and
//! `backlink` from the log, so the compact codec sends only what cannot be rebuilt.

use crate::bytes::Reader;
use crate::cbor;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const SIGNATURE_LEN: usize = 64;
pub(crate) const HASH_LEN: usize = 32;

/// One Node-API operation header, field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeHeader {
    pub author: [u8; KEY_LEN],
    pub signature: [u8; SIGNATURE_LEN],
    pub payload_size: u64,
    pub payload_hash: Option<[u8; HASH_LEN]>,
    pub seq: u64,
    pub backlink: Option<[u8; HASH_LEN]>,
    pub log_id: [u8; HASH_LEN],
    pub timestamp: u64,
    pub prune: bool,
}

impl NodeHeader {
    /// Reads a Node-API header; `None` for anything of another shape (other extensions,
    /// non-canonical CBOR, trailing bytes). It does not check the signature.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let fields = cbor::array_head(&mut r)?;
        (cbor::uint(&mut r)? == 1).then_some(())?;
        let author = cbor::fixed_bytes(&mut r)?;
        let signature = cbor::fixed_bytes(&mut r)?;
        let payload_size = cbor::uint(&mut r)?;
        let payload_hash = if payload_size > 0 {
            Some(cbor::fixed_bytes(&mut r)?)
        } else {
            None
        };
        let seq = cbor::uint(&mut r)?;
        let backlink = if seq > 0 {
            Some(cbor::fixed_bytes(&mut r)?)
        } else {
            None
        };
        (cbor::array_head(&mut r)? == 5).then_some(())?;
        (cbor::uint(&mut r)? == 1 && cbor::uint(&mut r)? == 0).then_some(())?;
        let log_id = cbor::fixed_bytes(&mut r)?;
        let timestamp = cbor::uint(&mut r)?;
        let prune = cbor::bool(&mut r)?;
        let header = Self {
            author,
            signature,
            payload_size,
            payload_hash,
            seq,
            backlink,
            log_id,
            timestamp,
            prune,
        };
        (r.is_empty() && fields == header.field_count()).then_some(header)
    }

    fn field_count(&self) -> u64 {
        6 + u64::from(self.payload_hash.is_some()) + u64::from(self.backlink.is_some())
    }

    /// The canonical header bytes, as p2panda encodes them.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(230);
        cbor::put_array_head(&mut out, self.field_count() as usize);
        cbor::put_uint(&mut out, 1);
        cbor::put_bytes(&mut out, &self.author);
        cbor::put_bytes(&mut out, &self.signature);
        cbor::put_uint(&mut out, self.payload_size);
        if let Some(hash) = &self.payload_hash {
            cbor::put_bytes(&mut out, hash);
        }
        cbor::put_uint(&mut out, self.seq);
        if let Some(backlink) = &self.backlink {
            cbor::put_bytes(&mut out, backlink);
        }
        cbor::put_array_head(&mut out, 5);
        cbor::put_uint(&mut out, 1);
        cbor::put_uint(&mut out, 0);
        cbor::put_bytes(&mut out, &self.log_id);
        cbor::put_uint(&mut out, self.timestamp);
        cbor::put_bool(&mut out, self.prune);
        out
    }
}
