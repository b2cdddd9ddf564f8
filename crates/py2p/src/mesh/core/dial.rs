//! Dialling: addresses we are given or peers advertise (looked up off the loop's thread).

use std::net::{IpAddr, SocketAddr};

use log::{debug, warn};
use py2p_net::{ConnId, Net, NetError};
use py2p_wire::Flag;

use super::effect::{Effect, Purpose};
use super::state::{Dial, MeshCore};
use crate::mesh::resolver::Then;

impl MeshCore {
    /// Dials `addr`, expecting `expected_id` there and sending `deferred` whispers once the
    /// connection is up; a dial the network refuses (the connection cap, say) is logged and
    /// noted for `status()`.
    pub(crate) fn dial(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        deferred: Vec<Vec<Vec<u8>>>,
    ) -> Result<ConnId, NetError> {
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
                Err(e)
            }
        }
    }

    /// Dials an address a peer advertised (`then` says whom we expect and what to send),
    /// a host name once the node has looked it up (off the loop's thread).
    pub(super) fn dial_advertised(
        &mut self,
        net: &mut dyn Net,
        host: &str,
        port: u16,
        then: Then,
        purpose: Purpose,
    ) {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.dial_resolved(net, SocketAddr::new(ip, port), then, purpose),
            Err(_) => self.effects.push_back(Effect::Resolve {
                host: host.to_owned(),
                port,
                then,
                purpose,
            }),
        }
    }

    /// Dials an address found for [`MeshCore::dial_advertised`], unless the peer was reached
    /// meanwhile (then deferred whispers go over that connection).
    pub(crate) fn dial_resolved(
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

/// What is lost with a request that cannot go ahead, for log lines.
pub(crate) fn dropped_note(then: &Then) -> String {
    match then.deferred.len() {
        0 => String::new(),
        n => format!("; {n} whisper(s) dropped"),
    }
}
