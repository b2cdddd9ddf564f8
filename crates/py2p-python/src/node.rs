//! A mesh or sync node of the `py2p` crate, held by a Python `mesh_socket` or `sync_socket`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use py2p::{ChordConfig, ChordSocket, ConnectError, MeshConfig, MeshSocket, Protocol, SyncSocket};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::error;
use crate::handler::{self, Errors};
use crate::inner::{message_kind, sub_flag, Inner, Kind};
use crate::message::Message;
use crate::packets;

/// A node: the native half of `py2p_rs.mesh.mesh_socket` and `py2p_rs.sync.sync_socket`.
#[pyclass(module = "py2p_rs._core", frozen)]
pub struct Node {
    inner: Arc<Inner>,
    errors: Arc<Errors>,
    /// A weak reference to the Python socket (`message.server`).
    server: Py<PyAny>,
}

/// Refuses a chord call that waits for the node's loop from a handler, which that loop
/// runs: the answer could never come.
fn not_in_handler(what: &str) -> PyResult<()> {
    if handler::in_handler() {
        return Err(PyRuntimeError::new_err(format!(
            "{what} waits for the node's event loop: it cannot be called from a handler"
        )));
    }
    Ok(())
}

/// The encryptions py2p accepts, spelt exactly as py2p spells them ("Plaintext", "SSL");
/// py2p raises `ValueError` for anything else (even another case), and so does this.
fn check_encryption(encryption: &str) -> PyResult<()> {
    match encryption {
        "Plaintext" | "SSL" => Ok(()),
        _ => Err(PyValueError::new_err("Unkown encryption method")),
    }
}

fn config(
    bind_ip: &str,
    port: u16,
    subnet: &str,
    encryption: &str,
    out_addr: Option<(String, u16)>,
) -> PyResult<MeshConfig> {
    check_encryption(encryption)?;
    let ip: IpAddr = bind_ip
        .parse()
        .map_err(|e| PyValueError::new_err(format!("bad address {bind_ip:?}: {e}")))?;
    let mut builder = MeshConfig::builder()
        .bind(SocketAddr::new(ip, port))
        .protocol(
            Protocol::parse(subnet, encryption)
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        );
    if let Some((host, port)) = out_addr {
        builder = builder.out_addr(host, port);
    }
    Ok(builder.build())
}

impl Node {
    fn mesh(&self) -> &MeshSocket {
        self.inner.mesh()
    }

    fn sync(&self) -> PyResult<&SyncSocket> {
        match &self.inner.kind {
            Kind::Sync(s) => Ok(s),
            _ => Err(PyRuntimeError::new_err("not a sync node")),
        }
    }

    fn chord(&self) -> PyResult<&ChordSocket> {
        match &self.inner.kind {
            Kind::Chord(c) => Ok(c),
            _ => Err(PyRuntimeError::new_err("not a chord node")),
        }
    }

    /// Binds a socket with the GIL released and wraps it in a node for `server`.
    fn start(
        py: Python<'_>,
        server: Py<PyAny>,
        bind: impl Send + FnOnce() -> Result<Kind, py2p::Error>,
    ) -> PyResult<Node> {
        let kind = py.detach(bind).map_err(error::to_py)?;
        Ok(Node {
            inner: Arc::new(Inner { kind }),
            errors: Arc::default(),
            server,
        })
    }

    fn message(&self, py: Python<'_>, msg: py2p::Message) -> Message {
        Message::new(msg, self.server.clone_ref(py), Arc::downgrade(&self.inner))
    }
}

#[pymethods]
impl Node {
    /// Binds and starts a mesh node. `bind_ip` is an IP address (the Python layer resolves
    /// host names); `server` a weak reference to the Python socket.
    #[staticmethod]
    fn mesh_node(
        py: Python<'_>,
        bind_ip: &str,
        port: u16,
        subnet: &str,
        encryption: &str,
        out_addr: Option<(String, u16)>,
        server: Py<PyAny>,
    ) -> PyResult<Node> {
        let config = config(bind_ip, port, subnet, encryption, out_addr)?;
        Node::start(py, server, || MeshSocket::bind(config).map(Kind::Mesh))
    }

