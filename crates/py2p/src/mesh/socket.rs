//! `MeshSocket`: the handle users hold on a mesh node.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use py2p_net::{EventLoop, LoopHandle};

use super::{Command, Handler, MeshCore, Shared, Status};
use crate::config::MeshConfig;
use crate::id::{node_id, uuid4};
use crate::message::{Message, PeerEvent, PeerInfo};
use crate::sync::SyncTable;
use crate::Error;

/// A node of a py2p mesh network, wire-compatible with py2p 0.5.607's `mesh_socket`.
///
/// A background thread (the event loop) owns every connection; the methods here reach it
/// through a channel and never hold a lock across the network. Dropping the socket closes it.
///
/// ```
/// use std::time::Duration;
/// use py2p::{MeshConfig, MeshSocket};
///
/// let config = || MeshConfig::builder().bind("127.0.0.1:0".parse().unwrap()).build();
/// let a = MeshSocket::bind(config())?;
/// let b = MeshSocket::bind(config())?;
/// b.connect(a.local_addr())?;
/// b.wait_for_peers(1, Duration::from_secs(10))?;
/// a.wait_for_peers(1, Duration::from_secs(10))?;
///
/// b.send(&["hello"])?;
/// let msg = a.recv_timeout(Duration::from_secs(10)).expect("a message");
/// assert_eq!(msg.packets(), [b"hello".to_vec()]);
/// assert_eq!(msg.sender(), b.id());
/// msg.reply(&["hi back"])?;
/// assert_eq!(b.recv_timeout(Duration::from_secs(10)).unwrap().packets(), [b"hi back".to_vec()]);
/// # Ok::<(), py2p::Error>(())
/// ```
pub struct MeshSocket {
    handle: LoopHandle<Command>,
    shared: Arc<Shared>,
    id: String,
    protocol_id: String,
    out_addr: (String, u16),
    local_addr: SocketAddr,
}

impl MeshSocket {
    /// Binds and starts a mesh node.
    pub fn bind(config: MeshConfig) -> Result<MeshSocket, Error> {
        Self::start(config, None)
    }

    pub(crate) fn start(config: MeshConfig, sync: Option<SyncTable>) -> Result<MeshSocket, Error> {
        Self::start_with(config, sync, |_| None)
    }

    /// Starts a node; `chord` makes its chord table from the node's id (a chord node).
    pub(crate) fn start_with(
        config: MeshConfig,
        sync: Option<SyncTable>,
        chord: impl FnOnce(&str) -> Option<crate::chord::ChordTable>,
    ) -> Result<MeshSocket, Error> {
        // The listener is bound first so that port 0 resolves before the id is made from it.
        let listener = std::net::TcpListener::bind(config.bind)?;
        let local_addr = listener.local_addr()?;
        let out_addr = match &config.out_addr {
            Some(a) => a.clone(),
            None if local_addr.ip().is_unspecified() => (lan_ip().to_string(), local_addr.port()),
            None => (local_addr.ip().to_string(), local_addr.port()),
        };
        let protocol_id = config.protocol.id();
        let id = node_id(&out_addr.0, out_addr.1, &protocol_id, &uuid4());
        let shared = Arc::new(Shared::new(&config));
        let net = net_config(&config)?;
        let mut core = MeshCore::new(config, id.clone(), out_addr.clone(), shared.clone(), sync);
        core.chord = chord(&id);
        let handle = EventLoop::spawn_on(listener, net, core)?;
        let _ = shared.handle.set(handle.clone());
        log::info!(
            "node {id} listening on {local_addr}, advertising {}:{}",
            out_addr.0,
            out_addr.1
        );
        Ok(MeshSocket {
            local_addr: handle.local_addr(),
            handle,
            shared,
            id,
            protocol_id,
            out_addr,
        })
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The protocol id peers must share.
    pub fn protocol_id(&self) -> &str {
        &self.protocol_id
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address advertised to peers.
    pub fn out_addr(&self) -> (&str, u16) {
        (&self.out_addr.0, self.out_addr.1)
    }

    /// Broadcasts `packets` to every node of the network. Waits while more than
    /// `send_high_water` bytes are queued for peers (never on the event-loop thread).
    pub fn send<P: AsRef<[u8]>>(&self, packets: &[P]) -> Result<(), Error> {
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        let bytes: usize = packets.iter().map(|p| p.len() + 4).sum::<usize>() + 160;
        if !self.handle.is_loop_thread() && !self.shared.reserve(bytes) {
            return Err(Error::Closed);
        }
        self.handle
            .send(Command::Broadcast { packets, bytes })
            .map_err(Error::from)
    }

    /// Sends `packets` to the node `id` alone: directly when connected to it, else through
    /// the network's request/response, as py2p does.
    pub fn whisper<P: AsRef<[u8]>>(&self, id: &str, packets: &[P]) -> Result<(), Error> {
        let packets = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        self.handle
            .send(Command::Whisper {
                target: id.to_owned(),
                packets,
            })
            .map_err(Error::from)
    }

    /// Dials a node; the handshake follows in the background (see [`MeshSocket::events`]).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> Result<(), Error> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| Error::InvalidAddress("no address".into()))?;
        let (tx, rx) = mpsc::channel();
        self.handle.send(Command::Connect {
            addr,
            reply: Some(tx),
        })?;
        if self.handle.is_loop_thread() {
            return Ok(());
        }
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Io(std::io::Error::other(e))),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Closes the connection to a peer.
    pub fn disconnect(&self, id: &str) -> Result<(), Error> {
        self.handle
            .send(Command::Disconnect { id: id.to_owned() })
            .map_err(Error::from)
    }

    /// Registers a handler, run on the event-loop thread for every message the protocol does
    /// not consume; returning `true` keeps the message from `recv`. When this returns, the
    /// handler sees every message that arrives after it. A handler that panics is
    /// logged and skipped; the node goes on.
    pub fn register_handler(
        &self,
        handler: impl FnMut(&Message) -> bool + Send + 'static,
    ) -> Result<(), Error> {
        let handler: Handler = Box::new(handler);
        self.handle.send(Command::RegisterHandler(handler))?;
        if !self.handle.is_loop_thread() {
            // Commands are taken in order: once a later one is answered, the handler is in
            // place, and every message that arrives from now on passes through it.
            self.peers()?;
        }
        Ok(())
    }

    fn wake_if_paused(&self, resume: bool) {
        if resume {
            self.handle.resume();
        }
    }

    /// The next message, if one is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        let (m, resume) = self.shared.inbox.pop(Some(Duration::ZERO));
        self.wake_if_paused(resume);
        m
    }

