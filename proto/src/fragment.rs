//! Splitting an encoded operation into frame-sized messages, and putting it back together.
//!
//! Memory a neighbour can make us hold is bounded by `ReassemblyLimits`: with the defaults at
//! most 16 partial operations (2 per sender) and 64 KiB in all. When a limit is reached the
//! partial operation heard from least recently is dropped; anti-entropy asks for it again.

use std::time::Duration;

use thiserror::Error;

use crate::bytes::varint_len;
use crate::compact::MAX_OP_BYTES;
use crate::message::{Fragment, MAX_CHUNK, Message};
use crate::tags::{NodeTag, OpTag};

/// Bytes of a Fragment message besides its data: variant, op tag, index, count (+ data length).
const FRAGMENT_FIXED: usize = 1 + 4 + 1 + 1;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SplitError {
    #[error("a message capacity of {0} bytes cannot carry fragments")]
    CapacityTooSmall(usize),
    #[error("operation of {len} bytes needs more than 255 fragments of {chunk} bytes")]
    TooManyFragments { len: usize, chunk: usize },
}

/// Splits `op` (an encoded operation) into messages whose postcard encoding is at most
/// `capacity` bytes (the link MTU minus `FrameCodec::overhead`): one `Op` message if it fits,
/// else `Fragment`s.
pub fn split(op: &[u8], tag: OpTag, capacity: usize) -> Result<Vec<Message>, SplitError> {
    if op.len() <= MAX_CHUNK && 1 + varint_len(op.len() as u64) + op.len() <= capacity {
        return Ok(vec![Message::Op(op.iter().copied().collect())]);
    }
    let chunk = (1..=MAX_CHUNK.min(capacity))
        .rev()
        .find(|n| FRAGMENT_FIXED + varint_len(*n as u64) + n <= capacity)
        .ok_or(SplitError::CapacityTooSmall(capacity))?;
    let count = op.len().div_ceil(chunk);
    let count = u8::try_from(count).map_err(|_| SplitError::TooManyFragments {
        len: op.len(),
        chunk,
    })?;
    Ok(op
        .chunks(chunk)
        .enumerate()
        .map(|(index, data)| {
            Message::Fragment(Fragment {
                op: tag,
                index: index as u8,
                count,
                data: data.iter().copied().collect(),
            })
        })
        .collect())
}

