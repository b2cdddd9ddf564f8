//! The socket a node holds, and the checks of what Python asks to send: shared by the node,
//! its messages (which reply through it) and its handlers, none of which it imports.

use py2p::{ChordSocket, MeshSocket, MessageKind, SyncSocket};
use py2p_wire::Flag;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The socket a node holds.
pub(crate) enum Kind {
    Mesh(MeshSocket),
    Sync(SyncSocket),
    Chord(ChordSocket),
}

/// What a [`Node`] shares with its handlers (which hold it weakly).
pub(crate) struct Inner {
    pub(crate) kind: Kind,
}

impl Inner {
    /// The mesh node (a sync node is one underneath).
    pub(crate) fn mesh(&self) -> &MeshSocket {
        match &self.kind {
            Kind::Mesh(m) => m,
            Kind::Sync(s) => s.mesh(),
            Kind::Chord(c) => c.mesh(),
        }
    }
}

/// py2p's message type (`flag=`): `flags.broadcast` or `flags.whisper`; py2p reserves the
/// others (renegotiate, ping, pong) for itself.
pub(crate) fn message_kind(flag: &[u8]) -> PyResult<MessageKind> {
    match flag {
        [b] if *b == Flag::BROADCAST.0 => Ok(MessageKind::Broadcast),
        [b] if *b == Flag::WHISPER.0 => Ok(MessageKind::Whisper),
        _ => Err(PyValueError::new_err(format!(
            "message type {flag:?}: only flags.broadcast and flags.whisper may be sent"
        ))),
    }
}

/// A sub-flag (`type=`, the first packet): one byte the protocol does not reserve.
pub(crate) fn sub_flag(packet: &[u8]) -> PyResult<u8> {
    match packet {
        [b] => Ok(*b),
        _ => Err(PyValueError::new_err(format!(
            "sub-flag {packet:?}: a sub-flag is one byte"
        ))),
    }
}
