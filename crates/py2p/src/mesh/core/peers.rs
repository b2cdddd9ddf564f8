//! Peer lists: the list we send, the lists we get, and the addresses we must not dial.

use std::net::{IpAddr, SocketAddr};

use log::debug;
use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

use super::effect::Purpose;
use super::path::Path;
use super::state::MeshCore;
use crate::mesh::peer::{self};
use crate::mesh::resolver::Then;

impl MeshCore {
    /// The `peers` list for the peer on `conn`: at most `max_peer_list` entries (py2p sends
    /// all, which costs a node with a thousand peers 44 MB of lists as they join; a joiner
    /// dials only `max_outgoing` of them). Sorted, then a window starting at a place that
    /// depends on the connection, so that different joiners hear of different peers and a
    /// simulated network still replays exactly from its seed.
    pub(super) fn peer_list(&self, conn: ConnId) -> String {
        let mut entries: Vec<(&str, &(String, u16))> = self
            .routing
            .iter()
            .filter_map(|(id, c)| Some((id.as_str(), self.peers.get(c)?.addr.as_ref()?)))
            .collect();
        entries.sort_unstable();
        let n = entries.len();
        let take = n.min(self.config.max_peer_list);
        let start = if n > take {
            (conn.to_raw() as usize).wrapping_mul(7919) % n
        } else {
            0
        };
        peer::peer_list_json((0..take).filter_map(|i| entries.get((start + i) % n).copied()))
    }

    pub(crate) fn request_peers(&mut self, net: &mut dyn Net) {
        let mut conns: Vec<ConnId> = self.routing.values().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.send_to(
                net,
                conn,
                Flag::WHISPER,
                vec![vec![Flag::REQUEST.0], b"*".to_vec()],
            );
        }
    }

    pub(super) fn handle_peers(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        payload: py2p_wire::Payload<'_>,
    ) {
        self.hit(Path::Peers);
        let Some(list) = payload.get(1).and_then(peer::parse_peer_list) else {
            debug!("{conn}: malformed peers list");
            return;
        };
        for ((host, port), id) in list {
            if self.outgoing_count() >= self.config.max_outgoing {
                break;
            }
            if id == self.id || self.knows(&id) || self.is_self_addr(&host, port) {
                continue;
            }
            if !self.may_dial_listed(&id, net.now()) {
                debug!("{conn}: peers list names {id}, lost a moment ago: not dialled before its next try");
                continue;
            }
            let then = Then {
                expected_id: Some(id),
                deferred: Vec::new(),
            };
            self.dial_advertised(net, &host, port, then, Purpose::PeersList);
        }
    }

    pub(super) fn outgoing_count(&self) -> usize {
        self.dials.len()
            + self
                .peers
                .values()
                .filter(|p| p.outgoing && p.superseded.is_none())
                .count()
    }

    pub(super) fn is_self_addr(&self, host: &str, port: u16) -> bool {
        port == self.out_addr.1
            && (host == self.out_addr.0 || (is_loopback(host) && is_loopback(&self.out_addr.0)))
    }

    /// Whether a connection we dialled to `addr` is still on its way (not yet answered with a
    /// handshake): a peers list naming that address must not make a second one (the user's
    /// `connect` has no id to match it by).
    pub(super) fn dialling(&self, addr: SocketAddr) -> bool {
        self.dials.values().any(|d| d.addr == addr)
            || self
                .peers
                .values()
                .any(|p| p.outgoing && p.id.is_none() && p.tcp_addr == addr)
    }

    pub(super) fn knows(&self, id: &str) -> bool {
        self.routing.contains_key(id)
            || self
                .dials
                .values()
                .any(|d| d.expected_id.as_deref() == Some(id))
    }

    /// After a routed peer is lost and the tables have heard of it ([`Effect::PeerDown`]):
    /// py2p asks its remaining peers for theirs.
    ///
    /// [`Effect::PeerDown`]: super::effect::Effect::PeerDown
    pub(crate) fn after_peer_down(&mut self, net: &mut dyn Net) {
        self.request_peers(net);
    }
}

pub(super) fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
