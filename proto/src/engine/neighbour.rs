//! What the engine knows of the bridges it hears, and its counters per link.

use std::time::Duration;

use super::EngineTime;
use crate::tags::NodeTag;

/// How long a tag must have been heard before its sender is known without an operation of
/// its own: a quiet bridge that only listens is known after this, while tags invented for
/// each forged frame never are. Ten minutes covers several Trickle rounds of a fresh mesh.
pub const ACQUAINTANCE: Duration = Duration::from_secs(10 * 60);

/// A bridge heard on a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    pub tag: NodeTag,
    /// When a frame under this tag was first heard: an attacker that invents a tag for each
    /// frame never grows old here.
    pub first_heard: EngineTime,
    pub last_heard: EngineTime,
    pub rssi_dbm: Option<f32>,
    pub snr_db: Option<f32>,
    pub frames: u64,
    /// Operations heard from it whose signatures checked out, new to us or not: anyone can
    /// send a frame under any tag, but only a real node sends these.
    pub ops: u64,
}

impl Neighbour {
    /// Whether it is known here rather than a stranger: an operation of its checked out, or
    /// its tag has been heard for `ACQUAINTANCE`. A known neighbour's partial operations keep
    /// their reassembly slots before strangers', its requests are answered beyond the
    /// strangers' pool (see `answers::Requester`), and it is forgotten after the strangers.
    pub fn known(&self, now: EngineTime) -> bool {
        self.ops > 0 || now.duration_since(self.first_heard) >= ACQUAINTANCE
    }
}

/// Counters per link, for status and for measuring the protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub airtime_sent: Duration,
    pub summaries_sent: u64,
    pub vectors_sent: u64,
    pub wants_sent: u64,
    pub ops_sent: u64,
    pub fragments_sent: u64,
    pub hellos_sent: u64,
    pub key_wants_sent: u64,
    pub frames_heard: u64,
    pub frames_rejected: u64,
    pub ops_received: u64,
    pub duplicates: u64,
    pub cancelled: u64,
    pub budget_refusals: u64,
    /// Frames the transport failed to send (they were queued again).
    pub send_failures: u64,
}

impl std::ops::AddAssign for LinkStats {
    /// Sums counters, e.g. over the links of one transport.
    fn add_assign(&mut self, o: LinkStats) {
        let LinkStats {
            frames_sent,
            bytes_sent,
            airtime_sent,
            summaries_sent,
            vectors_sent,
            wants_sent,
            ops_sent,
            fragments_sent,
            hellos_sent,
            key_wants_sent,
            frames_heard,
            frames_rejected,
            ops_received,
            duplicates,
            cancelled,
            budget_refusals,
            send_failures,
        } = o;
        self.frames_sent += frames_sent;
        self.bytes_sent += bytes_sent;
        self.airtime_sent += airtime_sent;
        self.summaries_sent += summaries_sent;
        self.vectors_sent += vectors_sent;
        self.wants_sent += wants_sent;
        self.ops_sent += ops_sent;
        self.fragments_sent += fragments_sent;
        self.hellos_sent += hellos_sent;
        self.key_wants_sent += key_wants_sent;
        self.frames_heard += frames_heard;
        self.frames_rejected += frames_rejected;
        self.ops_received += ops_received;
        self.duplicates += duplicates;
        self.cancelled += cancelled;
        self.budget_refusals += budget_refusals;
        self.send_failures += send_failures;
    }
}
