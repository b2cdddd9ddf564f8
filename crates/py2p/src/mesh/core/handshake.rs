//! The py2p handshake: ours, and the peer's (ids, protocol, conflicts between two
//! connections to one node).

use log::{debug, info, warn};
use std::time::Instant;

use py2p_net::{ConnId, Net};
use py2p_wire::{compression, Flag};

use super::effect::Effect;
use super::path::Path;
use super::state::MeshCore;
use crate::error::ConnectError;
use crate::id::id_cmp;
use crate::mesh::peer::{self};

impl MeshCore {
    pub(super) fn handshake_payload(&self) -> Vec<Vec<u8>> {
        vec![
            vec![Flag::HANDSHAKE.0],
            self.id.as_bytes().to_vec(),
            self.protocol_id.as_bytes().to_vec(),
            peer::addr_json(&self.out_addr.0, self.out_addr.1).into_bytes(),
            compression::to_json(&self.config.compressions).into_bytes(),
        ]
    }

    pub(super) fn handle_handshake(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        payload: py2p_wire::Payload<'_>,
    ) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let label = peer.label();
        let Some([_, id, protocol_id, addr, methods]) = payload.as_array() else {
            return;
        };
        if protocol_id != self.protocol_id.as_bytes() {
            self.counters.refused_subnet += 1;
            let theirs = String::from_utf8_lossy(protocol_id).into_owned();
            warn!("{label}: peer runs another protocol ({theirs}); closing");
            self.note_error(format!("{label}: peer runs another protocol ({theirs})"));
            self.finish_connect(conn, Err(ConnectError::ProtocolMismatch { theirs }));
            self.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        }
        let Ok(id) = String::from_utf8(id.to_vec()) else {
            warn!("{label}: handshake id is not text; closing");
            self.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        };
        if id == self.id {
            debug!("{label}: connected to ourselves; closing");
            self.finish_connect(conn, Err(ConnectError::SelfConnection));
            self.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        }
        let known = self.peers.get(&conn).and_then(|p| p.id.clone());
        match known {
            Some(old) if old != id => {
                // One connection, one node: a peer that changes its id is not believed (each
                // new id would otherwise stay in the routing table for good).
                warn!("{label}: handshake with a new id {id}; closing");
                self.hit(Path::RefusedHandshake);
                net.close(conn);
                return;
            }
            Some(_) => {
                // A repeated handshake may update the compression list; it gets no new peers
                // list (a cheap message must not buy an expensive answer).
                if let Ok(theirs) = compression::from_json(&String::from_utf8_lossy(methods)) {
                    let ours = self.config.compressions.clone();
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.compression = compression::negotiate(&ours, &theirs);
                        p.theirs = theirs;
                    }
                }
                debug!("{label}: repeated handshake");
                self.hit(Path::RepeatedHandshake);
                return;
            }
            None => {}
        }
        let addr = serde_json::from_slice(addr)
            .ok()
            .and_then(|v| peer::parse_addr(&v));
        let theirs = compression::from_json(&String::from_utf8_lossy(methods));
        let (Some(addr), Ok(theirs)) = (addr, theirs) else {
            warn!("{label}: malformed handshake (address or compression list); closing");
            self.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        };
        let mut replaced = false;
        if let Some(&other) = self.routing.get(&id).filter(|&&other| other != conn) {
            let this_outgoing = self.peers.get(&conn).is_some_and(|p| p.outgoing);
            let other_outgoing = self.peers.get(&other).is_some_and(|p| p.outgoing);
            if !this_outgoing && !other_outgoing {
                // Both dialled by the peer (it dialled one address under two ids, say): the
                // peer decides which one stays, since the two ends may see the handshakes in
                // different orders and each keep another one (then both close theirs and the
                // link is down until a redial). This end routes the newer and keeps the
                // older open, to fall back on (see `on_close`) when the peer closes one.
                debug!("second connection from peer {id}: {conn} routed, {other} kept as a spare");
                replaced = true;
            } else {
                // Both ends keep the connection dialled by the node with the larger id.
                let keep_outgoing = id_cmp(&self.id, &id) == std::cmp::Ordering::Greater;
                let keep_this = this_outgoing == keep_outgoing || other_outgoing != keep_outgoing;
                let kill = if keep_this { other } else { conn };
                info!(
                    "connection conflict with peer {id}: keeping {}, closing {kill}",
                    if keep_this { conn } else { other }
                );
                // Not closed yet: frames may be on their way over it, and the peer closes
                // its end once it sees both handshakes (on_tick closes it otherwise).
                let now = net.now();
                if let Some(p) = self.peers.get_mut(&kill) {
                    p.superseded = Some(now);
                }
                replaced = keep_this;
            }
        }
        let ours = self.config.compressions.clone();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.id = Some(id.clone());
        peer.addr = Some(addr.clone());
        peer.compression = compression::negotiate(&ours, &theirs);
        peer.theirs = theirs;
        if peer.superseded.is_some() {
            // Frames still arriving on it are read as the peer's; nothing more is sent.
            self.hit(Path::RefusedHandshake);
            self.finish_connect(conn, Ok(id));
            return;
        }
        info!(
            "{}: handshake complete (advertises {}:{}, compression {:?})",
            peer.label(),
            addr.0,
            addr.1,
            peer.compression.first()
        );
        self.hit(Path::Handshake);
        self.found_again(&id, net.now());
        let newly_routed = self.routing.insert(id.clone(), conn).is_none() && !replaced;
        let list = self.peer_list(conn);
        self.send_to(
            net,
            conn,
            Flag::WHISPER,
            vec![vec![Flag::PEERS.0], list.into_bytes()],
        );
        // `peers()` shows the peer before anyone hears of it.
        self.publish_peers();
        self.finish_connect(conn, Ok(id.clone()));
        self.effects.push_back(Effect::PeerUp {
            conn,
            id,
            addr,
            newly_routed,
        });
    }

    /// Closes connections that sent no handshake within `handshake_timeout`, and those not
    /// kept after a conflict once `conflict_grace` is over.
    pub(super) fn close_stale(&mut self, net: &mut dyn Net, now: Instant) {
        let deadline = self.config.handshake_timeout;
        let mut stale: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.id.is_none() && now.duration_since(p.opened) > deadline)
            .map(|p| p.conn)
            .collect();
        stale.sort_unstable();
        for conn in stale {
            if let Some(p) = self.peers.get(&conn) {
                warn!("{}: no handshake within {:?}; closing", p.label(), deadline);
            }
            self.finish_connect(conn, Err(ConnectError::HandshakeTimeout));
            net.close(conn);
        }
        let grace = self.config.conflict_grace;
        let mut superseded: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.superseded.is_some_and(|t| now.duration_since(t) >= grace))
            .map(|p| p.conn)
            .collect();
        superseded.sort_unstable();
        for conn in superseded {
            debug!("{conn}: closing the connection not kept after a conflict");
            net.close(conn);
        }
    }
}
