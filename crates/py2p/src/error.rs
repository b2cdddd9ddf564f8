//! The one error type of this crate.

use std::{fmt, io};

use py2p_net::CloseReason;

/// What can go wrong using a py2p socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Binding, connecting or another socket operation failed.
    Io(io::Error),
    /// The socket is closed.
    Closed,
    /// An address could not be parsed or resolved.
    InvalidAddress(String),
    /// A sync-table key is leased to another node.
    Leased {
        /// The key.
        key: Vec<u8>,
        /// The id of the node that holds the lease.
        owner: String,
        /// When the lease ends, in seconds since the Unix epoch.
        until: u64,
    },
    /// Storing the value would take the sync table past `MeshConfig::max_table_bytes`.
    TableFull {
        /// The key.
        key: Vec<u8>,
        /// Bytes the table holds now.
        used: usize,
        /// The most it may hold.
        max: usize,
    },
    /// The event loop reported an error.
    Net(py2p_net::NetError),
    /// An argument cannot be used (a chord key or value of a size out of bounds).
    InvalidInput(String),
    /// A `connect` failed: the TCP connection or the handshake did not come about.
    Connect {
        /// The address dialled.
        addr: std::net::SocketAddr,
        /// Why.
        error: ConnectError,
    },
    /// The call would wait for the event loop, and it was made on the event-loop thread (from
    /// a handler), where waiting would freeze the node. The name is the method's; see its
    /// documentation for the non-waiting way.
    OnLoopThread(&'static str),
    /// A message over the limits its receivers apply (`Limits`): every peer would drop it.
    TooLarge {
        /// The limit that it passes: `max_frame_len`, `max_decompressed_len` or `packets`.
        what: &'static str,
        /// Its size (bytes of the uncompressed body, or packets).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A sub-flag the protocol reserves for itself (handshake, peers, request, ...).
    ReservedSubFlag(u8),
    /// A sync-table key that holds no value (py2p's `KeyError` from `pop` and `del`).
    NoSuchKey(Vec<u8>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A wrapped error's text is part of this one's, so `source()` does not return it
            // too: a reporter that prints the chain prints each text once.
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Closed => f.write_str("the socket is closed"),
            Error::InvalidAddress(a) => write!(f, "invalid address: {a}"),
            Error::Leased { key, owner, until } => write!(
                f,
                "key {:?} is leased to {owner} until {until} (Unix time)",
                String::from_utf8_lossy(key)
            ),
            Error::TableFull { key, used, max } => write!(
                f,
                "no room for key {:?}: the sync table holds {used} of max_table_bytes {max}",
                String::from_utf8_lossy(key)
            ),
            Error::Net(e) => write!(f, "{e}"),
            Error::InvalidInput(e) => write!(f, "invalid input: {e}"),
            Error::Connect { addr, error } => write!(f, "cannot connect to {addr}: {error}"),
            Error::OnLoopThread(method) => write!(
                f,
                "{method} would wait on the event-loop thread (called from a handler); see its documentation"
            ),
            Error::TooLarge { what, size, limit } => write!(
                f,
                "message too large: {size} over the {what} limit of {limit}; every peer would drop it"
            ),
            Error::ReservedSubFlag(b) => write!(
                f,
                "sub-flag {b:#04x} is reserved by the protocol ({})",
                py2p_wire::Flag(*b).name().unwrap_or("unnamed")
            ),
            Error::NoSuchKey(key) => write!(f, "no such key: {:?}", String::from_utf8_lossy(key)),
        }
    }
}

/// No `source()`: each variant's `Display` already includes the text of what it wraps
/// (printing both would say it twice).
impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<py2p_net::NetError> for Error {
    fn from(e: py2p_net::NetError) -> Self {
        match e {
            py2p_net::NetError::Closed => Error::Closed,
            py2p_net::NetError::Io(e) => Error::Io(e),
            other => Error::Net(other),
        }
    }
}

/// Why a `connect` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens there (the peer refused the TCP connection).
    Refused,
    /// The TCP connection was not established within `NetConfig::connect_timeout`.
    TimedOut,
    /// The connection was up but the peer sent no handshake within
    /// `MeshConfig::handshake_timeout`.
    HandshakeTimeout,
    /// The peer runs another protocol (subnet or encryption): its protocol id.
    ProtocolMismatch {
        /// The protocol id the peer announced.
        theirs: String,
    },
    /// The address is this node's own.
    SelfConnection,
    /// The connection closed before the handshake completed.
    Closed(String),
    /// Another socket error.
    Io(io::ErrorKind, String),
}

impl ConnectError {
    /// The error for a connection that closed before its handshake, for `reason`.
    pub(crate) fn from_close(reason: &CloseReason) -> ConnectError {
        match reason {
            CloseReason::ConnectFailed(text) => {
                if text == "timed out" {
                    return ConnectError::TimedOut;
                }
                // The event loop keeps only the text of the `io::Error`: its OS code is
                // read back from it ("... (os error 111)").
                let kind = text
                    .rsplit_once("(os error ")
                    .and_then(|(_, code)| code.trim_end_matches(')').parse::<i32>().ok())
                    .map(|code| io::Error::from_raw_os_error(code).kind());
                match kind {
                    Some(io::ErrorKind::ConnectionRefused) => ConnectError::Refused,
                    Some(io::ErrorKind::TimedOut) => ConnectError::TimedOut,
                    Some(kind) => ConnectError::Io(kind, text.clone()),
                    None => ConnectError::Io(io::ErrorKind::Other, text.clone()),
                }
            }
            other => ConnectError::Closed(other.to_string()),
        }
    }

    /// The `io::ErrorKind` closest to this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ConnectError::Refused => io::ErrorKind::ConnectionRefused,
            ConnectError::TimedOut | ConnectError::HandshakeTimeout => io::ErrorKind::TimedOut,
            ConnectError::ProtocolMismatch { .. } | ConnectError::SelfConnection => {
                io::ErrorKind::InvalidData
            }
            ConnectError::Closed(_) => io::ErrorKind::ConnectionAborted,
            ConnectError::Io(kind, _) => *kind,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused => f.write_str("connection refused"),
            ConnectError::TimedOut => f.write_str("timed out"),
            ConnectError::HandshakeTimeout => f.write_str("no handshake from the peer in time"),
            ConnectError::ProtocolMismatch { theirs } => {
                write!(f, "the peer runs another protocol ({theirs})")
            }
            ConnectError::SelfConnection => f.write_str("that address is this node's own"),
            ConnectError::Closed(why) => write!(f, "closed before the handshake: {why}"),
            ConnectError::Io(_, text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ConnectError {}
