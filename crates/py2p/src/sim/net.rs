//! What a node's logic sees of the simulated network: the `py2p_net::Net` it acts through.

use std::net::SocketAddr;
use std::time::Instant;

use py2p_net::{CloseReason, ConnId, Frame, Net, NetError};

use super::network::Network;

/// The network as one node sees it during one of its callbacks.
pub(super) struct NodeNet<'a> {
    pub network: &'a mut Network,
    pub node: usize,
}

impl Net for NodeNet<'_> {
    fn send(&mut self, conn: ConnId, frame: Frame) {
        self.network.send(self.node, conn, frame.into_vec());
    }

    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        self.network.dial(self.node, addr)
    }

    fn close(&mut self, conn: ConnId) {
        if self
            .network
            .ends
            .get(&conn)
            .is_some_and(|e| e.node == self.node)
        {
            self.network.closing.push((conn, CloseReason::Local));
        }
    }

    fn queued(&self, conn: ConnId) -> usize {
        self.network.queued(conn)
    }

    fn total_queued(&self) -> usize {
        self.network.total_queued(self.node)
    }

    fn now(&self) -> Instant {
        self.network.base + self.network.now
    }

    fn unix_time(&self) -> u64 {
        self.network.unix_time()
    }

    fn shutdown(&mut self) {
        // A node that stops its own loop: the simulator kills it after this turn.
        self.network.shutdowns.push(self.node);
    }
}
