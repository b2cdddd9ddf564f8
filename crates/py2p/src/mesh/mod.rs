//! The mesh network: py2p's `mesh_socket`.
//!
//! [`MeshSocket`] is what users hold; `core` is the node's logic as a state machine driven
//! by the event loop; `seen` is the waterfall's de-duplication; `peer` is per-connection
//! state and the peer-list JSON; `resolver` looks up host names peers advertise, off the
//! loop's thread.

pub(crate) mod core;
mod peer;
mod resolver;
mod seen;
pub(crate) mod shared;
mod socket;

use std::net::SocketAddr;
use std::sync::mpsc;

pub(crate) use self::core::MeshCore;
pub(crate) use self::shared::Shared;
pub use self::socket::{Events, MeshSocket, Messages};

use crate::connection::{ConnectError, Connection};
use crate::message::{Message, MessageKind, PeerInfo};

/// A message handler: runs on the event-loop thread for every message that the protocol does
/// not consume itself, with the [`Connection`] it came on (py2p's `handler(msg, conn)`);
/// returning `true` stops the message there (it is not queued for `recv`).
pub type Handler = Box<dyn FnMut(&Message, &Connection) -> bool + Send>;

pub_if_internals! {
/// Who hears how a user's `connect` ends.
pub(crate) enum ConnectReply {
    /// Nobody (a redial, or a test).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    None,
    /// A thread waiting in `connect`: the peer's id once its handshake is in, or the error.
    Wait(mpsc::Sender<Result<String, ConnectError>>),
    /// `connect_nonblocking`: a failure becomes a [`PeerEvent::ConnectFailed`](crate::PeerEvent).
    Event,
    /// Told through a callback (the async `connect`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Notify(Box<dyn FnOnce(Result<String, ConnectError>) + Send>),
}
}

pub_if_internals! {
/// Requests from users' threads to the event loop.
pub(crate) enum Command {
    Broadcast {
        packets: Vec<Vec<u8>>,
        bytes: usize,
    },
    Whisper {
        target: String,
        packets: Vec<Vec<u8>>,
    },
    Connect {
        addr: SocketAddr,
        /// The id the node is expected to have (py2p's `connect(addr, port, id)`): when it
        /// is routed already, nothing is dialled.
        expected_id: Option<String>,
        reply: ConnectReply,
    },
    /// A message of the user's with its own type and sub-flag: a broadcast goes through the
    /// waterfall, a whisper to every directly connected peer (py2p's `send(flag=, type=)`).
    SendWith {
        kind: MessageKind,
        sub_flag: u8,
        packets: Vec<Vec<u8>>,
        bytes: usize,
    },
    /// A whisper to one node with the user's sub-flag.
    WhisperWith {
        target: String,
        sub_flag: u8,
        packets: Vec<Vec<u8>>,
    },
    /// A message on one connection (a handler's [`Connection::send`]).
    SendOn {
        conn: py2p_net::ConnId,
        kind: MessageKind,
        payload: Vec<Vec<u8>>,
    },
    /// Ask every peer for its peer list (py2p's `request_peers`).
    RequestPeers,
    Disconnect {
        id: String,
    },
    RegisterHandler(Handler),
    Peers(mpsc::Sender<Vec<PeerInfo>>),
    Status(mpsc::Sender<Status>),
    Sync(crate::sync::SyncCommand),
    Chord(crate::chord::ChordCommand),
    /// The answer to a host name lookup (from the resolver's thread).
    Resolved((resolver::Lookup, self::core::Purpose)),
}
}

/// A snapshot of a node's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: String,
    /// Its protocol id.
    pub protocol_id: String,
    /// The address it advertises.
    pub out_addr: (String, u16),
    /// Peers in the routing table (handshake complete).
    pub peers: usize,
    /// Open connections and dials in progress.
    pub connections: usize,
    /// Connections still waiting for a handshake.
    pub awaiting_handshake: usize,
    /// Messages delivered to this node's user.
    pub received: u64,
    /// Frames relayed to other peers by the waterfall.
    pub relayed: u64,
    /// Broadcasts dropped as already seen.
    pub duplicates: u64,
    /// Broadcasts dropped as older than the expiry.
    pub expired: u64,
    /// Frames that could not be decoded.
    pub decode_errors: u64,
    /// Peers refused for running another protocol.
    pub refused_subnet: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
    /// Broadcast ids remembered.
    pub seen_ids: usize,
    /// Whispers waiting for a route.
    pub pending_requests: usize,
    /// Peers lost without our doing and still being redialled.
    pub lost_peers: usize,
    /// Messages waiting in the inbox.
    pub inbox: usize,
    /// The errors the node met, oldest first (py2p's `status` list of exceptions): peers
    /// that sent undecodable frames or ran another protocol, failed dials, handlers that
    /// panicked, whispers that found no route. At most `MeshConfig::max_status_errors` are
    /// kept, the most recent; `errors_total` counts them all.
    pub errors: Vec<String>,
    /// Every error the node met since it started.
    pub errors_total: u64,
}
