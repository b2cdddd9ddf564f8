//! The seen set's table of keys: open addressing, each key stored in its slot.
//!
//! A probe of a set of a million ids is a cache miss or two: std's `HashSet` (hashbrown)
//! reads a group of control bytes, then the key in a separate array, and an insert writes
//! both. Here a key is looked for in its slot and the ones after it (linear probing, four
//! slots to a cache line), so a probe usually touches one line, and the insert after a probe
//! of the same key (the receive path asks before verifying and inserts after) finds that
//! line still cached. Removal shifts the keys after the removed one back (no tombstones, so
//! probes stay short however many ids expire).

use std::hash::{BuildHasher, Hasher};

/// The table never holds more than this share of its slots (in eighths): unsuccessful
/// probes stay within one or two cache lines.
const MAX_LOAD_EIGHTHS: usize = 6;
/// The smallest table allocated.
const MIN_SLOTS: usize = 64;

/// A set of 16-byte keys (the seen set's `Key`s), hashed by `S`. The all-zero key (which
/// only an empty id packet makes) marks an empty slot, so it is kept aside as a flag.
#[derive(Debug)]
pub(crate) struct KeySet<S> {
    /// A power of two of slots, or none before the first insert.
    slots: Vec<[u64; 2]>,
    /// Keys in `slots` (the zero key not counted).
    used: usize,
    zero: bool,
    hash: S,
}

const EMPTY: [u64; 2] = [0, 0];

