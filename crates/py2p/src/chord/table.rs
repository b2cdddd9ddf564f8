//! A chord node's state as a part of the mesh node: who is on the ring, the slots held,
//! lookups in flight, and what each chord message does. A plain state machine: users'
//! requests come in with a [`RequestId`], and their answers leave as [`ChordEffect`]s.

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

    // ----- the ring -----

    /// The node whose id most closely precedes `key` among this node (when joined) and the
    /// joined peers; `None` when nobody holds slots.
    fn find(&self, key: &Key, core: &dyn MeshLink) -> Option<Holder> {
        let at = key.ring();
        let mut best: Option<(Ring, Holder)> = self
            .joined
            .then(|| (distance(&self.ring, &at), Holder::Local));
        for (id, p) in &self.peers {
            let Some(ring) = p.ring.filter(|_| p.joined) else {
                continue;
            };
            if core.routed_conn(id).is_none() {
                continue;
            }
            let d = distance(&ring, &at);
            if best.as_ref().is_none_or(|(b, _)| d < *b) {
                best = Some((d, Holder::Peer(id.clone())));
            }
        }
        best.map(|(_, h)| h)
    }

    /// Where a slot goes: nobody else holding slots means here.
    fn holder(&self, key: &Key, core: &dyn MeshLink) -> Holder {
        self.find(key, core).unwrap_or(Holder::Local)
    }

    fn send(&self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str, payload: Vec<Vec<u8>>) {
        if let Some(conn) = core.routed_conn(id) {
            core.send_to(net, conn, Flag::WHISPER, payload);
        }
    }

    fn send_meta(&self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str) {
        self.send(core, net, id, wire::meta(self.joined));
        for key in &self.keys {
            self.send(core, net, id, wire::notify(key));
        }
    }

    /// Sends a slot to a peer; a delete goes as the placeholder then the empty value.
    fn send_store(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        id: &str,
        method: Method,
        key: &Key,
        value: Vec<u8>,
    ) {
        if value.is_empty() {
            let placeholder = DELETE_PLACEHOLDER.to_vec();
            self.send(core, net, id, wire::store(method, key, placeholder));
        }
        self.remember(net, id, method, key, &value);
        self.send(core, net, id, wire::store(method, key, value));
    }

    /// Keeps a store sent to `id` for `resend_window`, within `max_resend_bytes` per peer.
    fn remember(&mut self, net: &dyn Net, id: &str, method: Method, key: &Key, value: &[u8]) {
        let max = self.config.max_resend_bytes;
        let cost = value.len() + 128;
        let (queue, bytes) = self.recent.entry(id.to_owned()).or_default();
        while *bytes + cost > max {
            match queue.pop_front() {
                Some(old) => *bytes = bytes.saturating_sub(old.value.len() + 128),
                None => return,
            }
        }
        *bytes += cost;
        queue.push_back(Sent {
            at: net.now(),
            method,
            key: *key,
            value: value.to_vec(),
        });
    }

    /// Stores (or, empty, deletes) one slot here or at its holder. A slot sent by `from`
    /// is never sent back to it (views that disagree must not bounce it between them).
    fn store_slot(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        method: Method,
        key: Key,
        value: Vec<u8>,
        from: Option<&str>,
    ) -> Result<(), Full> {
        match self.holder(&key, core) {
            Holder::Peer(id) if Some(id.as_str()) != from => {
                self.send_store(core, net, &id, method, &key, value);
                Ok(())
            }
            _ => self.put_local(core, net, method, key, value),
        }
    }

    /// Stores (or, empty, deletes) a slot this node holds, and its copy at the predecessor.
    fn put_local(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        method: Method,
        key: Key,
        value: Vec<u8>,
    ) -> Result<(), Full> {
        if value.is_empty() {
            if self.store.remove(method, &key).is_some() {
                self.back_up(core, net, method, &key, Vec::new());
            }
            return Ok(());
        }
        self.store.put(method, key, value.clone())?;
        self.back_up(core, net, method, &key, value);
        Ok(())
    }

    /// The joined peer that most closely precedes this node: it holds this node's slots
    /// when this node is gone.
    fn predecessor(&self, core: &dyn MeshLink) -> Option<String> {
        self.peers
            .iter()
            .filter(|(id, p)| p.joined && core.routed_conn(id).is_some())
            .filter_map(|(id, p)| Some((distance(&p.ring?, &self.ring), id)))
            .min()
            .map(|(_, id)| id.clone())
    }

    fn back_up(
        &self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        method: Method,
        key: &Key,
        value: Vec<u8>,
    ) {
        if !self.joined {
            return;
        }
        if let Some(p) = self.predecessor(core) {
            self.send(core, net, &p, wire::backup(method, key, value));
        }
    }

    /// Copies of every slot held here go to the predecessor (after the ring changed).
    fn back_up_all(&self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let Some(p) = self.predecessor(core).filter(|_| self.joined) else {
            return;
        };
        for (method, key) in self.store.entries() {
            if let Some(v) = self.store.get(method, &key).cloned() {
                self.send(core, net, &p, wire::backup(method, &key, v));
            }
        }
    }

    // ----- peers -----

    /// A peer completed its handshake: it hears our meta and keys.
    pub fn on_peer_up(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str) {
        self.peers.insert(
            id.to_owned(),
            ChordPeer {
                ring: ring_of_id(id),
                joined: false,
            },
        );
        self.send_meta(core, net, id);
    }

    /// A peer is gone: the slots it held are stored again from the copies that survive.
    pub fn on_peer_down(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str) {
        let Some(peer) = self.peers.remove(id) else {
            return;
        };
        // What may have been lost on the connection goes to the new holders.
        if let Some((sent, _)) = self.recent.remove(id) {
            for s in sent {
                let _ = self.store_slot(core, net, s.method, s.key, s.value, None);
            }
        }
        let mut asked: Vec<(Method, Key)> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.asked.as_deref() == Some(id))
            .map(|(k, _)| *k)
            .collect();
        asked.sort_unstable();
        for (method, key) in asked {
            match self.holder(&key, core) {
                Holder::Peer(next) => {
                    if let Some(l) = self.lookups.get_mut(&(method, key)) {
                        l.asked = Some(next.clone());
                    }
                    self.send(core, net, &next, wire::retrieve(method, &key));
                }
                Holder::Local => {
                    if let Some(l) = self.lookups.remove(&(method, key)) {
                        let value = self.store.get(method, &key).cloned().unwrap_or_default();
                        self.answer(core, net, method, &key, l.waiters, &value);
                    }
                }
            }
        }
        if let (true, Some(ring)) = (peer.joined, peer.ring) {
            // Not at once: the other nodes may not know yet, and would forward a repair to
            // the dead node. One repair covers every node lost meanwhile.
            if self.lost.len() < MAX_LOST {
                self.lost.push(ring);
            }
            self.repair_at
                .get_or_insert(net.now() + self.config.repair_delay);
        }
    }

    /// For each key with a slot here, the slots the lost nodes held are stored at their
    /// new holders, with the value held here.
    fn repair(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let lost = std::mem::take(&mut self.lost);
        // Copies of slots this node now holds become its own.
        let mut promoted = 0usize;
        for (method, key) in self.backups.entries() {
            if self.holder(&key, core) == Holder::Local {
                if let Some(v) = self.backups.remove(method, &key) {
                    if self.store.get(method, &key).is_none() {
                        promoted += 1;
                        if let Err(Full { used, max }) = self.store.put(method, key, v) {
                            warn!("chord repair: no room ({used} of max_table_bytes {max})");
                        }
                    }
                }
            }
        }
        if promoted > 0 {
            debug!("chord: {promoted} backed-up slot(s) now held here");
        }
        let keys: Vec<Vec<u8>> = self.keys.iter().cloned().collect();
        let mut sent = 0usize;
        for user_key in keys {
            let slots = hashes(&user_key);
            let Some(value) = self.local_value(&slots) else {
                continue;
            };
            for (method, key) in slots {
                let at = key.ring();
                let holder = self.holder(&key, core);
                let holder_ring = match &holder {
                    Holder::Local => self.ring,
                    Holder::Peer(p) => self.peers.get(p).and_then(|p| p.ring).unwrap_or(self.ring),
                };
                let now_at = distance(&holder_ring, &at);
                if !lost.iter().any(|l| distance(l, &at) < now_at) {
                    continue;
                }
                sent += 1;
                match holder {
                    Holder::Local => {
                        if let Err(Full { used, max }) = self.store.put(method, key, value.clone())
                        {
                            warn!("chord repair: no room ({used} of max_table_bytes {max})");
                        }
                    }
                    Holder::Peer(p) => self.send_store(core, net, &p, method, &key, value.clone()),
                }
            }
        }
        if sent > 0 {
            debug!("chord: a slot holder left; {sent} slot(s) stored again");
        }
        // The predecessor may have changed: it gets copies of everything held here.
        self.back_up_all(core, net);
    }

    /// The value this node holds for a key: the one most of its slots here hold.
    fn local_value(&self, slots: &[(Method, Key); 5]) -> Option<Vec<u8>> {
        let mut votes: Vec<(&Vec<u8>, usize)> = Vec::new();
        for (m, k) in slots {
            if let Some(v) = self.store.get(*m, k) {
                match votes.iter_mut().find(|(x, _)| *x == v) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((v, 1)),
                }
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(v, _)| v.clone())
    }

    /// Every slot held here that another node now holds goes to it (and leaves here).
    fn rebalance(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let mut moved = 0usize;
        for (method, key) in self.store.entries() {
            if let Holder::Peer(id) = self.holder(&key, core) {
                if let Some(value) = self.store.remove(method, &key) {
                    self.send_store(core, net, &id, method, &key, value);
                    moved += 1;
                }
            }
        }
        if moved > 0 {
            debug!("chord: {moved} slot(s) handed to the nodes now holding them");
        }
    }

    // ----- messages -----

    /// A chord message (see [`wire::is_chord`]) from the peer on `conn`.
    pub fn on_message(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        conn: ConnId,
        payload: &[Vec<u8>],
    ) {
        let msg = match wire::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.count(ChordOutcome::Malformed);
                warn!("{}: malformed chord message: {e}", core.peer_label_of(conn));
                return;
            }
        };
        // Notifies come as broadcasts too, relayed: they need no known sender.
        if let ChordMsg::Notify { key, delete } = msg {
            self.count(ChordOutcome::Notify);
            return self.on_notify(core, conn, key, delete);
        }
        let Some(id) = core.peer_id_of(conn) else {
            self.count(ChordOutcome::Malformed);
            warn!(
                "{}: chord message before a handshake; ignored",
                core.peer_label_of(conn)
            );
            return;
        };
        match msg {
            ChordMsg::Meta { joined } => {
                self.count(ChordOutcome::Meta);
                self.on_meta(core, net, &id, joined)
            }
            ChordMsg::Notify { .. } => {}
            ChordMsg::Store { method, key, value } => {
                if value.len() > self.config.max_value_len {
                    self.count(ChordOutcome::Refused);
                    warn!(
                        "{}: chord store of {} bytes refused (max_value_len {})",
                        core.peer_label_of(conn),
                        value.len(),
                        self.config.max_value_len
                    );
                    return;
                }
                let forwarded = matches!(self.holder(&key, core), Holder::Peer(p) if p != id);
                match self.store_slot(core, net, method, key, value.to_vec(), Some(&id)) {
                    Ok(()) if forwarded => self.count(ChordOutcome::Forwarded),
                    Ok(()) => self.count(ChordOutcome::Stored),
                    Err(Full { used, max }) => {
                        self.count(ChordOutcome::Refused);
                        warn!(
                            "{}: chord store of {} bytes refused: the table holds {used} of \
                             max_table_bytes {max}",
                            core.peer_label_of(conn),
                            value.len()
                        );
                    }
                }
            }
            ChordMsg::Backup { method, key, value } => {
                if value.is_empty() {
                    self.backups.remove(method, &key);
                    return self.count(ChordOutcome::Stored);
                }
                if value.len() > self.config.max_value_len {
                    self.count(ChordOutcome::Refused);
                    return warn!(
                        "{}: chord backup of {} bytes refused (max_value_len {})",
                        core.peer_label_of(conn),
                        value.len(),
                        self.config.max_value_len
                    );
                }
                match self.backups.put(method, key, value.to_vec()) {
                    Ok(()) => self.count(ChordOutcome::Stored),
                    Err(Full { used, max }) => {
                        self.count(ChordOutcome::Refused);
                        warn!(
                            "{}: chord backup refused: backups hold {used} of max_table_bytes {max}",
                            core.peer_label_of(conn)
                        );
                    }
                }
            }
            ChordMsg::Retrieve { method, key } => {
                self.on_retrieve(core, net, conn, &id, method, key)
            }
            ChordMsg::Retrieved { method, key, value } => {
                self.on_retrieved(core, net, method, key, value.to_vec())
            }
        }
    }

    fn on_notify(&mut self, core: &dyn MeshLink, conn: ConnId, key: &[u8], delete: bool) {
        if delete {
            self.keys.remove(key);
        } else if key.is_empty() || key.len() > self.config.max_key_len {
            warn!(
                "{}: chord notify of a {}-byte key ignored (max_key_len {})",
                core.peer_label_of(conn),
                key.len(),
                self.config.max_key_len
            );
        } else if self.keys.len() < self.config.max_keys || self.keys.contains(key) {
            self.keys.insert(key.to_vec());
        } else {
            warn!(
                "{}: chord notify ignored: max_keys {} known",
                core.peer_label_of(conn),
                self.config.max_keys
            );
        }
    }

    fn on_meta(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str, joined: bool) {
        // A peer routed without a `Connected` of its own (a second connection that took
        // over) is known from its first meta.
        let peer = self
            .peers
            .entry(id.to_owned())
            .or_insert_with(|| ChordPeer {
                ring: ring_of_id(id),
                joined: false,
            });
        if peer.joined == joined {
            return;
        }
        peer.joined = joined;
        if peer.ring.is_none() {
            warn!("chord peer {id}: its id is not base-58; it holds no slots");
        }
        info!(
            "chord peer {id} {}",
            if joined { "joined" } else { "left the ring" }
        );
        self.send_meta(core, net, id);
        if joined && self.joined {
            self.rebalance(core, net);
            if self.predecessor(core).as_deref() == Some(id) {
                self.back_up_all(core, net);
            }
        }
    }

    fn on_retrieve(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        conn: ConnId,
        from: &str,
        method: Method,
        key: Key,
    ) {
        match self.holder(&key, core) {
            Holder::Peer(next) if next != from => {
                let waiter = Waiter::Peer(from.to_owned());
                if let Some(l) = self.lookups.get_mut(&(method, key)) {
                    if !l.waiters.contains(&waiter) {
                        if l.waiters.len() >= self.config.max_waiters_per_lookup {
                            warn!(
                                "{}: retrieve refused: max_waiters_per_lookup {} wait already",
                                core.peer_label_of(conn),
                                self.config.max_waiters_per_lookup
                            );
                            self.count(ChordOutcome::Refused);
                            self.send(core, net, from, wire::retrieved(method, &key, Vec::new()));
                            return;
                        }
                        l.waiters.push(waiter);
                    }
                    self.count(ChordOutcome::Forwarded);
                    return;
                }
                if self.lookups.len() >= self.config.max_pending_lookups {
                    warn!(
                        "{}: retrieve answered \"missing\": max_pending_lookups {} in flight",
                        core.peer_label_of(conn),
                        self.config.max_pending_lookups
                    );
                    self.count(ChordOutcome::Refused);
                    self.send(core, net, from, wire::retrieved(method, &key, Vec::new()));
                    return;
                }
                self.lookups.insert(
                    (method, key),
                    Lookup {
                        waiters: vec![waiter],
                        created: net.now(),
                        asked: Some(next.clone()),
                    },
                );
                self.count(ChordOutcome::Forwarded);
                self.send(core, net, &next, wire::retrieve(method, &key));
            }
            _ => {
                self.count(ChordOutcome::Answered);
                let value = self.store.get(method, &key).cloned().unwrap_or_default();
                self.send(core, net, from, wire::retrieved(method, &key, value));
            }
        }
    }

    fn on_retrieved(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        method: Method,
        key: Key,
        value: Vec<u8>,
    ) {
        let Some(lookup) = self.lookups.remove(&(method, key)) else {
            self.count(ChordOutcome::Unmatched);
            debug!(
                "chord: an answer for {} {key:?} nobody asked for",
                method.name()
            );
            return;
        };
        self.count(ChordOutcome::Retrieved);
        self.answer(core, net, method, &key, lookup.waiters, &value);
    }

    /// Gives an answer (empty: missing) to those waiting for it.
    fn answer(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        method: Method,
        key: &Key,
        waiters: Vec<Waiter>,
        value: &[u8],
    ) {
        for w in waiters {
            match w {
                Waiter::Peer(id) => {
                    self.send(core, net, &id, wire::retrieved(method, key, value.to_vec()))
                }
                Waiter::Get(gid, slot) => {
                    let Some(get) = self.gets.get_mut(&gid) else {
                        continue;
                    };
                    if let Some(a) = get.answers.get_mut(slot) {
                        *a = if value.is_empty() {
                            Answer::Missing
                        } else {
                            Answer::Value(value.to_vec())
                        };
                    }
                    self.finish_if_decided(gid);
                }
            }
        }
    }

    fn finish_if_decided(&mut self, gid: u64) {
        let Some(result) = self.gets.get(&gid).and_then(PendingGet::outcome) else {
            return;
        };
        let Some(get) = self.gets.remove(&gid) else {
            return;
        };
        self.answer_request(get.req, ChordAnswer::Get(result));
        // No read repair: without versions, a get racing a delete or a newer set would
        // store the old value again.
    }

    // ----- the user's commands -----

    /// The user's request `req`; its answer (if it has one) leaves as a [`ChordEffect`],
    /// now or, for a get, once the slots' holders answered or its timeout passed.
    pub fn on_request(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        req: RequestId,
        request: ChordRequest,
    ) {
        match request {
            ChordRequest::Join => self.set_joined(core, net, true),
            ChordRequest::Unjoin => self.set_joined(core, net, false),
            ChordRequest::Set { key, value } => {
                let result = self.set(core, net, key, value);
                self.answer_request(req, ChordAnswer::Set(result));
            }
            ChordRequest::Delete { key } => {
                let result = self.delete(core, net, key);
                self.answer_request(req, ChordAnswer::Delete(result));
            }
            ChordRequest::Get { key, timeout } => self.get(core, net, key, timeout, req),
            ChordRequest::Keys => {
                let keys = self.keys.iter().cloned().collect();
                self.answer_request(req, ChordAnswer::Keys(keys));
            }
            ChordRequest::Info => {
                let info = self.info();
                self.answer_request(req, ChordAnswer::Info(info));
            }
        }
    }

    pub fn info(&self) -> ChordInfo {
        ChordInfo {
            joined: self.joined,
            joined_peers: self.peers.values().filter(|p| p.joined).count(),
            slots: self.store.len(),
            backups: self.backups.len(),
            bytes: self.store.bytes(),
            keys: self.keys.len(),
            pending_lookups: self.lookups.len(),
            pending_gets: self.gets.len(),
        }
    }

    fn set_joined(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net, joined: bool) {
        if self.joined == joined {
            return;
        }
        self.joined = joined;
        info!(
            "chord: {}",
            if joined {
                "joined the ring"
            } else {
                "left the ring"
            }
        );
        for id in core.routed_ids() {
            if self.peers.contains_key(&id) {
                self.send_meta(core, net, &id);
            }
        }
        // Joined: slots held while leeching go to their holders; left: all of them do
        // (with no joined peer they stay: py2p would drop them).
        self.rebalance(core, net);
        if joined {
            self.back_up_all(core, net);
        } else {
            self.backups = SlotStore::new(self.config.max_table_bytes);
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.is_empty() || key.len() > self.config.max_key_len {
            return Err(Error::InvalidInput(format!(
                "a chord key is 1 to {} bytes, not {}",
                self.config.max_key_len,
                key.len()
            )));
        }
        Ok(())
    }

    fn set(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        if value.is_empty() {
            return self.delete(core, net, key).map(|_| ());
        }
        self.check_key(&key)?;
        if value.len() > self.config.max_value_len {
            return Err(Error::InvalidInput(format!(
                "a chord value is at most max_value_len {} bytes, not {}",
                self.config.max_value_len,
                value.len()
            )));
        }
        for (method, slot) in hashes(&key) {
            if let Err(Full { used, max }) =
                self.store_slot(core, net, method, slot, value.clone(), None)
            {
                return Err(Error::TableFull { key, used, max });
            }
        }
        if !self.keys.contains(&key) {
            if self.keys.len() < self.config.max_keys {
                self.keys.insert(key.clone());
            }
            core.broadcast(net, wire::notify(&key));
        }
        Ok(())
    }

    fn delete(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        key: Vec<u8>,
    ) -> Result<bool, Error> {
        self.check_key(&key)?;
        for (method, slot) in hashes(&key) {
            let _ = self.store_slot(core, net, method, slot, Vec::new(), None);
        }
        let known = self.keys.remove(&key);
        core.broadcast(net, wire::notify_delete(&key));
        Ok(known)
    }

    fn get(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        key: Vec<u8>,
        timeout: Duration,
        req: RequestId,
    ) {
        if self.check_key(&key).is_err() {
            self.answer_request(req, ChordAnswer::Get(None));
            return;
        }
        if self.gets.len() >= self.config.max_pending_gets {
            warn!(
                "chord get refused: max_pending_gets {} in flight",
                self.config.max_pending_gets
            );
            self.answer_request(req, ChordAnswer::Get(None));
            return;
        }
        let gid = self.next_get;
        self.next_get += 1;
        let mut answers = [
            Answer::Waiting,
            Answer::Waiting,
            Answer::Waiting,
            Answer::Waiting,
            Answer::Waiting,
        ];
        let mut asks: Vec<(String, Method, Key)> = Vec::new();
        for (i, (method, slot)) in hashes(&key).into_iter().enumerate() {
            match self.holder(&slot, core) {
                Holder::Local => {
                    if let Some(a) = answers.get_mut(i) {
                        *a = match self.store.get(method, &slot) {
                            Some(v) => Answer::Value(v.clone()),
                            None => Answer::Missing,
                        };
                    }
                }
                Holder::Peer(id) => {
                    let waiter = Waiter::Get(gid, i);
                    match self.lookups.get_mut(&(method, slot)) {
                        Some(l) => l.waiters.push(waiter),
                        None => {
                            self.lookups.insert(
                                (method, slot),
                                Lookup {
                                    waiters: vec![waiter],
                                    created: net.now(),
                                    asked: Some(id.clone()),
                                },
                            );
                            asks.push((id, method, slot));
                        }
                    }
                }
            }
        }
        self.gets.insert(
            gid,
            PendingGet {
                answers,
                deadline: net.now() + timeout,
                req,
            },
        );
        for (id, method, slot) in asks {
            self.send(core, net, &id, wire::retrieve(method, &slot));
        }
        self.finish_if_decided(gid);
    }

    // ----- time -----

    pub fn on_tick(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let now = net.now();
        let window = self.config.resend_window;
        self.recent.retain(|_, (queue, bytes)| {
            while queue
                .front()
                .is_some_and(|s| now.duration_since(s.at) > window)
            {
                if let Some(old) = queue.pop_front() {
                    *bytes = bytes.saturating_sub(old.value.len() + 128);
                }
            }
            !queue.is_empty()
        });
        if self.repair_at.is_some_and(|t| t <= now) {
            self.repair_at = None;
            self.repair(core, net);
        }
        let mut late: Vec<u64> = self
            .gets
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        late.sort_unstable();
        for gid in late {
            if let Some(get) = self.gets.remove(&gid) {
                self.answer_request(get.req, ChordAnswer::Get(get.settle()));
            }
        }
        let timeout = self.config.lookup_timeout;
        let mut stale: Vec<(Method, Key)> = self
            .lookups
            .iter()
            .filter(|(_, l)| now.duration_since(l.created) > timeout)
            .map(|(k, _)| *k)
            .collect();
        stale.sort_unstable();
        for (method, key) in stale {
            if let Some(l) = self.lookups.remove(&(method, key)) {
                debug!(
                    "chord: lookup {} {key:?} unanswered in {timeout:?}",
                    method.name()
                );
                let waiters = l
                    .waiters
                    .into_iter()
                    .filter(|w| matches!(w, Waiter::Peer(_)))
                    .collect();
                self.answer(core, net, method, &key, waiters, b"");
            }
        }
        // Gets whose lookups are all gone (answered "missing" above) are over already;
        // the rest wait for their deadline.
    }

    /// Gets end when the node stops: their askers hear what the answers so far decide
    /// (with fewer than three agreeing, "missing").
    pub fn on_shutdown(&mut self) {
        let mut gets: Vec<(u64, PendingGet)> = self.gets.drain().collect();
        gets.sort_unstable_by_key(|(gid, _)| *gid);
        for (_, get) in gets {
            self.answer_request(get.req, ChordAnswer::Get(get.settle()));
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
