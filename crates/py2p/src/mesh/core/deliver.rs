//! What the core knows of a delivery: the handle handlers get on a connection, and the
//! counters. Running the handlers and filling the inbox is the node's (see
//! [`Effect::Deliver`](super::effect::Effect::Deliver)).

use std::net::SocketAddr;

use py2p_net::ConnId;

use super::path::Path;
use super::state::MeshCore;
use crate::connection::Connection;

impl MeshCore {
    /// The handle a handler gets on the connection `conn`, without its way to the loop (the
    /// node adds it).
    pub(crate) fn connection(&self, conn: ConnId) -> Connection {
        let peer = self.peers.get(&conn);
        Connection {
            conn,
            peer_id: peer.and_then(|p| p.id.clone()),
            addr: peer.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.tcp_addr),
            out_addr: peer.and_then(|p| p.addr.clone()),
            outgoing: peer.is_some_and(|p| p.outgoing),
            limits: self.limits,
            sender_id_len: self.id.len(),
            handle: None,
        }
    }

    /// The id of the peer on `conn`, once its handshake is in (no copy).
    pub(crate) fn peer_id_ref(&self, conn: ConnId) -> Option<&str> {
        self.peers.get(&conn)?.id.as_deref()
    }

    /// A delivered message went to the inbox.
    pub(crate) fn count_queued(&mut self) {
        self.hit(Path::Delivered);
        self.counters.received += 1;
    }

    /// A delivered message had a sub-flag users do not get, and no handler took it.
    pub(crate) fn count_unknown(&mut self) {
        self.hit(Path::Unknown);
    }

    /// A handler panicked.
    pub(crate) fn count_handler_panic(&mut self) {
        self.counters.handler_panics += 1;
    }
}
