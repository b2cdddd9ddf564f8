//! A chord node's state as a part of the mesh node: who is on the ring, the slots held,
//! lookups in flight, and what each chord message does. A plain state machine: users'
//! requests come in with a [`RequestId`], and their answers leave as [`ChordEffect`]s.

mod messages;
mod peers;
mod requests;
mod ring;
mod time;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

use super::config::ChordConfig;
use super::effect::{ChordAnswer, ChordEffect, ChordRequest, RequestId};
use super::info::ChordInfo;
use super::key::{distance, hashes, ring_of_id, Key, Method, Ring};
use super::store::{Full, SlotStore};
use super::wire::{self, ChordMsg};
use crate::mesh::MeshLink;
use crate::Error;

/// The value sent before an empty store (a delete) to a node that may be py2p: py2p's
/// store handler does `del table[key]` and drops the sender on a missing key, so a delete
/// is sent as a store of this byte followed by the store of the empty value.
pub(crate) const DELETE_PLACEHOLDER: &[u8] = b"\x00";

/// Who holds a slot, from this node's view.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// This node (or nobody else: a node without joined peers keeps what it is given).
    Local,
    /// A joined peer.
    Peer(String),
}

/// A peer routed by the mesh.
struct ChordPeer {
    ring: Option<Ring>,
    joined: bool,
}

/// An answer for one slot of a get.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Waiting,
    Missing,
    Value(Vec<u8>),
}

struct PendingGet {
    answers: [Answer; 5],
    deadline: Instant,
    /// The user's request it answers.
    req: RequestId,
}

impl PendingGet {
    /// `Some(result)` once the answers decide it: three agree, or too few can.
    fn outcome(&self) -> Option<Option<Vec<u8>>> {
        let mut votes: Vec<(&Vec<u8>, usize)> = Vec::new();
        let mut waiting = 0;
        for a in &self.answers {
            match a {
                Answer::Waiting => waiting += 1,
                Answer::Missing => {}
                Answer::Value(v) => match votes.iter_mut().find(|(x, _)| *x == v) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((v, 1)),
                },
            }
        }
        let best = votes.iter().max_by_key(|(_, n)| *n);
        match best {
            Some((v, n)) if *n >= MAJORITY => Some(Some((*v).clone())),
            Some((_, n)) if n + waiting >= MAJORITY => None,
            None if waiting >= MAJORITY => None,
            _ => Some(None),
        }
    }

    /// The result at the deadline.
    fn settle(&self) -> Option<Vec<u8>> {
        self.outcome().flatten()
    }
}

/// Most lost peers remembered for one repair (past it the repair covers the first ones;
/// the others' slots are stored again by the nodes that learn of them later).
const MAX_LOST: usize = 1024;

/// Slots that must agree for a get to return a value (py2p: more than half of five).
const MAJORITY: usize = 3;

/// Who waits for a lookup's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiter {
    /// Slot `.1` of the user's get `.0`.
    Get(u64, usize),
    /// A peer whose retrieve was forwarded.
    Peer(String),
}

struct Lookup {
    waiters: Vec<Waiter>,
    created: Instant,
    /// The peer asked (asked again elsewhere if its connection breaks).
    asked: Option<String>,
}

/// A store sent to a peer lately: sent again to the slot's new holder if the connection
/// breaks within `resend_window` (bytes in flight on a broken connection are lost).
struct Sent {
    at: Instant,
    method: Method,
    key: Key,
    value: Vec<u8>,
}

/// What became of chord messages from peers, for the fuzz targets and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordOutcome {
    Meta,
    Notify,
    Stored,
    Forwarded,
    Refused,
    Answered,
    Retrieved,
    Unmatched,
    Malformed,
}

impl ChordOutcome {
    /// Every outcome, in order.
    pub const ALL: [ChordOutcome; 9] = [
        ChordOutcome::Meta,
        ChordOutcome::Notify,
        ChordOutcome::Stored,
        ChordOutcome::Forwarded,
        ChordOutcome::Refused,
        ChordOutcome::Answered,
        ChordOutcome::Retrieved,
        ChordOutcome::Unmatched,
        ChordOutcome::Malformed,
    ];

