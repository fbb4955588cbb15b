//! Frames: what one radio transmission carries.
//!
//! ```text
//! version << 4 | flags  [1]   version 1; flag bit 0: the message is encrypted
//! network tag           [2]   foreign networks are dropped here
//! sender tag            [2]
//! message                     postcard, or nonce [12] ‖ ChaCha20-Poly1305(message) ‖ tag [16]
//! CRC-16/IBM-3740       [2]   over everything before it, big-endian
//! ```
//!
//! Plain frames cost 7 bytes of overhead, encrypted ones 35. With a region key, the first
//! five bytes are authenticated as associated data, and plaintext frames are refused: anyone
//! with a radio could send those.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use crc::{CRC_16_IBM_3740, Crc};
use thiserror::Error;

use crate::message::Message;
use crate::tags::{NetworkTag, NodeTag};

pub const VERSION: u8 = 1;
const FLAG_ENCRYPTED: u8 = 1;
const HEADER_LEN: usize = 5;
const CRC_LEN: usize = 2;
const NONCE_LEN: usize = 12;
const AEAD_TAG_LEN: usize = 16;
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// A 32-byte key shared by the bridges of a region, to keep frames private on air.
#[derive(Clone)]
pub struct RegionKey(ChaCha20Poly1305);

impl RegionKey {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(ChaCha20Poly1305::new(Key::from_slice(key)))
    }
}

impl std::fmt::Debug for RegionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegionKey(..)")
    }
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub sender: NodeTag,
    pub message: Message,
    /// Where a sealed frame stands in its sender's sequence (read from its nonce), for
    /// refusing replays; `None` for a plain frame.
    pub sequence: Option<Sequence>,
}

/// A sealed frame's place in its sender's frames: the sender's start epoch and a counter.
/// The nonce of a sealed frame is `sender tag [2] ‖ epoch [4] ‖ counter [6]`, big-endian,
/// so that nonces never repeat under a region key: each start has a new epoch, each frame a
/// new counter, and bridges with different tags never share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub epoch: u32,
    pub counter: u64,
}

impl Sequence {
    /// The nonce of this frame from `sender`. Counters wrap at 2^48 frames.
    pub fn nonce(self, sender: NodeTag) -> [u8; 12] {
        let mut nonce = [0; 12];
        nonce[..2].copy_from_slice(&sender.0);
        nonce[2..6].copy_from_slice(&self.epoch.to_be_bytes());
        nonce[6..].copy_from_slice(&self.counter.to_be_bytes()[2..]);
        nonce
    }

    fn from_nonce(nonce: &[u8]) -> Self {
        let mut epoch = [0; 4];
        epoch.copy_from_slice(&nonce[2..6]);
        let mut counter = [0; 8];
        counter[2..].copy_from_slice(&nonce[6..12]);
        Self {
            epoch: u32::from_be_bytes(epoch),
            counter: u64::from_be_bytes(counter),
        }
    }
}

/// Why a received frame was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than any frame")]
    TooShort(usize),
    #[error("frame checksum does not match")]
    BadCrc,
    #[error("frame version {0} is not supported (this bridge speaks version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("frame has unknown flag bits {0:#03x}")]
    UnknownFlags(u8),
    #[error("frame belongs to another network (tag {0:02x?})")]
    ForeignNetwork(NetworkTag),
    #[error("frame is encrypted but no region key is configured")]
    KeyRequired,
    #[error("frame is not encrypted but this region requires its key")]
    PlaintextRefused,
    #[error("frame does not decrypt with the region key")]
    WrongKey,
    #[error("frame message is malformed: {0}")]
    Message(String),
    #[error("message of {len} bytes does not fit a frame of at most {mtu} bytes")]
    TooLarge { len: usize, mtu: usize },
}

/// Encodes and decodes the frames of one network, with or without a region key.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    network: NetworkTag,
    key: Option<RegionKey>,
}

impl FrameCodec {
    pub fn new(network: NetworkTag, key: Option<RegionKey>) -> Self {
        Self { network, key }
    }

    /// Bytes a frame adds around the postcard-encoded message.
    pub fn overhead(&self) -> usize {
        HEADER_LEN
            + CRC_LEN
            + if self.key.is_some() {
                NONCE_LEN + AEAD_TAG_LEN
            } else {
                0
            }
    }

    /// Encodes one frame no longer than `mtu`. `nonce` must never repeat under one region key:
    /// pass [`Sequence::nonce`] (it is unused without a key).
    pub fn encode(
        &self,
        sender: NodeTag,
        message: &Message,
        nonce: [u8; 12],
        mtu: usize,
    ) -> Result<Vec<u8>, FrameError> {
        let body =
            postcard::to_allocvec(message).map_err(|e| FrameError::Message(e.to_string()))?;
        let len = body.len() + self.overhead();
        if len > mtu {
            return Err(FrameError::TooLarge { len, mtu });
        }
        let mut out = Vec::with_capacity(len);
        let flags = if self.key.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        };
        out.push(VERSION << 4 | flags);
        out.extend_from_slice(&self.network.0);
        out.extend_from_slice(&sender.0);
        match &self.key {
            None => out.extend_from_slice(&body),
            Some(RegionKey(cipher)) => {
                let sealed = cipher
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: &body,
                            aad: &out,
                        },
                    )
                    .map_err(|_| FrameError::TooLarge { len, mtu })?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
        }
        out.extend_from_slice(&CRC16.checksum(&out).to_be_bytes());
        Ok(out)
    }

    /// Decodes one received frame; every failure is a typed error, never a panic.
    pub fn decode(&self, bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() < HEADER_LEN + CRC_LEN + 1 {
            return Err(FrameError::TooShort(bytes.len()));
        }
        let (content, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        if CRC16.checksum(content).to_be_bytes() != crc {
            return Err(FrameError::BadCrc);
        }
        let (header, body) = content.split_at(HEADER_LEN);
        let (version, flags) = (header[0] >> 4, header[0] & 0x0f);
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        if flags & !FLAG_ENCRYPTED != 0 {
            return Err(FrameError::UnknownFlags(flags & !FLAG_ENCRYPTED));
        }
        let network = NetworkTag([header[1], header[2]]);
        if network != self.network {
            return Err(FrameError::ForeignNetwork(network));
        }
        let sender = NodeTag([header[3], header[4]]);
        let plain;
        let mut sequence = None;
        let message_bytes = match (&self.key, flags & FLAG_ENCRYPTED != 0) {
            (None, false) => body,
            (None, true) => return Err(FrameError::KeyRequired),
            (Some(_), false) => return Err(FrameError::PlaintextRefused),
            (Some(RegionKey(cipher)), true) => {
                if body.len() < NONCE_LEN + AEAD_TAG_LEN {
                    return Err(FrameError::WrongKey);
                }
                let (nonce, sealed) = body.split_at(NONCE_LEN);
                plain = cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: header,
                        },
                    )
                    .map_err(|_| FrameError::WrongKey)?;
                sequence = Some(Sequence::from_nonce(nonce));
                &plain[..]
            }
        };
        let (message, rest) = postcard::take_from_bytes(message_bytes)
            .map_err(|e| FrameError::Message(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FrameError::Message(format!(
                "{} bytes after the message",
                rest.len()
            )));
        }
        Ok(Frame {
            sender,
            message,
            sequence,
        })
    }
}
