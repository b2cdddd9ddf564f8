//! Messages as users receive them.

use std::fmt;

use crate::mesh::Command;
use crate::Error;

type Handle = py2p_net::LoopHandle<Command>;

/// Whether a message went to everyone or to this node alone.
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

/// A message received from the network (py2p's `message`).
///
/// [`Message::reply`] answers the sender with a whisper, directly when connected to it and
/// through the network's request/response otherwise.
#[derive(Clone)]
pub struct Message {
    pub(crate) wire: py2p_wire::Message,
    pub(crate) kind: MessageKind,
    /// The node's loop, for replies (absent when the node logic runs without one, in tests).
    pub(crate) handle: Option<Handle>,
}

impl Message {
    /// Broadcast or whisper.
    pub fn kind(&self) -> MessageKind {
        self.kind
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

    /// The packets the sender sent, without the sub-flag.
    pub fn packets(&self) -> &[Vec<u8>] {
        self.wire.payload().get(1..).unwrap_or_default()
    }

    /// The whole payload as py2p shows it: the sub-flag, then the packets.
    pub fn payload(&self) -> &[Vec<u8>] {
        self.wire.payload()
    }

    /// The message as it travelled.
    pub fn wire(&self) -> &py2p_wire::Message {
        &self.wire
    }

    /// Sends `packets` back to the sender as a whisper. Never blocks; callable from handlers.
    pub fn reply<P: AsRef<[u8]>>(&self, packets: &[P]) -> Result<(), Error> {
        let packets = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        self.handle
            .as_ref()
            .ok_or(Error::Closed)?
            .send(Command::Whisper {
                target: self.sender(),
                packets,
            })
            .map_err(Error::from)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
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