    /// A short name, as the fuzz exercises report it.
    #[cfg(feature = "internals")]
    pub fn name(self) -> &'static str {
        match self {
            ChordOutcome::Meta => "chord-meta",
            ChordOutcome::Notify => "chord-notify",
            ChordOutcome::Stored => "chord-stored",
            ChordOutcome::Forwarded => "chord-forwarded",
            ChordOutcome::Refused => "chord-refused",
            ChordOutcome::Answered => "chord-answered",
            ChordOutcome::Retrieved => "chord-retrieved",
            ChordOutcome::Unmatched => "chord-unmatched",
            ChordOutcome::Malformed => "chord-malformed",
        }
    }
}

/// A chord node's state.
pub struct ChordTable {
    config: ChordConfig,
    /// This node's place on the ring (set from the mesh id when the node starts).
    ring: Ring,
    joined: bool,
    store: SlotStore,
    /// Copies of the slots held by the node this one precedes on the ring: they become
    /// this node's when that node is gone.
    backups: SlotStore,
    keys: BTreeSet<Vec<u8>>,
    peers: BTreeMap<String, ChordPeer>,
    gets: HashMap<u64, PendingGet>,
    next_get: u64,
    lookups: HashMap<(Method, Key), Lookup>,
    /// Places of joined peers lost since the last repair, and when the repair is due.
    lost: Vec<Ring>,
    repair_at: Option<Instant>,
    /// Stores sent to each peer within `resend_window`, and their bytes.
    recent: HashMap<String, (VecDeque<Sent>, usize)>,
    /// Answers not yet taken by [`ChordTable::poll_effect`].
    effects: VecDeque<ChordEffect>,
    /// Peers' chord messages by outcome (indexed by `ChordOutcome as usize`).
    pub outcomes: [u64; ChordOutcome::ALL.len()],
}

impl ChordTable {
    /// A table for the node with mesh id `id`.
    pub fn new(config: ChordConfig, id: &str) -> ChordTable {
        ChordTable {
            store: SlotStore::new(config.max_table_bytes),
            backups: SlotStore::new(config.max_table_bytes),
            config,
            ring: ring_of_id(id).unwrap_or([0; 48]),
            joined: false,
            keys: BTreeSet::new(),
            peers: BTreeMap::new(),
            gets: HashMap::new(),
            next_get: 0,
            lookups: HashMap::new(),
            lost: Vec::new(),
            repair_at: None,
            recent: HashMap::new(),
            effects: VecDeque::new(),
            outcomes: [0; ChordOutcome::ALL.len()],
        }
    }

    /// The limits and timers it was made with.
    #[cfg(feature = "internals")]
    pub fn config(&self) -> &ChordConfig {
        &self.config
    }

    /// The oldest answer not yet taken.
    pub fn poll_effect(&mut self) -> Option<ChordEffect> {
        self.effects.pop_front()
    }

    fn answer_request(&mut self, req: RequestId, answer: ChordAnswer) {
        self.effects.push_back(ChordEffect::Answer { req, answer });
    }

    fn count(&mut self, o: ChordOutcome) {
        if let Some(n) = self.outcomes.get_mut(o as usize) {
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(answers: [Answer; 5]) -> PendingGet {
        PendingGet {
            answers,
            deadline: Instant::now(),
            req: 0,
        }
    }

    #[test]
    fn three_of_five_decide() {
        use Answer::{Missing as M, Value as V, Waiting as W};
        let v = || V(b"v".to_vec());
        let x = || V(b"x".to_vec());
        assert_eq!(
            get([v(), v(), v(), W, W]).outcome(),
            Some(Some(b"v".to_vec()))
        );
        assert_eq!(get([v(), v(), W, W, W]).outcome(), None);
        assert_eq!(get([v(), x(), M, v(), W]).outcome(), None);
        // No value can reach three any more.
        assert_eq!(get([v(), x(), M, M, W]).outcome(), Some(None));
        assert_eq!(get([M, M, M, W, W]).outcome(), Some(None));
        assert_eq!(get([v(), v(), x(), x(), M]).outcome(), Some(None));
        // At the deadline two agreeing are not enough.
        assert_eq!(get([v(), v(), W, W, W]).settle(), None);
        assert_eq!(get([W, W, W, W, W]).outcome(), None);
    }
}
