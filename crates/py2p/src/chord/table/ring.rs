//! The ring as this node sees it: who holds a slot, and sending stores, notifies, metadata
//! and backups to holders.

use super::*;

impl ChordTable {
    /// The node whose id most closely precedes `key` among this node (when joined) and the
    /// joined peers; `None` when nobody holds slots.
    pub(super) fn find(&self, key: &Key, core: &dyn MeshLink) -> Option<Holder> {
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
    pub(super) fn holder(&self, key: &Key, core: &dyn MeshLink) -> Holder {
        self.find(key, core).unwrap_or(Holder::Local)
    }

    pub(super) fn send(
        &self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        id: &str,
        payload: Vec<Vec<u8>>,
    ) {
        if let Some(conn) = core.routed_conn(id) {
            core.send_to(net, conn, Flag::WHISPER, payload);
        }
    }

    pub(super) fn send_meta(&self, core: &mut dyn MeshLink, net: &mut dyn Net, id: &str) {
        self.send(core, net, id, wire::meta(self.joined));
        for key in &self.keys {
            self.send(core, net, id, wire::notify(key));
        }
    }

    /// Sends a slot to a peer; a delete goes as the placeholder then the empty value.
    pub(super) fn send_store(
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
    pub(super) fn remember(
        &mut self,
        net: &dyn Net,
        id: &str,
        method: Method,
        key: &Key,
        value: &[u8],
    ) {
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
    pub(super) fn store_slot(
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
    pub(super) fn put_local(
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
    pub(super) fn predecessor(&self, core: &dyn MeshLink) -> Option<String> {
        self.peers
            .iter()
            .filter(|(id, p)| p.joined && core.routed_conn(id).is_some())
            .filter_map(|(id, p)| Some((distance(&p.ring?, &self.ring), id)))
            .min()
            .map(|(_, id)| id.clone())
    }

    pub(super) fn back_up(
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
    pub(super) fn back_up_all(&self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let Some(p) = self.predecessor(core).filter(|_| self.joined) else {
            return;
        };
        for (method, key) in self.store.entries() {
            if let Some(v) = self.store.get(method, &key).cloned() {
                self.send(core, net, &p, wire::backup(method, &key, v));
            }
        }
    }
}
