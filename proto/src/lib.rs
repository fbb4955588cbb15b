//! The lorabridge mesh wire format: frames, messages, compact operations, fragments.
//!
//! Everything here is pure: bytes and a caller-supplied `now` in, bytes and decisions out.
//! No I/O, no clock, no randomness of its own, so the daemon and the simulator run it alike.

mod bytes;
mod cbor;
pub mod compact;
pub mod engine;
pub mod fragment;
pub mod frame;
pub mod header;
pub mod message;
mod node_header;
pub mod operation;
pub mod recent;
pub mod tags;

pub use compact::{CompactError, DecodedOp, OpContext};
pub use fragment::{Reassembler, ReassemblyLimits};
pub use frame::{Frame, FrameCodec, FrameError, RegionKey, Sequence};
pub use message::Message;
pub use operation::{NewOp, RawOp};
pub use tags::{AuthorTag, NetworkTag, NodeTag, OpTag, TopicTag};
