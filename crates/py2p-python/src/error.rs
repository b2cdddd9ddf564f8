//! The crate's errors as the exceptions py2p raises.

use pyo3::exceptions::{PyKeyError, PyMemoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// Turns an error of the `py2p` crate into the exception py2p users expect: `KeyError` for a
/// leased key (as py2p's `sync_socket`), `ValueError` for a bad address or a sub-flag the
/// protocol reserves, `OSError` for a socket error, `RuntimeError` for a closed socket.
pub(crate) fn to_py(e: py2p::Error) -> PyErr {
    match e {
        py2p::Error::Leased { .. } => PyKeyError::new_err(e.to_string()),
        py2p::Error::TableFull { .. } => PyMemoryError::new_err(e.to_string()),
        py2p::Error::Closed => PyRuntimeError::new_err(e.to_string()),
        py2p::Error::InvalidAddress(_) | py2p::Error::ReservedSubFlag(_) => {
            PyValueError::new_err(e.to_string())
        }
        py2p::Error::Io(io) => PyOSError::new_err(io.to_string()),
        other => PyOSError::new_err(other.to_string()),
    }
}

/// A wire-format error (a bad frame, an unknown compression) as `ValueError`.
pub(crate) fn wire(e: py2p_wire::WireError) -> PyErr {
    PyValueError::new_err(e.to_string())
}
