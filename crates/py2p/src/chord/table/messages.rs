//! What each chord message from a peer does: stores, notifies, metadata, retrieves and
//! their answers.

use super::*;

impl ChordTable {
    /// A chord message (see [`wire::is_chord_packets`]) from the peer on `conn`.
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

    pub(super) fn on_notify(
        &mut self,
        core: &dyn MeshLink,
        conn: ConnId,
        key: &[u8],
        delete: bool,
    ) {
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

    pub(super) fn on_meta(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        id: &str,
        joined: bool,
    ) {
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

    pub(super) fn on_retrieve(
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
                debug!(
                    "chord: {from} asked for {} {key:?}: {}",
                    method.name(),
                    if value.is_empty() {
                        "missing"
                    } else {
                        "held here"
                    }
                );
                self.send(core, net, from, wire::retrieved(method, &key, value));
            }
        }
    }

    pub(super) fn on_retrieved(
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
    pub(super) fn answer(
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

    pub(super) fn finish_if_decided(&mut self, gid: u64) {
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
}
