//! The user's requests: join, unjoin, set, delete, get (3-of-5), keys, info.

use super::*;

impl ChordTable {
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

    pub(super) fn set_joined(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net, joined: bool) {
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

    pub(super) fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.is_empty() || key.len() > self.config.max_key_len {
            return Err(Error::InvalidInput(format!(
                "a chord key is 1 to {} bytes, not {}",
                self.config.max_key_len,
                key.len()
            )));
        }
        Ok(())
    }

    pub(super) fn set(
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

    pub(super) fn delete(
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

    pub(super) fn get(
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
}
