//! A bounded set of recently seen operation ids.

use std::collections::{HashSet, VecDeque};

/// Operation ids seen recently. Bound: the capacity given at construction; the oldest id is
/// forgotten first.
#[derive(Debug)]
pub struct RecentIds {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `id`; returns whether it was new.
    pub fn insert(&mut self, id: [u8; 32]) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }

    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.set.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_its_capacity() {
        let mut ids = RecentIds::new(2);
        assert!(ids.insert([1; 32]));
        assert!(!ids.insert([1; 32]), "an id is new once");
        ids.insert([2; 32]);
        ids.insert([3; 32]);
        assert!(!ids.contains(&[1; 32]));
        assert!(ids.contains(&[2; 32]) && ids.contains(&[3; 32]));
    }
}
