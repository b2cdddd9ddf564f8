//! What the user's threads see of the node: the routing table and status (which the node
//! publishes in `Shared`), the errors noted for `status()`.

use super::effect::Effect;
use super::state::MeshCore;
use crate::mesh::peer::Peer;
use crate::mesh::Status;
use crate::message::PeerInfo;

impl MeshCore {
    /// The routing table changed in a way peer events depend on: the node publishes it for
    /// `peers()` now, before any peer event that follows.
    pub(super) fn publish_peers(&mut self) {
        self.peers_dirty = false;
        self.effects.push_back(Effect::PeersChanged);
    }

    /// Whether the routing table changed (a compression renegotiated, a spare connection took
    /// over) since the node last published it; clears the mark.
    pub(crate) fn take_peers_dirty(&mut self) -> bool {
        std::mem::take(&mut self.peers_dirty)
    }

    /// An error for `status()`, with the log line it came with.
    pub(super) fn note_error(&mut self, text: String) {
        self.effects.push_back(Effect::Error(text));
    }

    /// The node's status as the core knows it (the node fills in its inbox).
    pub(crate) fn status(&self) -> Status {
        Status {
            id: self.id.clone(),
            protocol_id: self.protocol_id.clone(),
            out_addr: self.out_addr.clone(),
            peers: self.routing.len(),
            connections: self.peers.len() + self.dials.len(),
            awaiting_handshake: self.peers.values().filter(|p| p.id.is_none()).count(),
            received: self.counters.received,
            relayed: self.counters.relayed,
            duplicates: self.counters.duplicates,
            expired: self.counters.expired,
            decode_errors: self.counters.decode_errors,
            refused_subnet: self.counters.refused_subnet,
            handler_panics: self.counters.handler_panics,
            seen_ids: self.seen.len(),
            pending_requests: self.requests.len(),
            lost_peers: self.lost.values().filter(|l| l.found.is_none()).count(),
            inbox: 0,
            errors: Vec::new(),
            errors_total: 0,
        }
    }

    /// Brings `infos` (a routing table as [`MeshCore::peer_infos`] made it, sorted by id) up
    /// to date in place: entries of peers gone are removed, new peers inserted, changed
    /// fields set. Unlike a new copy, peers that did not change cost no allocation: the node
    /// publishes the table at every handshake, and a copy each time made N handshakes cost
    /// N² strings made and freed (the fragments stayed in the process's memory).
    pub(crate) fn update_peer_infos(&self, infos: &mut Vec<PeerInfo>) {
        // No list of the routing table is made either: a list as long as the table, made and
        // dropped at every handshake, leaves a hole a little larger each time.
        infos.retain(|info| self.routed_addr(&info.id).is_some());
        for id in self.routing.keys() {
            let Some((addr, p)) = self.routed_addr(id) else {
                continue;
            };
            let compression = p.compression.first().copied();
            match infos.binary_search_by(|info| info.id.as_str().cmp(id)) {
                Ok(k) => {
                    if let Some(info) = infos.get_mut(k) {
                        if info.addr != *addr {
                            info.addr.clone_from(addr);
                        }
                        info.outgoing = p.outgoing;
                        info.compression = compression;
                        info.tls_version = p.tls_version;
                    }
                }
                Err(k) => infos.insert(
                    k,
                    PeerInfo {
                        id: id.clone(),
                        addr: addr.clone(),
                        outgoing: p.outgoing,
                        compression,
                        tls_version: p.tls_version,
                    },
                ),
            }
        }
    }

    /// The advertised address and record of the peer routed as `id`, if it has both.
    fn routed_addr(&self, id: &str) -> Option<(&(String, u16), &Peer)> {
        let p = self.peers.get(self.routing.get(id)?)?;
        Some((p.addr.as_ref()?, p))
    }

    /// The routing table, sorted by id.
    pub(crate) fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .routing
            .iter()
            .filter_map(|(id, conn)| {
                let p = self.peers.get(conn)?;
                Some(PeerInfo {
                    id: id.clone(),
                    addr: p.addr.clone()?,
                    outgoing: p.outgoing,
                    compression: p.compression.first().copied(),
                    tls_version: p.tls_version,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
