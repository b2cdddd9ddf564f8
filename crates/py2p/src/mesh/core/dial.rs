//! Dialling: addresses we are given or peers advertise (looked up off the loop's thread).

use std::net::SocketAddr;

use log::{debug, warn};
use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

use super::state::{Dial, MeshCore};
use crate::mesh::resolver::{Resolution, Sink, Then};
use crate::mesh::Command;

impl MeshCore {
    pub(crate) fn dial(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        deferred: Vec<Vec<Vec<u8>>>,
    ) -> Result<ConnId, String> {
        match net.dial(addr) {
            Ok(conn) => {
                self.dials.insert(
                    conn,
                    Dial {
                        addr,
                        expected_id,
                        deferred,
                    },
                );
                Ok(conn)
            }
            Err(e) => {
                warn!("cannot dial {addr}: {e}");
                self.note_error(format!("cannot dial {addr}: {e}"));
                Err(e.to_string())
            }
        }
    }

    /// Dials an address a peer advertised (`then` says whom we expect and what to send),
    /// looking a host name up on the resolver's thread rather than here.
    pub(super) fn dial_advertised(
        &mut self,
        net: &mut dyn Net,
        host: &str,
        port: u16,
        then: Then,
        purpose: Purpose,
    ) {
        let handle = self.shared.handle.get().cloned();
        let sink = move || -> Option<Sink> {
            let handle = handle?;
            Some(Box::new(move |lookup| {
                handle.send(Command::Resolved((lookup, purpose))).is_ok()
            }))
        };
        match self.resolver.resolve(host, port, then, sink) {
            Resolution::Now(addr, then) => self.dial_resolved(net, addr, then, purpose),
            Resolution::Later => debug!("looking up {host}:{port} ({purpose:?})"),
            Resolution::Refused(then) => warn!(
                "cannot look up {host}:{port} now ({} lookups waiting; {purpose:?}){}",
                self.resolver.pending(),
                dropped_note(&then)
            ),
        }
    }

    /// Dials an address found for [`MeshCore::dial_advertised`], unless the peer was reached
    /// meanwhile (then deferred whispers go over that connection).
    pub(super) fn dial_resolved(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        then: Then,
        purpose: Purpose,
    ) {
        if let Some(id) = &then.expected_id {
            if let Some(&conn) = self.routing.get(id) {
                for payload in then.deferred {
                    self.send_to(net, conn, Flag::WHISPER, payload);
                }
                return;
            }
            if then.deferred.is_empty() && self.knows(id) {
                return;
            }
        }
        if purpose == Purpose::PeersList
            && (self.outgoing_count() >= self.config.max_outgoing || self.dialling(addr))
        {
            return;
        }
        match &then.expected_id {
            Some(id) => debug!("dialling {id} at {addr} ({purpose:?})"),
            None => debug!("dialling {addr} ({purpose:?})"),
        }
        let _ = self.dial(net, addr, then.expected_id, then.deferred);
    }
}

/// Why an advertised address is dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A peer from a peers list (counts against `max_outgoing`).
    PeersList,
    /// The target of a request/response, to deliver whispers.
    Response,
    /// A lost peer, dialled again.
    Redial,
}

/// What is lost with a request that cannot go ahead, for log lines.
pub(super) fn dropped_note(then: &Then) -> String {
    match then.deferred.len() {
        0 => String::new(),
        n => format!("; {n} whisper(s) dropped"),
    }
}
