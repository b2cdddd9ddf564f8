//! `py2p_rs._core`: the native half of the `py2p_rs` Python package.
//!
//! The package (`python/py2p_rs`) has py2p 0.5.607's module layout and names; this module is
//! what it stands on: the wire format of `py2p-wire` ([`wire`]) and the nodes of the `py2p`
//! crate ([`node`]), whose messages reach Python as [`message::Message`] objects.
//!
//! Threads and the GIL: every node runs its event loop on a thread of its own that never
//! holds the GIL, except while it calls a Python handler ([`handler`]). Every call from
//! Python that may wait (connect, close, a sync write, reading the routing table) releases
//! the GIL while it waits, so the loops and Python handlers keep going.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod error;
mod handler;
mod inner;
mod message;
mod node;
mod packets;
mod wire;

use pyo3::prelude::*;

/// The native module, imported by the pure-Python layer as `py2p_rs._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    wire::register(m)?;
    m.add_class::<node::Node>()?;
    m.add_class::<message::Message>()?;
    m.add_class::<message::Connection>()?;
    Ok(())
}
