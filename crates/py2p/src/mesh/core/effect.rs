//! What the core asks of the node around it: the outputs that are not frames, dials or
//! closes (those go through `py2p_net::Net`). The core queues them in order and the node
//! (`crate::mesh::node`) carries them out after each input, in that order.

use std::net::SocketAddr;

use py2p_net::ConnId;

use crate::error::ConnectError;
use crate::mesh::resolver::Then;

/// One output of the mesh core.
#[derive(Debug)]
pub(crate) enum Effect {
    /// A message for the user: the handlers, then (unless one took it) the inbox.
    Deliver {
        /// The connection it came on.
        conn: ConnId,
        /// The message.
        msg: py2p_wire::Message,
    },
    /// A peer's handshake is in and it is routed: a sync table sends it every key; when
    /// `newly_routed`, the chord table and the user's peer events hear of it.
    PeerUp {
        /// Its connection.
        conn: ConnId,
        /// Its id.
        id: String,
        /// The address it advertises.
        addr: (String, u16),
        /// Whether the routing table did not hold it before.
        newly_routed: bool,
    },
    /// A routed peer is gone (no spare connection took over): the chord table and the
    /// user's peer events hear of it, then the node calls `MeshCore::after_peer_down`.
    PeerDown {
        /// Its id.
        id: String,
    },
    /// A user's `connect` on `conn` ended.
    ConnectDone {
        /// The dial's connection.
        conn: ConnId,
        /// The address dialled.
        addr: SocketAddr,
        /// The peer's id, or why not.
        result: Result<String, ConnectError>,
    },
    /// The routing table changed: publish it for `peers()` now (before any peer event).
    PeersChanged,
    /// An error for `status()` (already logged).
    Error(String),
    /// Look a host name up (off the loop's thread), then call `MeshCore::dial_resolved`.
    Resolve {
        /// The name.
        host: String,
        /// The port.
        port: u16,
        /// Whom we expect there and what to send.
        then: Then,
        /// Why it is dialled.
        purpose: Purpose,
    },
    /// A sync `store` for the sync table.
    Store {
        /// The connection it came on.
        conn: ConnId,
        /// The message.
        msg: py2p_wire::Message,
    },
    /// A chord message for the chord table.
    Chord {
        /// The connection it came on.
        conn: ConnId,
        /// The message.
        msg: py2p_wire::Message,
    },
}

/// Which tables the node around the core has: frames for a table it lacks go the way of
/// other messages.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tables {
    /// A sync table (`store` messages).
    pub sync: bool,
    /// A chord table (chord messages).
    pub chord: bool,
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
