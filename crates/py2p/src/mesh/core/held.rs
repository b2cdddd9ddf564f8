//! Relays held back for the rest of the turn: a peer that sends us a copy of a broadcast
//! while our relay of it to that peer is still held gets none (it has the broadcast).
//!
//! In a mesh every node receives most broadcasts from several peers, and relays each to
//! every peer but the one it came from: across the network, most links carry a broadcast
//! both ways. The event loop writes once per turn, after all the turn's input was handled
//! (`Service::before_write`); until then the node's relays wait here, and a copy that comes
//! in meanwhile from a peer the relay was meant for takes that peer off the relay. Nothing
//! is lost: the peer had sent us that broadcast, so it has seen it (and would drop our copy
//! as a duplicate).
//!
//! Held relays keep their order among themselves and go out before any other frame the node
//! sends (the core releases them first: see `MeshCore::release_relays`), so the frames each
//! peer receives keep the order they had when relays were queued at once.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use py2p_net::{ConnId, Frame, Net};

use crate::mesh::seen::IdHasher;

/// One relayed broadcast of the turn: its id (in `HeldRelays::ids`) and its sends.
struct Relay {
    id: std::ops::Range<usize>,
    sends: std::ops::Range<usize>,
}

/// A hash of ids from a random seed per node, over their first 16 bytes (ids are base-58
/// sha-384 digests checked before a relay is held, so a peer cannot choose them cheaply).
#[derive(Clone)]
struct Seeded(u64);

impl BuildHasher for Seeded {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

/// The relays of the current turn, in the order they were made (see the module docs).
pub(crate) struct HeldRelays {
    relays: Vec<Relay>,
    /// The relays' ids, one after the other.
    ids: Vec<u8>,
    /// Every relay's frames, in order; a send taken back is `None`.
    sends: Vec<(ConnId, Option<Frame>)>,
    /// A relay by the hash of its id (the first relay of an id, if two ids hash alike).
    index: HashMap<u64, usize, Seeded>,
    hasher: Seeded,
}

/// Held sends kept as room between turns; beyond it the lists are given back.
const KEEP: usize = 4096;

impl HeldRelays {
    pub(crate) fn new() -> HeldRelays {
        let seed = RandomState::new().hash_one(0x4e1d_u64);
        HeldRelays {
            relays: Vec::new(),
            ids: Vec::new(),
            sends: Vec::new(),
            index: HashMap::with_hasher(Seeded(seed)),
            hasher: Seeded(seed),
        }
    }

    fn hash(&self, id: &[u8]) -> u64 {
        let mut words = [0u64; 2];
        for (w, chunk) in words.iter_mut().zip(id.chunks(8)) {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(chunk) {
                *d = *s;
            }
            *w = u64::from_le_bytes(b);
        }
        self.hasher.hash_one((words[0], words[1], id.len() as u64))
    }

    /// Whether no relay is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// Begins the relay of broadcast `id`; its frames follow with [`HeldRelays::push`].
    pub(crate) fn begin(&mut self, id: &[u8]) {
        let start = self.ids.len();
        self.ids.extend_from_slice(id);
        let n = self.relays.len();
        self.relays.push(Relay {
            id: start..self.ids.len(),
            sends: self.sends.len()..self.sends.len(),
        });
        let h = self.hash(id);
        self.index.entry(h).or_insert(n);
    }

    /// A frame of the relay begun last, for `conn`.
    pub(crate) fn push(&mut self, conn: ConnId, frame: Frame) {
        self.sends.push((conn, Some(frame)));
        if let Some(r) = self.relays.last_mut() {
            r.sends.end = self.sends.len();
        }
    }

    /// `conn` sent us a copy of broadcast `id`: our held relay of it to `conn`, if any, is
    /// dropped. Whether one was.
    pub(crate) fn withdraw(&mut self, conn: ConnId, id: &[u8]) -> bool {
        if self.relays.is_empty() {
            return false;
        }
        let Some(&n) = self.index.get(&self.hash(id)) else {
            return false;
        };
        let Some(relay) = self.relays.get(n) else {
            return false;
        };
        if self.ids.get(relay.id.clone()) != Some(id) {
            return false;
        }
        let sends = self.sends.get_mut(relay.sends.clone()).unwrap_or_default();
        for (c, frame) in sends {
            if *c == conn && frame.is_some() {
                *frame = None;
                return true;
            }
        }
        false
    }

    /// Sends every held frame, in order, and forgets the turn's relays.
    pub(crate) fn release(&mut self, net: &mut dyn Net) {
        for (conn, frame) in self.sends.drain(..) {
            if let Some(frame) = frame {
                net.send(conn, frame);
            }
        }
        self.relays.clear();
        self.ids.clear();
        self.index.clear();
        if self.sends.capacity() > KEEP {
            self.sends = Vec::new();
            self.relays = Vec::new();
            self.ids = Vec::new();
            self.index = HashMap::with_hasher(self.hasher.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawn_send_is_the_one_to_that_peer_of_that_relay() {
        let mut held = HeldRelays::new();
        let (a, b) = (ConnId::from_raw(1), ConnId::from_raw(2));
        held.begin(b"id-one");
        held.push(a, vec![1].into());
        held.push(b, vec![1].into());
        held.begin(b"id-two");
        held.push(a, vec![2].into());
        assert!(!held.withdraw(b, b"id-two"), "no send of id-two to b");
        assert!(!held.withdraw(a, b"id-three"), "no such relay");
        assert!(held.withdraw(a, b"id-one"));
        assert!(!held.withdraw(a, b"id-one"), "only once");
        let left: Vec<(u64, Vec<u8>)> = held
            .sends
            .iter()
            .filter_map(|(c, f)| f.as_ref().map(|f| (c.to_raw(), f.to_vec())))
            .collect();
        assert_eq!(left, vec![(2, vec![1]), (1, vec![2])]);
    }
}
