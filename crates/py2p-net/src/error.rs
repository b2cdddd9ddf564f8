//! The one error type of this crate.

use std::{fmt, io};

/// What can go wrong starting or talking to an event loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetError {
    /// A socket operation failed (bind, connect, poll).
    Io(io::Error),
    /// The event loop has stopped.
    Closed,
    /// The connection limit is reached.
    TooManyConnections {
        /// The configured limit.
        max: usize,
    },
    /// A TLS certificate or key could not be made or loaded.
    Tls(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Io(e) => write!(f, "I/O error: {e}"),
            NetError::Closed => f.write_str("the event loop has stopped"),
            NetError::TooManyConnections { max } => {
                write!(f, "connection limit of {max} reached")
            }
            NetError::Tls(e) => write!(f, "TLS set-up failed: {e}"),
        }
    }
}

/// No `source()`: `Display` already includes the wrapped `io::Error`'s text.
impl std::error::Error for NetError {}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        NetError::Io(e)
    }
}
