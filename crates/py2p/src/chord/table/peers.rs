//! Peers joining and leaving the ring: hand-over, backups to the predecessor, repair after
//! a holder dies, rebalancing.

use super::*;

impl ChordTable {
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
    pub(super) fn repair(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
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
    pub(super) fn local_value(&self, slots: &[(Method, Key); 5]) -> Option<Vec<u8>> {
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
    pub(super) fn rebalance(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
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
}
