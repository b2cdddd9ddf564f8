//! Relays held back for the rest of the turn: a peer that sends us a copy of a broadcast
//! while our relay of it to that peer is still held gets none (it has the broadcast).
//!
//! In a mesh every node receives most broadcasts from several peers, and relays each to
//! every peer but the one it came from: across the network, most links carry a broadcast
//! both ways. At the end of each turn, after all the turn's input was handled, the event
//! loop asks the service for what it held (`Service::before_write`); until then the node's
//! relays wait here, and a copy that comes
//! in meanwhile from a peer the relay was meant for takes that peer off the relay. Nothing
//! is lost: the peer had sent us that broadcast, so it has seen it (and would drop our copy
//! as a duplicate).
//!
//! Held relays keep their order among themselves and go out before any other frame the node
//! sends: they live in the net the node sends on (`out.rs`), whose every send, close and dial
//! releases them first, so the frames each peer receives keep the order they had when relays
//! were queued at once.

use std::collections::HashMap;

use py2p_net::{ConnId, Frame, Net};

use crate::mesh::seen::{key_bytes as key, IdHash, Key};

/// The relays of the current turn, in the order they were made (see the module docs).
///
/// Laid out for the lookup that every copy of a broadcast makes: the index holds each
/// relay's range of sends inline, and the sends' connections are an array of their own, so
/// a withdrawal reads one bucket and one short run of connections.
pub(crate) struct HeldRelays {
    /// Each send's connection; `None` once withdrawn.
    conns: Vec<Option<ConnId>>,
    /// Each send's frame (beside `conns`, same index).
    frames: Vec<Frame>,
    /// A relay's sends (`conns[start..end]`) by its id.
    index: HashMap<Key, (usize, usize), IdHash>,
    /// The relay begun last and where its sends start.
    open: Option<(Key, usize)>,
    /// One bit per held id's bucket (`Key::bit`): most copies are of broadcasts relayed in
    /// an earlier turn, and this answers "not held" from L1 without probing the index.
    filter: [u64; FILTER_WORDS],
}

/// Words of the filter: 4,096 bits, 512 bytes.
const FILTER_WORDS: usize = 64;

impl Key {
    /// The filter bit of this id: the first two words mixed (base-58 characters carry
    /// about six bits each, spread over the bytes), the top 12 bits.
    fn bit(&self) -> (usize, u64) {
        let h = (self.0[0] ^ self.0[1].rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = (h >> 52) as usize;
        (b / 64 % FILTER_WORDS, 1u64 << (b % 64))
    }
}

/// Held sends kept as room between turns; beyond it the lists are given back.
const KEEP: usize = 4096;

fn new_index() -> HashMap<Key, (usize, usize), IdHash> {
    HashMap::with_hasher(IdHash::new())
}

impl HeldRelays {
    pub(crate) fn new() -> HeldRelays {
        HeldRelays {
            conns: Vec::new(),
            frames: Vec::new(),
            index: new_index(),
            open: None,
            filter: [0; FILTER_WORDS],
        }
    }

    /// Whether no relay is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Begins the relay of broadcast `id`; its frames follow with [`HeldRelays::push`], and
    /// [`HeldRelays::finish`] closes it.
    pub(crate) fn begin(&mut self, id: &[u8]) {
        self.open = Some((key(id), self.conns.len()));
    }

    /// A frame of the relay begun last, for `conn`.
    pub(crate) fn push(&mut self, conn: ConnId, frame: Frame) {
        self.conns.push(Some(conn));
        self.frames.push(frame);
    }

    /// The relay begun last has all its frames.
    pub(crate) fn finish(&mut self) {
        if let Some((key, start)) = self.open.take() {
            let end = self.conns.len();
            if end > start {
                self.index.entry(key).or_insert((start, end));
                let (word, bit) = key.bit();
                if let Some(w) = self.filter.get_mut(word) {
                    *w |= bit;
                }
            }
        }
    }

    /// `conn` sent us a copy of the broadcast whose id's key is `key`: our held relay of it
    /// to `conn`, if any, is dropped. Whether one was.
    pub(crate) fn withdraw(&mut self, conn: ConnId, key: Key) -> bool {
        if self.index.is_empty() {
            return false;
        }
        let (word, bit) = key.bit();
        if self.filter.get(word).is_none_or(|w| w & bit == 0) {
            return false;
        }
        let Some(&(start, end)) = self.index.get(&key) else {
            return false;
        };
        let sends = self.conns.get_mut(start..end).unwrap_or_default();
        match sends.iter_mut().find(|c| **c == Some(conn)) {
            Some(c) => {
                *c = None;
                true
            }
            None => false,
        }
    }

    /// Sends every held frame, in order, and forgets the turn's relays.
    pub(crate) fn release(&mut self, net: &mut dyn Net) {
        self.finish();
        for (conn, frame) in self.conns.drain(..).zip(self.frames.drain(..)) {
            if let Some(conn) = conn {
                net.send(conn, frame);
            }
        }
        self.index.clear();
        self.filter = [0; FILTER_WORDS];
        if self.conns.capacity() > KEEP {
            self.conns = Vec::new();
            self.frames = Vec::new();
            self.index = new_index();
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
        held.finish();
        held.begin(b"id-two");
        held.push(a, vec![2].into());
        held.finish();
        assert!(!held.withdraw(b, key(b"id-two")), "no send of id-two to b");
        assert!(!held.withdraw(a, key(b"id-three")), "no such relay");
        assert!(held.withdraw(a, key(b"id-one")));
        assert!(!held.withdraw(a, key(b"id-one")), "only once");
        held.finish();
        let left: Vec<(u64, Vec<u8>)> = held
            .conns
            .iter()
            .zip(&held.frames)
            .filter_map(|(c, f)| c.map(|c| (c.to_raw(), f.to_vec())))
            .collect();
        assert_eq!(left, vec![(2, vec![1]), (1, vec![2])]);
    }
}
