//! The user's `connect`: a dial, and the answer once the peer's handshake is in (or not).

use std::net::SocketAddr;

use py2p_net::{ConnId, Net};

use super::state::MeshCore;
use crate::error::ConnectError;
use crate::mesh::ConnectReply;
use crate::message::PeerEvent;

impl MeshCore {
    /// Tells a waiting `connect` how it ended.
    pub(super) fn finish_connect(&mut self, conn: ConnId, result: Result<String, ConnectError>) {
        let Some((addr, reply)) = self.waiters.remove(&conn) else {
            return;
        };
        if let Err(e) = &result {
            self.note_error(format!("connect to {addr}: {e}"));
        }
        self.answer_connect(addr, reply, result);
    }

    /// Tells whoever waits on a `connect` to `addr` how it ended: the waiting thread or the
    /// callback either way, the event stream only of a failure.
    pub(super) fn answer_connect(
        &self,
        addr: SocketAddr,
        reply: ConnectReply,
        result: Result<String, ConnectError>,
    ) {
        match (reply, result) {
            (ConnectReply::Wait(tx), result) => {
                let _ = tx.send(result);
            }
            (ConnectReply::Notify(tell), result) => tell(result),
            (ConnectReply::Event, Err(error)) => self
                .shared
                .push_event(PeerEvent::ConnectFailed { addr, error }),
            _ => {}
        }
    }

    /// The user's `connect`: a dial, answered once the peer's handshake is in.
    pub(super) fn user_connect(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        reply: ConnectReply,
    ) {
        if let Some(id) = expected_id
            .as_ref()
            .filter(|id| self.routing.contains_key(*id))
        {
            self.answer_connect(addr, reply, Ok(id.clone()));
            return;
        }
        let host = addr.ip().to_string();
        if self.is_self_addr(&host, addr.port()) {
            self.answer_connect(addr, reply, Err(ConnectError::SelfConnection));
            return;
        }
        match self.dial(net, addr, expected_id, Vec::new()) {
            Ok(conn) => {
                self.waiters.insert(conn, (addr, reply));
            }
            Err(text) => {
                let error = ConnectError::Io(std::io::ErrorKind::Other, text);
                self.note_error(format!("connect to {addr}: {error}"));
                self.answer_connect(addr, reply, Err(error));
            }
        }
    }
}
