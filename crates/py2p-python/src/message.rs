//! Messages as Python sees them: py2p's `message`, and the connection handle handlers get.

use std::sync::Weak;

use py2p_wire::base58;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::error;
use crate::inner::Inner;
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

/// The connection a handler's message came through (py2p's `mesh_connection`), wrapping the
/// `py2p` crate's [`py2p::Connection`]: `id` (the peer's id, `None` before its handshake),
/// `addr` (its address `[host, port]`), `outgoing`, and `send(msg_type, sub_flag, *packets)`
/// on this very connection. Never waits: callable from the handler.
#[pyclass(module = "py2p_rs._core", name = "mesh_connection", frozen)]
pub struct Connection {
    conn: py2p::Connection,
}

impl Connection {
    pub(crate) fn new(conn: py2p::Connection) -> Connection {
        Connection { conn }
    }
}

#[pymethods]
impl Connection {
    /// The peer's id, or `None` before its handshake.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.conn
            .peer_id()
            .map(|id| PyBytes::new(py, id.as_bytes()))
    }

    /// The address at the other end: `[host, port]`, as py2p's `conn.addr`.
    #[getter]
    fn addr(&self) -> (String, u16) {
        let addr = self.conn.addr();
        (addr.ip().to_string(), addr.port())
    }

    /// Whether this node dialled the connection.
    #[getter]
    fn outgoing(&self) -> bool {
        self.conn.outgoing()
    }

    /// Sends `[msg_type, *args]` on this connection (py2p's `conn.send(flag, type, *args)`):
    /// `msg_type` is `flags.broadcast` (the peer relays it to the network) or
    /// `flags.whisper`; the first of `args` is the sub-flag.
    #[pyo3(signature = (msg_type, *args))]
    fn send(
        &self,
        py: Python<'_>,
        msg_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let kind = crate::inner::message_kind(&packets::packet(msg_type)?)?;
        let mut all = packets::packets(args.as_any())?;
        if all.is_empty() {
            return Err(PyValueError::new_err(
                "send(msg_type, sub_flag, *packets) needs a sub-flag",
            ));
        }
        let sub = crate::inner::sub_flag(&all.remove(0))?;
        py.detach(|| self.conn.send(kind, sub, &all))
            .map_err(error::to_py)
    }

    fn __repr__(&self) -> String {
        format!(
            "mesh_connection(id={:?}, addr={}, outgoing={})",
            self.conn.peer_id(),
            self.conn.addr(),
            self.conn.outgoing()
        )
    }
}