impl<S: BuildHasher> KeySet<S> {
    pub(crate) fn new(hash: S) -> KeySet<S> {
        KeySet {
            slots: Vec::new(),
            used: 0,
            zero: false,
            hash,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.used + usize::from(self.zero)
    }

    /// Keys the table holds before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() * MAX_LOAD_EIGHTHS / 8
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where `k`'s probe starts.
    fn home(&self, k: [u64; 2]) -> usize {
        let mut h = self.hash.build_hasher();
        h.write_u64(k[0]);
        h.write_u64(k[1]);
        h.finish() as usize & self.mask()
    }

    /// The slot holding `k`, or the empty slot that ends its probe (`Err`). The table must
    /// have slots.
    fn find(&self, k: [u64; 2]) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(k);
        // The load bound leaves empty slots, so the probe ends; the bound on steps is for
        // the compiler and the linter, not a case that happens.
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(&s) if s == k => return Ok(i),
                Some(&EMPTY) | None => return Err(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
        Err(i)
    }

    pub(crate) fn contains(&self, k: [u64; 2]) -> bool {
        if k == EMPTY {
            return self.zero;
        }
        !self.slots.is_empty() && self.find(k).is_ok()
    }

    /// Adds `k`; false when it was there already.
    pub(crate) fn insert(&mut self, k: [u64; 2]) -> bool {
        if k == EMPTY {
            return !std::mem::replace(&mut self.zero, true);
        }
        if (self.used + 1) * 8 > self.slots.len() * MAX_LOAD_EIGHTHS {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS));
        }
        match self.find(k) {
            Ok(_) => false,
            Err(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = k;
                    self.used += 1;
                }
                true
            }
        }
    }

    /// Removes `k`; false when it was not there.
    pub(crate) fn remove(&mut self, k: [u64; 2]) -> bool {
        if k == EMPTY {
            return std::mem::take(&mut self.zero);
        }
        if self.slots.is_empty() {
            return false;
        }
        let Ok(mut hole) = self.find(k) else {
            return false;
        };
        // Backward shift: each key after the hole that may sit there (its probe starts at
        // or before the hole, cyclically) moves into it, until an empty slot.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(&next) = self.slots.get(j) else {
                break;
            };
            if next == EMPTY {
                break;
            }
            let home = self.home(next);
            // Distances from the key's home to the hole and to where it sits now.
            if (hole.wrapping_sub(home) & mask) < (j.wrapping_sub(home) & mask) {
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = next;
                }
                hole = j;
            }
        }
        if let Some(slot) = self.slots.get_mut(hole) {
            *slot = EMPTY;
        }
        self.used -= 1;
        true
    }

    /// Gives back the room of a table much larger than its keys need (after expiry): the
    /// smallest power of two the load bound allows, with room to double.
    pub(crate) fn shrink(&mut self) {
        let need = (self.used * 8 / MAX_LOAD_EIGHTHS + 1).next_power_of_two() * 2;
        if self.used == 0 {
            self.slots = Vec::new();
        } else if need.max(MIN_SLOTS) < self.slots.len() {
            self.resize(need.max(MIN_SLOTS));
        }
    }

    /// Moves every key into a table of `n` slots (a power of two).
    fn resize(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        for k in old.into_iter().filter(|&k| k != EMPTY) {
            if let Err(i) = self.find(k) {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = k;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::collections::HashSet;

    fn key(n: u64) -> [u64; 2] {
        [n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n]
    }

    #[test]
    fn the_same_answers_as_a_hash_set_through_growth_removal_and_shrinking() {
        let mut ours = KeySet::new(RandomState::new());
        let mut theirs = HashSet::new();
        let mut x = 1u64;
        for step in 0..200_000u64 {
            // xorshift: inserts, removals and probes of keys from a small range (so that
            // they meet), and long runs of inserts then removals (so that the table grows
            // and shrinks).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key(x % 5_000 + u64::from(step % 50_000 < 100));
            let phase = step / 50_000;
            match (x >> 40) % 4 {
                0 | 1 if phase % 2 == 0 => assert_eq!(ours.insert(k), theirs.insert(k)),
                0 | 1 => assert_eq!(ours.remove(k), theirs.remove(&k)),
                2 => assert_eq!(ours.contains(k), theirs.contains(&k)),
                _ => assert_eq!(ours.remove(k), theirs.remove(&k)),
            }
            assert_eq!(ours.len(), theirs.len());
            if step % 997 == 0 {
                ours.shrink();
            }
        }
        for k in &theirs {
            assert!(ours.contains(*k));
        }
    }

    #[test]
    fn keys_that_share_a_home_are_all_found_after_removals() {
        // A table of 64 slots and keys chosen to start their probes at one slot, wrapping
        // around the end.
        let mut set = KeySet::new(RandomState::new());
        assert!(set.insert(key(1)));
        let mask = set.mask();
        let target = mask; // the last slot: the cluster wraps to the start
        let same: Vec<[u64; 2]> = (2..100_000)
            .map(key)
            .filter(|k| set.home(*k) == target)
            .take(10)
            .collect();
        assert_eq!(same.len(), 10);
        for k in &same {
            assert!(set.insert(*k));
        }
        assert_eq!(set.slots.len(), 64);
        for (i, k) in same.iter().enumerate() {
            assert!(set.remove(*k));
            assert!(!set.contains(*k));
            assert!(same[i + 1..].iter().all(|k| set.contains(*k)));
        }
        assert!(set.contains(key(1)));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn the_zero_key_is_a_key_like_any_other() {
        let mut set = KeySet::new(RandomState::new());
        let zero = [0, 0];
        assert!(!set.contains(zero));
        assert!(set.insert(zero));
        assert!(!set.insert(zero));
        assert!(set.contains(zero));
        assert_eq!(set.len(), 1);
        assert!(set.remove(zero));
        assert!(!set.remove(zero));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn the_table_shrinks_to_what_its_keys_need() {
        let mut set = KeySet::new(RandomState::new());
        for n in 0..100_000 {
            set.insert(key(n));
        }
        assert!(set.capacity() >= 100_000);
        for n in 100..100_000 {
            assert!(set.remove(key(n)));
        }
        set.shrink();
        assert!(set.slots.len() <= 512, "{}", set.slots.len());
        assert!((0..100).all(|n| set.contains(key(n))));
        for n in 0..100 {
            set.remove(key(n));
        }
        set.shrink();
        assert_eq!(set.capacity(), 0);
    }
}
