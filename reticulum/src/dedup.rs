//! Drops packets heard before. Reticulum floods announces and may deliver a packet over two
//! interfaces (two rnsd connections), so every packet is checked by its hash.

use std::collections::{HashSet, VecDeque};

/// Remembers the last `capacity` packet hashes (32 bytes each, plus set overhead: about
/// 100 bytes per entry); the oldest is forgotten first.
#[derive(Clone, Debug)]
pub struct DuplicateFilter {
    seen: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl DuplicateFilter {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `hash`; true if it was not seen within the window.
    pub fn insert(&mut self, hash: [u8; 32]) -> bool {
        if self.seen.contains(&hash) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(hash);
        self.order.push_back(hash);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_repeats_and_forgets_the_oldest_beyond_capacity() {
        let mut f = DuplicateFilter::new(2);
        assert!(f.insert([1; 32]));
        assert!(!f.insert([1; 32]));
        assert!(f.insert([2; 32]));
        assert!(f.insert([3; 32]));
        assert_eq!(f.len(), 2);
        assert!(f.insert([1; 32]), "forgotten, so new again");
        assert!(!f.insert([3; 32]));
    }
}
