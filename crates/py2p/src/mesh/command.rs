//! What users' threads ask of the event loop: [`Command`]s, and who hears how a `connect`
//! ends ([`ConnectReply`]); the [`Handler`] type they register.

use std::net::SocketAddr;
use std::sync::mpsc;

use super::resolver;
use super::status::Status;
use crate::connection::{Connection, SendOn};
use crate::error::ConnectError;
use crate::error::Error;
use crate::message::{Message, MessageKind, PeerInfo};

/// A message handler: runs on the event-loop thread for every message that the protocol does
/// not consume itself, with the [`Connection`] it came on (py2p's `handler(msg, conn)`);
/// returning `true` stops the message there (it is not queued for `recv`).
pub type Handler = Box<dyn FnMut(&Message, &Connection) -> bool + Send>;

/// Who hears how a user's `connect` ends.
pub enum ConnectReply {
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

/// Requests from users' threads to the event loop.
pub enum Command {
    /// A broadcast with the default sub-flag, its packets as a list (the simulator's;
    /// `send` hands over [`Command::BroadcastPacked`]).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    Broadcast {
        packets: Vec<Vec<u8>>,
        bytes: usize,
    },
    /// A broadcast of `send` with the default sub-flag: the packets in one buffer.
    BroadcastPacked {
        packets: super::PackedPackets,
        bytes: usize,
    },
    Whisper {
        target: String,
        packets: Vec<Vec<u8>>,
    },
    /// Many broadcasts in one hand-off ([`MeshSocket::send_many`](super::MeshSocket::send_many)).
    BroadcastMany {
        messages: Vec<Vec<Vec<u8>>>,
        bytes: usize,
    },
    /// Broadcasts of one packet each, end to end in one buffer
    /// ([`MeshSocket::send_many_packed`](super::MeshSocket::send_many_packed)).
    BroadcastLines {
        block: Vec<u8>,
        ends: Vec<usize>,
        bytes: usize,
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
    /// The answer to a host name lookup (from the resolver's thread). Boxed: the largest
    /// variant by far, and rare; every command (a `send`'s broadcast is one) is moved
    /// through the loop's channel at the size of the largest.
    Resolved(Box<(resolver::Lookup, super::core::Purpose)>),
}

/// A handler's [`Connection`] sends through the loop's handle.
impl SendOn for py2p_net::LoopHandle<Command> {
    fn send_on(
        &self,
        conn: py2p_net::ConnId,
        kind: MessageKind,
        payload: Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        self.send(Command::SendOn {
            conn,
            kind,
            payload,
        })
        .map_err(Error::from)
    }
}
