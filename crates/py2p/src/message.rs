//! Messages as users receive them.

use std::fmt;

/// Whether a message went to everyone or to this node alone: the message type (py2p's main
/// flag, `flag=` of `send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Sent to every node of the network.
    Broadcast,
    /// Sent to this node alone.
    Whisper,
}

impl MessageKind {
    /// `"broadcast"` or `"whisper"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Broadcast => "broadcast",
            MessageKind::Whisper => "whisper",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message received from the network (py2p's `message`): plain data.
///
/// To answer it, use the socket that delivered it ([`MeshSocket::reply`](crate::MeshSocket::reply),
/// py2p's `msg.reply`) or, in a handler, the [`Connection`](crate::Connection) it came on.
#[derive(Clone)]
pub struct Message {
    pub(crate) wire: py2p_wire::Message,
    pub(crate) kind: MessageKind,
}

impl Message {
    /// Broadcast or whisper: how it travelled.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The sub-flag (the first packet of the payload, py2p's `packets[0]`, `type=` of
    /// `send`) when it is one byte: `0x00` broadcast, `0x02` whisper, or a byte of the
    /// user's own protocol.
    pub fn sub_flag(&self) -> Option<u8> {
        match self.wire.payload().first() {
            Some([b]) => Some(*b),
            _ => None,
        }
    }

    /// The first packet of the payload as it travelled (py2p allows a sub-flag of more than
    /// one byte; [`Message::sub_flag`] is the usual one-byte case).
    pub fn flag_packet(&self) -> &[u8] {
        self.wire.payload().first().unwrap_or_default()
    }

    /// The sender's node id.
    pub fn sender(&self) -> String {
        String::from_utf8_lossy(self.wire.sender()).into_owned()
    }

    /// The message id (base-58 of sha-384 over payload and time).
    pub fn id(&self) -> &str {
        self.wire.id()
    }

    /// When it was sent, in seconds since the Unix epoch.
    pub fn time(&self) -> u64 {
        self.wire.time()
    }

    /// The packets the sender sent, **without** the sub-flag (py2p's `packets[1:]`; py2p's
    /// `packets` is [`Message::payload`] here, and the sub-flag is [`Message::sub_flag`]).
    ///
    /// A view of the packets in the message's buffer, used like a slice: `len`, `get`,
    /// `iter`, `[i]`, `to_vec`, and comparisons with slices and vectors of packets.
    pub fn packets(&self) -> py2p_wire::Payload<'_> {
        self.wire.payload().skip(1)
    }

    /// The whole payload as py2p shows it: the sub-flag, then the packets.
    pub fn payload(&self) -> py2p_wire::Payload<'_> {
        self.wire.payload()
    }

    /// The message as it travelled.
    pub fn wire(&self) -> &py2p_wire::Message {
        &self.wire
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("sub_flag", &self.flag_packet())
            .field("sender", &self.sender())
            .field("id", &self.id())
            .field("time", &self.time())
            .field(
                "packets",
                &self
                    .packets()
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A change in the set of peers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A handshake completed: the peer is in the routing table.
    Connected {
        /// The peer's id.
        id: String,
        /// The address it advertises (its `out_addr`).
        addr: (String, u16),
    },
    /// A peer left the routing table.
    Disconnected {
        /// The peer's id.
        id: String,
    },
    /// A dial started by [`MeshSocket::connect_nonblocking`](crate::MeshSocket::connect_nonblocking)
    /// failed (a waiting `connect` returns its error instead).
    ConnectFailed {
        /// The address dialled.
        addr: std::net::SocketAddr,
        /// Why.
        error: crate::error::ConnectError,
    },
}

/// A peer in the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's id.
    pub id: String,
    /// The address it advertises.
    pub addr: (String, u16),
    /// Whether this node dialled it.
    pub outgoing: bool,
    /// The compression used towards it, if any.
    pub compression: Option<py2p_wire::Compression>,
    /// In SSL mode, the TLS version of the connection (`"TLSv1.3"`); `None` in plaintext.
    pub tls_version: Option<&'static str>,
}
