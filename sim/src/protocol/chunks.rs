//! Reassembly of a baseline's multi-frame messages, bounded: both baselines split a canonical
//! operation into numbered chunks and collect them here, keyed by whatever names a message.

use std::collections::BTreeMap;
use std::time::Duration;

/// Partial messages held; the oldest is dropped past this.
const MAX_PARTIAL: usize = 64;
/// A partial message is dropped this long after its first chunk.
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(600);

struct Partial {
    since: Duration,
    chunks: Vec<Option<Vec<u8>>>,
}

/// Memory: at most 64 partial messages of at most 255 chunks each.
pub(super) struct Chunks<K> {
    partial: BTreeMap<K, Partial>,
}

impl<K: Ord + Copy> Chunks<K> {
    pub fn new() -> Self {
        Self {
            partial: BTreeMap::new(),
        }
    }

    /// Adds chunk `index` of `count` of message `key`; returns the whole message once every
    /// chunk is in. Chunks that contradict the message's chunk count are ignored.
    pub fn add(
        &mut self,
        now: Duration,
        key: K,
        index: usize,
        count: usize,
        chunk: &[u8],
    ) -> Option<Vec<u8>> {
        if count == 0 || index >= count {
            return None;
        }
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL {
            let oldest = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.partial.remove(&oldest);
            }
        }
        let partial = self.partial.entry(key).or_insert_with(|| Partial {
            since: now,
            chunks: vec![None; count],
        });
        if partial.chunks.len() != count {
            return None;
        }
        partial.chunks[index] = Some(chunk.to_vec());
        if !partial.chunks.iter().all(Option::is_some) {
            return None;
        }
        let partial = self.partial.remove(&key)?;
        Some(partial.chunks.into_iter().flatten().flatten().collect())
    }

    /// Drops partial messages that timed out.
    pub fn expire(&mut self, now: Duration) {
        self.partial
            .retain(|_, p| now.saturating_sub(p.since) < PARTIAL_TIMEOUT);
    }

    /// When the oldest partial message times out.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.partial
            .values()
            .map(|p| p.since + PARTIAL_TIMEOUT)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_in_any_order_and_stays_bounded() {
        let mut chunks = Chunks::new();
        let t = Duration::ZERO;
        assert_eq!(chunks.add(t, 1u32, 1, 2, b"lo"), None);
        assert_eq!(chunks.add(t, 1, 5, 2, b"??"), None, "index beyond count");
        assert_eq!(chunks.add(t, 1, 0, 3, b"??"), None, "count contradicts");
        assert_eq!(chunks.add(t, 1, 0, 2, b"hel"), Some(b"hello".to_vec()));
        for key in 0..100u32 {
            chunks.add(Duration::from_secs(u64::from(key)), key, 0, 2, b"x");
        }
        assert_eq!(chunks.partial.len(), MAX_PARTIAL);
        assert!(!chunks.partial.contains_key(&0), "the oldest went first");
        chunks.expire(Duration::from_secs(98) + PARTIAL_TIMEOUT);
        assert_eq!(chunks.partial.len(), 1);
        assert_eq!(
            chunks.next_timeout(),
            Some(Duration::from_secs(99) + PARTIAL_TIMEOUT)
        );
    }
}
