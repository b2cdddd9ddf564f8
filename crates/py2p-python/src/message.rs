//! Messages as Python sees them: py2p's `message`, and the connection handle handlers get.

use std::sync::Weak;

use py2p_wire::{base58, Flag};
use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::error;
use crate::node::Inner;
use crate::packets;

/// A message received from the network (py2p's `base.message`): `packets` (the sub-flag
/// first), `sender`, `id`, `time`, `time_58`, `server`, `protocol`, and `reply(*args)`.
#[pyclass(module = "py2p_rs._core", name = "message", frozen)]
pub struct Message {
    msg: py2p::Message,
    /// A weak reference to the Python socket that received it (`server`).
    server: Py<PyAny>,
    /// The node that received it, for `reply`.
    node: Weak<Inner>,
}

impl Message {
    pub(crate) fn new(msg: py2p::Message, server: Py<PyAny>, node: Weak<Inner>) -> Message {
        Message { msg, server, node }
    }
}

/// Whispers `packets` to the sender of `msg` through the node that received it.
fn reply_to(
    node: &Weak<Inner>,
    msg: &py2p::Message,
    packets: &[Vec<u8>],
) -> Result<(), py2p::Error> {
    let node = node.upgrade().ok_or(py2p::Error::Closed)?;
    node.mesh().reply(msg, packets)
}

#[pymethods]
impl Message {
    /// The packets as py2p hands them over: the sub-flag, then what the sender sent.
    #[getter]
    fn packets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        packets::to_tuple(py, self.msg.payload())
    }

    /// The sender's id.
    #[getter]
    fn sender<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.msg.wire().sender())
    }

    /// The message id.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.msg.id().as_bytes())
    }

    /// When it was sent (Unix seconds).
    #[getter]
    fn time(&self) -> u64 {
        self.msg.time()
    }

    /// `time` in base-58.
    #[getter]
    fn time_58<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, base58::encode_u64(self.msg.time()).as_bytes())
    }

    /// The socket that received it (`None` once that socket is gone).
    #[getter]
    fn server<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.server.bind(py).call0()
    }

    /// The protocol of the socket that received it.
    #[getter]
    fn protocol<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.server(py)?.getattr("protocol")
    }

    /// The message as py2p's `InternalMessage` (`py2p_rs.base.InternalMessage`).
    #[getter]
    fn msg<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let wire = self.msg.wire();
        let class = py.import("py2p_rs.base")?.getattr("InternalMessage")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("timestamp", wire.time())?;
        class.call(
            (
                PyBytes::new(py, wire.msg_type()),
                PyBytes::new(py, wire.sender()),
                packets::to_tuple(py, wire.payload())?,
            ),
            Some(&kwargs),
        )
    }

    /// Whispers `args` back to the sender: directly when connected to it, else through the
    /// network's request/response, as py2p does. Never waits; callable from handlers.
    #[pyo3(signature = (*args))]
    fn reply(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let packets = packets::packets(args.as_any())?;
        py.detach(|| reply_to(&self.node, &self.msg, &packets))
            .map_err(error::to_py)
    }

    /// Length of the message body.
    fn __len__(&self) -> usize {
        self.msg.wire().body_len()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let packets = self.packets(py)?;
        let rest = packets.get_slice(1, packets.len());
        let kind = match packets.get_item(0) {
            Ok(flag) => flag.repr()?.to_string(),
            Err(_) => "None".into(),
        };
        Ok(format!(
            "message(type={kind}, packets={}, sender={})",
            rest.repr()?,
            self.sender(py).repr()?
        ))
    }
}

/// The connection a handler's message came through (py2p's `mesh_connection`), as far as
/// the `py2p` crate exposes it: `send(msg_type, sub_flag, *packets)` answers the message's
/// sender.
///
/// TODO(issue 13): the crate's handlers will receive a real connection handle; until then a
/// whisper goes to the sender (through the routing table, so also when the message was
/// relayed), a broadcast goes to the whole network, and other message types raise
/// `NotImplementedError`.
#[pyclass(module = "py2p_rs._core", name = "mesh_connection", frozen)]
pub struct Connection {
    msg: py2p::Message,
    node: Weak<Inner>,
}

impl Connection {
    pub(crate) fn new(msg: py2p::Message, node: Weak<Inner>) -> Connection {
        Connection { msg, node }
    }
}

#[pymethods]
impl Connection {
    /// The peer's id (the message's sender).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.msg.wire().sender())
    }

    /// Sends `[msg_type, *args]`: `(flags.whisper, flags.whisper, ...)` to the peer,
    /// `(flags.broadcast, flags.broadcast, ...)` to the network.
    #[pyo3(signature = (msg_type, *args))]
    fn send(
        &self,
        py: Python<'_>,
        msg_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let msg_type = packets::packet(msg_type)?;
        let mut all = packets::packets(args.as_any())?;
        let sub = if all.is_empty() {
            Vec::new()
        } else {
            all.remove(0)
        };
        let whisper = [Flag::WHISPER.0];
        let broadcast = [Flag::BROADCAST.0];
        if msg_type == whisper && sub == whisper {
            return py
                .detach(|| reply_to(&self.node, &self.msg, &all))
                .map_err(error::to_py);
        }
        if msg_type == broadcast && sub == broadcast {
            let node = self
                .node
                .upgrade()
                .ok_or_else(|| error::to_py(py2p::Error::Closed))?;
            return py.detach(|| node.mesh().send(&all)).map_err(error::to_py);
        }
        Err(PyNotImplementedError::new_err(
            "a connection's send with this message type and sub-flag needs the py2p crate's \
             connection handle (issue 13)",
        ))
    }
}