/// Bounds on reassembly state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Partial operations kept per sender.
    pub per_sender: usize,
    /// Partial operations kept in all.
    pub total_ops: usize,
    /// Fragment bytes kept in all.
    pub total_bytes: usize,
    /// A partial operation not added to for this long is dropped.
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    /// Two minutes covers a two-fragment op even at SF12 with a 1 % duty cycle between sends.
    fn default() -> Self {
        Self {
            per_sender: 2,
            total_ops: 16,
            total_bytes: 64 * 1024,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReassemblyError {
    #[error("fragment {index} of {count} is out of range")]
    BadIndex { index: u8, count: u8 },
    #[error("fragment says {got} fragments, earlier ones said {expected}")]
    CountMismatch { expected: u8, got: u8 },
    #[error("reassembled operation would exceed {MAX_OP_BYTES} bytes")]
    TooLarge,
}

#[derive(Debug)]
struct Partial {
    sender: NodeTag,
    /// The sender is a known node (see [`Reassembler::push`]).
    known: bool,
    op: OpTag,
    chunks: Vec<Option<Vec<u8>>>,
    bytes: usize,
    last_heard: Duration,
}

/// Collects fragments per (sender, op tag) until an operation is whole.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partials: Vec<Partial>,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            partials: Vec::new(),
        }
    }

    /// Adds one fragment heard at `now`; returns the whole operation once its last piece is in.
    ///
    /// `known` says the sender has sent operations that checked out. Sender tags are not
    /// authenticated, so when the bounds are reached a stranger's partials go first, and a
    /// stranger's new partial never displaces a known sender's: strangers sending fragments
    /// under made-up tags cannot push out what honest neighbours are halfway through.
    pub fn push(
        &mut self,
        now: Duration,
        sender: NodeTag,
        known: bool,
        fragment: &Fragment,
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        let Fragment {
            op,
            index,
            count,
            data,
        } = fragment;
        if *count == 0 || index >= count {
            return Err(ReassemblyError::BadIndex {
                index: *index,
                count: *count,
            });
        }
        self.expire(now);
        let slot = match self
            .partials
            .iter()
            .position(|p| p.sender == sender && p.op == *op)
        {
            Some(slot) => slot,
            None => match self.start(now, sender, known, *op, *count) {
                Some(slot) => slot,
                None => return Ok(None),
            },
        };
        let partial = &mut self.partials[slot];
        if partial.chunks.len() != usize::from(*count) {
            return Err(ReassemblyError::CountMismatch {
                expected: partial.chunks.len() as u8,
                got: *count,
            });
        }
        partial.last_heard = now;
        if partial.chunks[usize::from(*index)].is_none() {
            if partial.bytes + data.len() > MAX_OP_BYTES {
                self.partials.swap_remove(slot);
                return Err(ReassemblyError::TooLarge);
            }
            partial.bytes += data.len();
            partial.chunks[usize::from(*index)] = Some(data.to_vec());
        }
        if partial.chunks.iter().all(Option::is_some) {
            let whole = self
                .partials
                .swap_remove(slot)
                .chunks
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            return Ok(Some(whole));
        }
        let key = (sender, *op);
        self.make_room(key);
        Ok(None)
    }

    /// Makes a slot for a new partial; `None` when only known senders' partials could make
    /// room for a stranger's.
    fn start(
        &mut self,
        now: Duration,
        sender: NodeTag,
        known: bool,
        op: OpTag,
        count: u8,
    ) -> Option<usize> {
        if self.partials.iter().filter(|p| p.sender == sender).count() >= self.limits.per_sender {
            self.evict(|p| p.sender == sender);
        }
        if self.partials.len() >= self.limits.total_ops {
            let made_room = self.evict(|p| !p.known) || (known && self.evict(|_| true));
            if !made_room {
                return None;
            }
        }
        self.partials.push(Partial {
            sender,
            known,
            op,
            chunks: vec![None; usize::from(count)],
            bytes: 0,
            last_heard: now,
        });
        Some(self.partials.len() - 1)
    }

    /// Drops other partials, strangers' first and then the least recently heard, until the
    /// byte bound holds again.
    fn make_room(&mut self, keep: (NodeTag, OpTag)) {
        while self.buffered_bytes() > self.limits.total_bytes && self.partials.len() > 1 {
            let other = |p: &Partial| (p.sender, p.op) != keep;
            if !self.evict(|p| other(p) && !p.known) {
                self.evict(other);
            }
        }
    }

    /// Removes the least recently heard partial matching `which`; false if none matched.
    fn evict(&mut self, which: impl Fn(&Partial) -> bool) -> bool {
        let Some(oldest) = (0..self.partials.len())
            .filter(|i| which(&self.partials[*i]))
            .min_by_key(|i| self.partials[*i].last_heard)
        else {
            return false;
        };
        self.partials.remove(oldest);
        true
    }

    /// Drops partial operations that timed out by `now`.
    pub fn expire(&mut self, now: Duration) {
        let timeout = self.limits.timeout;
        self.partials
            .retain(|p| now.saturating_sub(p.last_heard) < timeout);
    }

    /// When the next partial operation times out, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.partials
            .iter()
            .map(|p| p.last_heard + self.limits.timeout)
            .min()
    }

    /// Fragment bytes held now.
    pub fn buffered_bytes(&self) -> usize {
        self.partials.iter().map(|p| p.bytes).sum()
    }

    /// Partial operations held now.
    pub fn partial_ops(&self) -> usize {
        self.partials.len()
    }
}
