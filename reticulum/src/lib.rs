//! The Reticulum wire subset lorabridge speaks: what a bridge needs to meet other bridges
//! through `rnsd` transport nodes: packets, HDLC framing, identities, announces, a path table,
//! encrypted SINGLE packets, implicit proofs, path requests and duplicate detection; and two
//! things of the bridges' own on top: a tag in every SINGLE packet that proves its sender
//! ([`sender`]), and announced ratchets that keep recorded packets from replaying
//! ([`ratchet`]).
//!
//! Written from the measured facts in `facts/reticulum.md` and checked against the reference
//! implementation on the wire (tests/tests/reticulum_*.rs); no code is taken from it. It is
//! pure: no I/O, no clock, no randomness of its own; time and seeds are inputs. The daemon's
//! async shell (`bridge/src/reticulum`) owns the TCP connections, the clock and the random
//! source, and feeds [`Endpoint`] bytes, time and seeds.
//!
//! A crate of its own, apart from `lorabridge-proto`, because it is a second wire protocol
//! beside the mesh's, with crypto crates (X25519, Ed25519, HKDF, HMAC-SHA256, AES-CBC) that
//! nothing else uses. It takes only the mesh's names from `lorabridge-proto` (the network and
//! topic tags, the summary's topic bound); the policy that maps peers to sync-engine links
//! lives in the daemon, beside the shell (`bridge/src/reticulum/peers.rs`).
//!
//! Bounds: the path table holds `max_peers` destinations, the duplicate filter
//! `duplicate_window` hashes, receipts `max_receipts`, the transmit queue `max_queued`
//! packets, the path-request rate limiter 256 destinations, the event queue 4096 events, and
//! the HDLC deframer one MTU-sized frame, our ratchets `ratchet::KEPT` keys.
//!
//! Anyone can announce a destination with our name: the path table and the daemon's engine
//! links (its `PeerLinks`) are bounded, and give way to announced identities before peers
//! that have proven themselves with frames; an allow-list of peer identities is not
//! implemented. Reticulum links and resources (phase 2) are not implemented: mesh frames fit
//! one SINGLE packet because the engine fragments to [`MAX_FRAME`].

pub mod announce;
pub mod dedup;
pub mod endpoint;
pub mod hdlc;
pub mod identity;
pub mod packet;
pub mod path;
pub mod ratchet;
pub mod sender;
pub mod token;

pub use announce::{Announce, AnnounceError, BridgeAppData, bridge_destination_name};
pub use endpoint::{
    Endpoint, EndpointConfig, EndpointStats, Event, Handled, MAX_FRAME, MAX_PLAINTEXT, Rejection,
    SendError,
};
pub use identity::{Identity, KeyError, PublicIdentity};
pub use packet::{Hash16, MTU, Packet, PacketError};

#[cfg(test)]
mod tests;
