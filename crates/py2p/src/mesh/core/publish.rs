//! What the user's threads see of the node: the routing table and status published in
//! `Shared`, the errors noted for `status()`.

use std::time::Instant;

use super::state::MeshCore;
use crate::mesh::Status;
use crate::message::PeerInfo;

impl MeshCore {
    /// Publishes the routing table for `peers()` (before any peer event that changes it).
    pub(super) fn publish_peers(&mut self) {
        self.peers_dirty = false;
        // The status copy counts the peers too: it is made again at the next chance.
        self.published_at = None;
        let peers = self.peer_infos();
        self.shared.published().peers = peers;
    }

    /// Publishes the status for `status()` calls made while the loop is busy in a handler.
    /// Unless the published copy is younger than `max_age` and the routing table did not
    /// change since: a loop turning fast (a flood of small messages) spends its time on them,
    /// not on copies of the status.
    pub(super) fn publish_status(&mut self, max_age: std::time::Duration) {
        let routing_changed = self.peers_dirty || self.published_at.is_none();
        if self.peers_dirty {
            self.publish_peers();
        }
        let now = Instant::now();
        if !routing_changed
            && self
                .published_at
                .is_some_and(|t| now.duration_since(t) < max_age)
        {
            return;
        }
        self.published_at = Some(now);
        let status = self.status();
        self.shared.published().status = Some(status);
    }

    /// An error for `status()`, with the log line it came with.
    pub(super) fn note_error(&self, text: String) {
        self.shared.note_error(text);
    }

    pub(super) fn status(&self) -> Status {
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
            lost_peers: self.lost.len(),
            inbox: self.shared.inbox.len(),
            errors: Vec::new(),
            errors_total: 0,
        }
    }

    pub(super) fn peer_infos(&self) -> Vec<PeerInfo> {
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
