//! The user's `connect`: a dial, and the answer once the peer's handshake is in (or not).
//! The core tracks which connections answer a `connect`; who waits for the answer (a
//! thread, a callback, the event stream) is the node's business ([`Effect::ConnectDone`]).

use std::net::SocketAddr;

use py2p_net::{ConnId, Net, NetError};

use super::effect::Effect;
use super::state::MeshCore;
use crate::error::ConnectError;

/// How a user's `connect` goes on.
#[derive(Debug)]
pub(crate) enum Connecting {
    /// Answered at once: the peer was routed already, or the address is ours, or the dial
    /// failed.
    Done(Result<String, ConnectError>),
    /// A dial on this connection: answered later by an [`Effect::ConnectDone`].
    Dialling(ConnId),
}

impl MeshCore {
    /// Ends a user's `connect` on `conn`, if there is one.
    pub(super) fn finish_connect(&mut self, conn: ConnId, result: Result<String, ConnectError>) {
        let Some(addr) = self.waiters.remove(&conn) else {
            return;
        };
        if let Err(e) = &result {
            self.note_error(format!("connect to {addr}: {e}"));
        }
        self.effects
            .push_back(Effect::ConnectDone { conn, addr, result });
    }

    /// The user's `connect`: a dial, answered once the peer's handshake is in.
    pub(crate) fn connect(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
    ) -> Connecting {
        if let Some(id) = expected_id
            .as_ref()
            .filter(|id| self.routing.contains_key(*id))
        {
            return Connecting::Done(Ok(id.clone()));
        }
        let host = addr.ip().to_string();
        if self.is_self_addr(&host, addr.port()) {
            return Connecting::Done(Err(ConnectError::SelfConnection));
        }
        match self.dial(net, addr, expected_id, Vec::new()) {
            Ok(conn) => {
                self.waiters.insert(conn, addr);
                Connecting::Dialling(conn)
            }
            Err(e) => {
                let kind = match &e {
                    NetError::Io(io) => io.kind(),
                    _ => std::io::ErrorKind::Other,
                };
                let error = ConnectError::Io(kind, e.to_string());
                self.note_error(format!("connect to {addr}: {error}"));
                Connecting::Done(Err(error))
            }
        }
    }
}
