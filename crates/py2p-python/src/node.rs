//! A mesh or sync node of the `py2p` crate, held by a Python `mesh_socket` or `sync_socket`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use py2p::{MeshConfig, MeshSocket, Protocol, SyncSocket};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::error;
use crate::handler::{self, Errors};
use crate::message::Message;
use crate::packets;

/// The socket a node holds.
enum Kind {
    Mesh(MeshSocket),
    Sync(SyncSocket),
}

/// What a [`Node`] shares with its handlers (which hold it weakly).
pub(crate) struct Inner {
    kind: Kind,
}

impl Inner {
    /// The mesh node (a sync node is one underneath).
    pub(crate) fn mesh(&self) -> &MeshSocket {
        match &self.kind {
            Kind::Mesh(m) => m,
            Kind::Sync(s) => s,
        }
    }
}

/// A node: the native half of `py2p_rs.mesh.mesh_socket` and `py2p_rs.sync.sync_socket`.
#[pyclass(module = "py2p_rs._core", frozen)]
pub struct Node {
    inner: Arc<Inner>,
    errors: Arc<Errors>,
    /// A weak reference to the Python socket (`message.server`).
    server: Py<PyAny>,
}

/// Refuses a call that would wait for the event loop from the loop's own thread.
fn not_in_handler(what: &str) -> PyResult<()> {
    if handler::in_handler() {
        return Err(PyRuntimeError::new_err(format!(
            "{what} cannot be called from a message handler yet: it would wait for the event \
             loop that runs the handler (needs re-entrant socket methods, issue 13)"
        )));
    }
    Ok(())
}

/// The encryptions this build carries. py2p raises `ValueError` for an unknown one.
///
/// TODO(issue 11): "SSL" once the crate's typed `Encryption` and TLS transport are merged.
fn check_encryption(encryption: &str) -> PyResult<()> {
    match encryption {
        "Plaintext" => Ok(()),
        "SSL" => Err(PyValueError::new_err(
            "SSL: this build of py2p_rs has no TLS transport yet (issue 11); use 'Plaintext'",
        )),
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
            Kind::Mesh(_) => Err(PyRuntimeError::new_err("not a sync node")),
        }
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
        let socket = py
            .detach(|| MeshSocket::bind(config))
            .map_err(error::to_py)?;
        Ok(Node {
            inner: Arc::new(Inner {
                kind: Kind::Mesh(socket),
            }),
            errors: Arc::default(),
            server,
        })
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
        let socket = py
            .detach(|| SyncSocket::bind(config, leasing))
            .map_err(error::to_py)?;
        Ok(Node {
            inner: Arc::new(Inner {
                kind: Kind::Sync(socket),
            }),
            errors: Arc::default(),
            server,
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

    /// Dials `ip:port`; the handshake follows in the background.
    fn connect(&self, py: Python<'_>, ip: &str, port: u16) -> PyResult<()> {
        let ip: IpAddr = ip
            .parse()
            .map_err(|e| PyValueError::new_err(format!("bad address {ip:?}: {e}")))?;
        let mesh = self.mesh();
        py.detach(|| mesh.connect(SocketAddr::new(ip, port)))
            .map(|_| ())
            .map_err(error::to_py)
    }

    /// Closes the connection to the peer `id`.
    fn disconnect(&self, py: Python<'_>, id: &[u8]) -> PyResult<()> {
        let id = String::from_utf8_lossy(id).into_owned();
        let mesh = self.mesh();
        py.detach(|| mesh.disconnect(&id)).map_err(error::to_py)
    }

    /// The routing table: `[(id, (host, port), outgoing)]`.
    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        not_in_handler("the routing table")?;
        let mesh = self.mesh();
        let peers = py.detach(|| mesh.peers()).map_err(error::to_py)?;
        let rows = peers
            .into_iter()
            .map(|p| (PyBytes::new(py, p.id.as_bytes()), p.addr, p.outgoing));
        PyList::new(py, rows)
    }

    /// Connections still waiting for their handshake.
    fn awaiting(&self, py: Python<'_>) -> PyResult<usize> {
        not_in_handler("awaiting_ids")?;
        let mesh = self.mesh();
        let status = py.detach(|| mesh.status()).map_err(error::to_py)?;
        Ok(status.awaiting_handshake)
    }

    /// Tracebacks of Python handlers that raised (py2p's `status` list).
    fn errors(&self) -> Vec<String> {
        self.errors.snapshot()
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
        not_in_handler("register_handler")?;
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
        not_in_handler("storing a key")?;
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
}
