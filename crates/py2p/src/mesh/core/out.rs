//! The net as the node sends on it ([`Out`]): the turn's held relays (`held.rs`) go out
//! before any frame, close or dial, so no sending path has to remember them.
//!
//! The node wraps the net it is given in every callback of the event loop, and the core,
//! the tables and the node's effects all send through the wrapper: a relay held back for
//! the rest of the turn leaves before whatever the node sends next, and at the latest when
//! the loop writes (`Service::before_write`, [`Out::release`]). The frames each peer
//! receives keep the order they had when relays were sent at once.

use std::net::SocketAddr;
use std::time::Instant;

use py2p_net::{ConnId, Frame, Net, NetError};

use super::held::HeldRelays;

/// A net whose sends, closes and dials first send the relays held in this turn.
pub(crate) struct Out<'a> {
    net: &'a mut dyn Net,
    held: &'a mut HeldRelays,
}

impl<'a> Out<'a> {
    /// `net`, with `held` sent before anything else goes out on it.
    pub(crate) fn new(net: &'a mut dyn Net, held: &'a mut HeldRelays) -> Out<'a> {
        Out { net, held }
    }

    /// The relays held in this turn: adding one or withdrawing a send sends nothing.
    pub(crate) fn held(&mut self) -> &mut HeldRelays {
        self.held
    }

    /// Sends the held relays now (the end of the loop's turn).
    #[inline]
    pub(crate) fn release(&mut self) {
        if !self.held.is_empty() {
            self.held.release(self.net);
        }
    }
}

impl Net for Out<'_> {
    #[inline]
    fn send(&mut self, conn: ConnId, frame: Frame) {
        self.release();
        self.net.send(conn, frame);
    }

    #[inline]
    fn send_encoded(&mut self, conn: ConnId, room: usize, encode: &mut dyn FnMut(&mut Vec<u8>)) {
        self.release();
        self.net.send_encoded(conn, room, encode);
    }

    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        self.release();
        self.net.dial(addr)
    }

    fn close(&mut self, conn: ConnId) {
        self.release();
        self.net.close(conn);
    }

    fn queued(&self, conn: ConnId) -> usize {
        self.net.queued(conn)
    }

    fn total_queued(&self) -> usize {
        self.net.total_queued()
    }

    fn now(&self) -> Instant {
        self.net.now()
    }

    fn unix_time(&self) -> u64 {
        self.net.unix_time()
    }

    fn shutdown(&mut self) {
        self.release();
        self.net.shutdown();
    }
}