    /// Binds and starts a sync node (py2p appends the leasing digit to the subnet).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    fn sync_node(
        py: Python<'_>,
        bind_ip: &str,
        port: u16,
        subnet: &str,
        encryption: &str,
        out_addr: Option<(String, u16)>,
        server: Py<PyAny>,
        leasing: bool,
    ) -> PyResult<Node> {
        let config = config(bind_ip, port, subnet, encryption, out_addr)?;
        Node::start(py, server, || {
            SyncSocket::bind(config, leasing).map(Kind::Sync)
        })
    }

    /// The node id.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.mesh().id().as_bytes())
    }

    /// The port the listener is bound to.
    #[getter]
    fn port(&self) -> u16 {
        self.mesh().local_addr().port()
    }

    /// Broadcasts `packets` (sub-flag broadcast) to the network; waits (without the GIL)
    /// while too many bytes are queued to peers.
    fn broadcast(&self, py: Python<'_>, packets: &Bound<'_, PyAny>) -> PyResult<()> {
        let packets = packets::packets(packets)?;
        let mesh = self.mesh();
        py.detach(|| mesh.send(&packets)).map_err(error::to_py)
    }

    /// Whispers `packets` to the node `target` (directly or through request/response).
    fn whisper(&self, py: Python<'_>, target: &[u8], packets: &Bound<'_, PyAny>) -> PyResult<()> {
        let packets = packets::packets(packets)?;
        let target = String::from_utf8_lossy(target).into_owned();
        let mesh = self.mesh();
        py.detach(|| mesh.whisper(&target, &packets))
            .map_err(error::to_py)
    }

    /// Sends `packets` as a message of type `flag` with the sub-flag `sub` first (py2p's
    /// `send(*packets, flag=, type=)`): a broadcast to the network, a whisper to every
    /// direct peer.
    fn send_with(
        &self,
        py: Python<'_>,
        flag: &Bound<'_, PyAny>,
        sub: &Bound<'_, PyAny>,
        packets: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let kind = message_kind(&packets::packet(flag)?)?;
        let sub = sub_flag(&packets::packet(sub)?)?;
        let packets = packets::packets(packets)?;
        let mesh = self.mesh();
        py.detach(|| mesh.send_with(kind, sub, &packets))
            .map_err(error::to_py)
    }

    /// Whispers `packets` to the node `target` with the sub-flag `sub` first.
    fn whisper_with(
        &self,
        py: Python<'_>,
        target: &[u8],
        sub: &Bound<'_, PyAny>,
        packets: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let sub = sub_flag(&packets::packet(sub)?)?;
        let packets = packets::packets(packets)?;
        let target = String::from_utf8_lossy(target).into_owned();
        let mesh = self.mesh();
        py.detach(|| mesh.whisper_with(&target, sub, &packets))
            .map_err(error::to_py)
    }

    /// Dials `ip:port` and waits for the handshake (py2p's `connect(addr, port, id)`):
    /// nothing is dialled when a peer `id` is connected already. In a handler, where it
    /// cannot wait for the loop running the handler, the dial starts and the call returns.
    #[pyo3(signature = (ip, port, id=None))]
    fn connect(&self, py: Python<'_>, ip: &str, port: u16, id: Option<&[u8]>) -> PyResult<()> {
        let ip: IpAddr = ip
            .parse()
            .map_err(|e| PyValueError::new_err(format!("bad address {ip:?}: {e}")))?;
        let addr = SocketAddr::new(ip, port);
        let mesh = self.mesh();
        if handler::in_handler() {
            return mesh.connect_nonblocking(addr).map_err(error::to_py);
        }
        let id = id.map(|id| String::from_utf8_lossy(id).into_owned());
        let result = py.detach(|| match &id {
            Some(id) => mesh.connect_with_id(addr, id),
            None => mesh.connect(addr),
        });
        match result {
            Ok(_) => Ok(()),
            // py2p's handshake failure is silent (its docs: check the routing table); only
            // the TCP connect raises. The failure is in `status` all the same.
            Err(py2p::Error::Connect {
                error:
                    ConnectError::ProtocolMismatch { .. }
                    | ConnectError::HandshakeTimeout
                    | ConnectError::Closed(_),
                ..
            }) => Ok(()),
            Err(e) => Err(error::to_py(e)),
        }
    }

    /// Closes the connection to the peer `id`.
    fn disconnect(&self, py: Python<'_>, id: &[u8]) -> PyResult<()> {
        let id = String::from_utf8_lossy(id).into_owned();
        let mesh = self.mesh();
        py.detach(|| mesh.disconnect(&id)).map_err(error::to_py)
    }

    /// The routing table: `[(id, (host, port), outgoing)]`.
    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mesh = self.mesh();
        let peers = py.detach(|| mesh.peers()).map_err(error::to_py)?;
        let rows = peers
            .into_iter()
            .map(|p| (PyBytes::new(py, p.id.as_bytes()), p.addr, p.outgoing));
        PyList::new(py, rows)
    }

    /// Connections still waiting for their handshake.
    fn awaiting(&self, py: Python<'_>) -> PyResult<usize> {
        let mesh = self.mesh();
        let status = py.detach(|| mesh.status()).map_err(error::to_py)?;
        Ok(status.awaiting_handshake)
    }

    /// py2p's `status` list: tracebacks of Python handlers that raised, then the errors the
    /// node met (`status().errors` of the crate: bad frames, refused peers, failed dials).
    fn errors(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let mut errors = self.errors.snapshot();
        let mesh = self.mesh();
        match py.detach(|| mesh.status()) {
            Ok(status) => errors.extend(status.errors),
            Err(py2p::Error::Closed) => {}
            Err(e) => return Err(error::to_py(e)),
        }
        Ok(errors)
    }

    /// Up to `quantity` messages that are waiting; never waits.
    fn recv<'py>(&self, py: Python<'py>, quantity: usize) -> PyResult<Bound<'py, PyList>> {
        let mesh = self.mesh();
        let mut out = Vec::new();
        while out.len() < quantity {
            match mesh.try_recv() {
                Some(m) => out.push(Bound::new(py, self.message(py, m))?),
                None => break,
            }
        }
        PyList::new(py, out)
    }

    /// The next message, waiting at most `timeout` seconds without the GIL.
    fn recv_timeout(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Message>> {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mesh = self.mesh();
        Ok(py
            .detach(|| mesh.recv_timeout(timeout))
            .map(|m| self.message(py, m)))
    }

    /// Registers `func(msg, conn)` as a handler; a truthy return keeps the message from
    /// `recv`.
    fn register_handler(&self, py: Python<'_>, func: Py<PyAny>) -> PyResult<()> {
        let handler = handler::wrap(
            func,
            self.server.clone_ref(py),
            Arc::downgrade(&self.inner),
            self.errors.clone(),
        );
        let mesh = self.mesh();
        py.detach(|| mesh.register_handler(handler))
            .map_err(error::to_py)
    }

    /// Stops the node: its connections are closed and its loop joined (without the GIL,
    /// so that a handler running meanwhile can finish).
    fn close(&self, py: Python<'_>) {
        let mesh = self.mesh();
        py.detach(|| mesh.close());
    }

    /// Whether the node is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.mesh().is_closed()
    }

    // The sync table.

    /// Stores `value` at `key` and tells the network (an empty value deletes); `KeyError`
    /// when another node holds the key's lease.
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let key = packets::packet(key)?;
        let value = packets::packet(value)?;
        let sync = self.sync()?;
        py.detach(|| sync.set(&key, &value)).map_err(error::to_py)
    }

    /// The value at `key`, or `None`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = packets::packet(key)?;
        Ok(self.sync()?.get(&key).map(|v| PyBytes::new(py, &v)))
    }

    /// The table: `[(key, value, owner, time)]`.
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let sync = self.sync()?;
        let rows: Vec<Bound<'py, PyTuple>> = sync
            .keys()
            .into_iter()
            .filter_map(|k| sync.entry(&k).map(|e| (k, e)))
            .map(|(k, e)| {
                PyTuple::new(
                    py,
                    [
                        PyBytes::new(py, &k).into_any(),
                        PyBytes::new(py, &e.value).into_any(),
                        PyBytes::new(py, e.owner.as_bytes()).into_any(),
                        e.time.into_pyobject(py)?.into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        PyList::new(py, rows)
    }

    /// Number of keys in the table.
    fn table_len(&self) -> PyResult<usize> {
        Ok(self.sync()?.len())
    }

    // The chord table.

    /// Binds and starts a chord node (leeching until `chord_join`).
    #[staticmethod]
    fn chord_node(
        py: Python<'_>,
        bind_ip: &str,
        port: u16,
        subnet: &str,
        encryption: &str,
        out_addr: Option<(String, u16)>,
        server: Py<PyAny>,
    ) -> PyResult<Node> {
        let config = config(bind_ip, port, subnet, encryption, out_addr)?;
        Node::start(py, server, || {
            ChordSocket::bind(config, ChordConfig::default()).map(Kind::Chord)
        })
    }

    /// Starts holding slots.
    fn chord_join(&self) -> PyResult<()> {
        self.chord()?.join().map_err(error::to_py)
    }

    /// Stops holding slots.
    fn chord_unjoin(&self) -> PyResult<()> {
        self.chord()?.unjoin().map_err(error::to_py)
    }

    /// Stores `value` at `key` in its five slots (an empty value deletes).
    fn chord_set(&self, py: Python<'_>, key: &[u8], value: &[u8]) -> PyResult<()> {
        not_in_handler("chord set")?;
        let chord = self.chord()?;
        py.detach(|| chord.set(key, value)).map_err(error::to_py)
    }

    /// The value three of the key's five slots agree on within `timeout` s, or `None`.
    fn chord_get<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        timeout: f64,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        not_in_handler("chord get")?;
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let chord = self.chord()?;
        let value = py
            .detach(|| chord.get(key, timeout))
            .map_err(error::to_py)?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Deletes `key`; whether this node knew it.
    fn chord_delete(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        not_in_handler("chord delete")?;
        let chord = self.chord()?;
        py.detach(|| chord.delete(key)).map_err(error::to_py)
    }

    /// The user keys this node knows of.
    fn chord_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        not_in_handler("chord keys")?;
        let chord = self.chord()?;
        let keys = py.detach(|| chord.keys()).map_err(error::to_py)?;
        PyList::new(py, keys.iter().map(|k| PyBytes::new(py, k)))
    }
}