    /// The next message, waiting for one; `None` once the socket is closed.
    pub fn recv(&self) -> Option<Message> {
        let (m, resume) = self.shared.inbox.pop(None);
        self.wake_if_paused(resume);
        m
    }

    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        let (m, resume) = self.shared.inbox.pop(Some(timeout));
        self.wake_if_paused(resume);
        m
    }

    /// An iterator of messages that waits for each; it ends when the socket closes.
    pub fn messages(&self) -> Messages<'_> {
        Messages { socket: self }
    }

    /// The next peer event, waiting at most `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<PeerEvent> {
        self.shared.events.pop(Some(timeout)).0
    }

    /// An iterator of peer events (connected, disconnected) that waits for each.
    pub fn events(&self) -> Events<'_> {
        Events { socket: self }
    }

    /// The routing table: peers whose handshake is complete.
    pub fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        let (tx, rx) = mpsc::channel();
        self.handle.send(Command::Peers(tx))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Counters and state of the node.
    pub fn status(&self) -> Result<Status, Error> {
        let (tx, rx) = mpsc::channel();
        self.handle.send(Command::Status(tx))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Waits until at least `n` peers are in the routing table, by peer events.
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> Result<Vec<PeerInfo>, Error> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let peers = self.peers()?;
            if peers.len() >= n {
                return Ok(peers);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{} of {n} peers after {timeout:?}", peers.len()),
                )));
            }
            // Any peer event is a reason to look again.
            let _ = self
                .shared
                .events
                .pop(Some(left.min(Duration::from_millis(200))));
        }
    }

    pub(crate) fn handle(&self) -> &LoopHandle<Command> {
        &self.handle
    }

    /// Stops the node: connections are closed and the event loop joined. Also done on drop.
    pub fn close(&self) {
        self.handle.shutdown();
    }

    /// Whether the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.handle.is_stopped()
    }
}

impl Drop for MeshSocket {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Messages as they arrive; see [`MeshSocket::messages`].
pub struct Messages<'a> {
    socket: &'a MeshSocket,
}

impl Iterator for Messages<'_> {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.socket.recv()
    }
}

/// Peer events as they happen; see [`MeshSocket::events`].
pub struct Events<'a> {
    socket: &'a MeshSocket,
}

impl Iterator for Events<'_> {
    type Item = PeerEvent;
    fn next(&mut self) -> Option<PeerEvent> {
        self.socket.shared.events.pop(None).0
    }
}

/// The LAN address, found as py2p finds it: the source address of a UDP socket "connected"
/// to a public address (no packet is sent). Falls back to loopback.
fn lan_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("8.8.8.8:23").and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The event loop's configuration, with the TLS certificate of SSL mode: loaded from the
/// configured PEM files, or made now (once per socket, as py2p does).
fn net_config(config: &MeshConfig) -> Result<py2p_net::NetConfig, Error> {
    let mut net = config.net.clone();
    net.tls = match config.protocol.encryption {
        py2p_wire::Encryption::Plaintext => None,
        py2p_wire::Encryption::Ssl => Some(match (&net.tls, &config.tls_cert, &config.tls_key) {
            (Some(tls), None, None) => tls.clone(),
            (_, Some(cert), Some(key)) => py2p_net::TlsConfig::from_pem_files(cert, key)?,
            (_, None, None) => py2p_net::TlsConfig::self_signed()?,
            _ => {
                return Err(Error::Net(py2p_net::NetError::Tls(
                    "a TLS certificate needs its key and a key its certificate".into(),
                )))
            }
        }),
    };
    Ok(net)
}
