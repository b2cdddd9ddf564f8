//! The waterfall's memory of broadcast ids: constant cost per message, bounded size.
//!
//! py2p keeps a deque that it scans and rebuilds for every message, so its cost grows with
//! traffic. Here a hash set answers "seen?" and a min-heap on message time expires entries
//! (by time, not arrival: one message stamped in the future must not hold the others back).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};

/// A message id reduced to a fixed-size key: its first 16 characters, as two words. Ids
/// are base-58 of a sha-384 digest, so 16 characters carry about 90 bits of it (no two of
/// 10^9 ids share a key by chance, and a peer cannot aim at another message's key without
/// knowing its digest); 16 bytes instead of 24 make the set and its queues a third smaller,
/// which is what a probe of a set of 100k+ ids costs (cache misses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(pub(crate) [u64; 2]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

pub(crate) fn key_bytes(id: &[u8]) -> Key {
    let mut k = [0u8; 16];
    for (slot, &b) in k.iter_mut().zip(id) {
        *slot = b;
    }
    let mut words = [0u64; 2];
    for (w, chunk) in words.iter_mut().zip(k.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
    Key(words)
}

/// The seen set's hash: a multiply-rotate over the key's two words from a random seed per
/// set, then a finaliser. Keys are taken from sha-384 digests (a peer cannot choose them
/// without hashing for each) and the seed is unknown to peers, so SipHash's defence against
/// chosen keys buys nothing here; this costs a few cycles instead of SipHash's ~25 ns.
#[derive(Debug, Clone)]
pub(crate) struct IdHash {
    seed: u64,
}

impl IdHash {
    /// A hash from a random seed.
    pub(crate) fn new() -> IdHash {
        IdHash {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.seed)
    }
}

/// The hasher of [`IdHash`] (and, from a zero seed, of the mesh core's peer map:
/// `ConnHash`): a multiply-rotate per word, then murmur3's finaliser.
pub(crate) struct IdHasher(pub(crate) u64);

impl Hasher for IdHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        // murmur3's 64-bit finaliser: every bit of the state reaches the low (bucket) bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Broadcast ids seen in the last `expiry` seconds, at most `capacity` of them.
///
/// The ids are kept in buckets by message time (a map of seconds, each a queue in arrival
/// order): a message stamped in the future waits in its own bucket without holding the others
/// back, and the usual insert is a push at the end of the current second's queue (a min-heap
/// of single ids cost a third of the set's time, profiled).
#[derive(Debug)]
pub(crate) struct Seen {
    set: HashSet<Key, IdHash>,
    order: BTreeMap<u64, VecDeque<Key>>,
    len: usize,
    capacity: usize,
    expiry: u64,
    /// Entries dropped because the capacity was reached before they expired.
    pub evicted: u64,
}

impl Seen {
    pub fn new(capacity: usize, expiry_secs: u64) -> Seen {
        Seen {
            set: HashSet::with_hasher(IdHash::new()),
            order: BTreeMap::new(),
            len: 0,
            capacity: capacity.max(1),
            expiry: expiry_secs,
            evicted: 0,
        }
    }

    /// Remembers `id` (the bytes of its packet, sent at `time`); false when it was already
    /// remembered.
    pub fn insert(&mut self, id: &[u8], time: u64) -> bool {
        let k = key_bytes(id);
        if !self.set.insert(k) {
            return false;
        }
        match self.order.last_entry() {
            Some(mut last) if *last.key() == time => last.get_mut().push_back(k),
            _ => self.order.entry(time).or_default().push_back(k),
        }
        self.len += 1;
        while self.len > self.capacity {
            // The oldest second's first arrival goes first.
            let Some(mut oldest) = self.order.first_entry() else {
                break;
            };
            if let Some(old) = oldest.get_mut().pop_front() {
                self.set.remove(&old);
                self.len -= 1;
                self.evicted += 1;
            }
            if oldest.get().is_empty() {
                oldest.remove();
            }
        }
        true
    }

    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(&key_bytes(id.as_bytes()))
    }

    /// Whether the id of `key` (see [`key_bytes`]: made from the bytes of an id packet, not
    /// yet checked) was remembered.
    pub fn contains_key(&self, key: Key) -> bool {
        self.set.contains(&key)
    }

    /// Forgets ids whose message time is more than `expiry` before `now`: such messages are
    /// refused for their age anyway.
    pub fn expire(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.expiry);
        while let Some(oldest) = self.order.first_entry() {
            if *oldest.key() >= cutoff {
                break;
            }
            let keys = oldest.remove();
            self.len -= keys.len();
            for k in keys {
                self.set.remove(&k);
            }
        }
        if self.set.capacity() > 4 * self.len.max(1024) {
            self.set.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_expiry_and_capacity() {
        let mut s = Seen::new(3, 60);
        assert!(s.insert(b"a", 100));
        assert!(!s.insert(b"a", 100));
        assert!(s.insert(b"b", 150));
        s.expire(161);
        assert!(!s.contains("a"));
        assert!(s.contains("b"));
        assert!(s.insert(b"c", 150));
        assert!(s.insert(b"d", 150));
        assert!(s.insert(b"e", 150));
        assert_eq!(s.len(), 3);
        assert_eq!(s.evicted, 1);
        assert!(!s.contains("b"));
    }

    #[test]
    fn a_future_stamp_does_not_hold_back_expiry() {
        let mut s = Seen::new(100, 60);
        assert!(s.insert(b"future", 10_000));
        assert!(s.insert(b"old", 100));
        s.expire(200);
        assert!(!s.contains("old"));
        assert!(s.contains("future"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_capacity_evicts_the_oldest_second_in_arrival_order() {
        let mut s = Seen::new(1_000, 60);
        let ids: Vec<String> = (0..1_500).map(|i| format!("{i:016}-id")).collect();
        // Two seconds, then an early stamp that arrives last.
        for (i, id) in ids.iter().enumerate().take(1_400) {
            assert!(s.insert(id.as_bytes(), if i < 700 { 100 } else { 101 }));
        }
        for id in &ids[1_400..] {
            assert!(s.insert(id.as_bytes(), 99));
        }
        assert_eq!(s.len(), 1_000);
        assert_eq!(s.evicted, 500);
        // The first 400 arrivals of second 100 made room for the rest of 100 and 101; then
        // each early id (second 99) was the oldest at once and made room for itself, as with
        // the min-heap before.
        assert!(ids[1_400..].iter().all(|id| !s.contains(id)));
        assert!(ids[..400].iter().all(|id| !s.contains(id)));
        assert!(ids[400..1_400].iter().all(|id| s.contains(id)));
        assert!(!s.insert(ids[400].as_bytes(), 100));
        s.expire(161);
        assert_eq!(s.len(), 700);
        assert!(ids[700..1_400].iter().all(|id| s.contains(id)));
        s.expire(162);
        assert_eq!(s.len(), 0);
        assert!(s.insert(ids[0].as_bytes(), 200));
    }
}
