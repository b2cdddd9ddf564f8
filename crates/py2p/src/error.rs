//! The one error type of this crate.

use std::{fmt, io};

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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Net(e) => Some(e),
            _ => None,
        }
    }
}

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
