//! The waterfall's memory of broadcast ids: constant cost per message, bounded size.
//!
//! py2p keeps a deque that it scans and rebuilds for every message, so its cost grows with
//! traffic. Here a hash set answers "seen?" and a min-heap on message time expires entries
//! (by time, not arrival: one message stamped in the future must not hold the others back).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

/// A message id reduced to a fixed-size key: its first 24 characters. Ids are base-58 of a
/// sha-384 digest, so 24 characters carry about 140 bits of it.
type Key = [u8; 24];

fn key(id: &str) -> Key {
    key_bytes(id.as_bytes())
}

fn key_bytes(id: &[u8]) -> Key {
    let mut k = [0u8; 24];
    for (slot, &b) in k.iter_mut().zip(id) {
        *slot = b;
    }
    k
}

/// Broadcast ids seen in the last `expiry` seconds, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct Seen {
    set: HashSet<Key>,
    order: BinaryHeap<Reverse<(u64, Key)>>,
    capacity: usize,
    expiry: u64,
    /// Entries dropped because the capacity was reached before they expired.
    pub evicted: u64,
}

impl Seen {
    pub fn new(capacity: usize, expiry_secs: u64) -> Seen {
        Seen {
            set: HashSet::new(),
            order: BinaryHeap::new(),
            capacity: capacity.max(1),
            expiry: expiry_secs,
            evicted: 0,
        }
    }

    /// Remembers `id` (sent at `time`); false when it was already remembered.
    pub fn insert(&mut self, id: &str, time: u64) -> bool {
        let k = key(id);
        if !self.set.insert(k) {
            return false;
        }
        self.order.push(Reverse((time, k)));
        while self.order.len() > self.capacity {
            if let Some(Reverse((_, old))) = self.order.pop() {
                self.set.remove(&old);
                self.evicted += 1;
            }
        }
        true
    }

    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(&key(id))
    }

    /// Whether an id, as the bytes of its packet (not yet checked), was remembered.
    pub fn contains_bytes(&self, id: &[u8]) -> bool {
        self.set.contains(&key_bytes(id))
    }

    /// Forgets ids whose message time is more than `expiry` before `now`: such messages are
    /// refused for their age anyway.
    pub fn expire(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.expiry);
        while let Some(&Reverse((time, k))) = self.order.peek() {
            if time >= cutoff {
                break;
            }
            self.order.pop();
            self.set.remove(&k);
        }
        if self.order.capacity() > 4 * self.order.len().max(1024) {
            self.order.shrink_to_fit();
            self.set.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_expiry_and_capacity() {
        let mut s = Seen::new(3, 60);
        assert!(s.insert("a", 100));
        assert!(!s.insert("a", 100));
        assert!(s.insert("b", 150));
        s.expire(161);
        assert!(!s.contains("a"));
        assert!(s.contains("b"));
        assert!(s.insert("c", 150));
        assert!(s.insert("d", 150));
        assert!(s.insert("e", 150));
        assert_eq!(s.len(), 3);
        assert_eq!(s.evicted, 1);
        assert!(!s.contains("b"));
    }

    #[test]
    fn a_future_stamp_does_not_hold_back_expiry() {
        let mut s = Seen::new(100, 60);
        assert!(s.insert("future", 10_000));
        assert!(s.insert("old", 100));
        s.expire(200);
        assert!(!s.contains("old"));
        assert!(s.contains("future"));
        assert_eq!(s.len(), 1);
    }
}
