//! `MeshSocket`: the handle users hold on a mesh node.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use py2p_net::{EventLoop, LoopHandle};

use py2p_wire::Flag;

use super::{Command, ConnectReply, Handler, MeshNode, Shared, Status};
use crate::config::MeshConfig;
use crate::connection::{check_size, check_sub_flag};
use crate::id::{node_id, uuid4};
use crate::message::{Message, MessageKind, PeerEvent, PeerInfo};
use crate::sync::{SyncTable, SyncView};
use crate::Error;

mod send_many;

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
/// a.reply(&msg, &["hi back"])?;
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
    limits: py2p_wire::Limits,
}

impl MeshSocket {
    /// Binds and starts a mesh node.
    pub fn bind(config: MeshConfig) -> Result<MeshSocket, Error> {
        Self::start(config, None)
    }

    pub(crate) fn start(
        config: MeshConfig,
        sync: Option<(SyncTable, Arc<SyncView>)>,
    ) -> Result<MeshSocket, Error> {
        Self::start_with(config, sync, |_| None)
    }

    /// Starts a node; `chord` makes its chord table from the node's id (a chord node).
    pub(crate) fn start_with(
        config: MeshConfig,
        sync: Option<(SyncTable, Arc<SyncView>)>,
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
        let limits = config.net.limits;
        let mut node = MeshNode::new(config, id.clone(), out_addr.clone(), shared.clone(), sync);
        node.chord = chord(&id);
        let handle = EventLoop::spawn_on(listener, net, node)?;
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
            limits,
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

    /// Broadcasts `packets` to every node of the network (py2p's `send(*packets)`). Waits
    /// while more than `send_high_water` bytes are queued for peers (never on the event-loop
    /// thread). A message over the limits every peer applies (`Limits`: 16 MiB by default)
    /// is refused with [`Error::TooLarge`] rather than sent to be dropped.
    pub fn send<P: AsRef<[u8]>>(&self, packets: &[P]) -> Result<(), Error> {
        self.send_with(MessageKind::Broadcast, Flag::BROADCAST.0, packets)
    }

    /// Sends `packets` as a message of type `kind` with `sub_flag` as its first packet
    /// (py2p's `send(*packets, flag=kind, type=sub_flag)`): a broadcast goes through the
    /// waterfall to every node; a whisper goes to each peer this node is connected to, and
    /// no further. `sub_flag` may be any byte the protocol does not reserve
    /// ([`Error::ReservedSubFlag`]): receivers' handlers and `recv` see it as
    /// [`Message::sub_flag`].
    pub fn send_with<P: AsRef<[u8]>>(
        &self,
        kind: MessageKind,
        sub_flag: u8,
        packets: &[P],
    ) -> Result<(), Error> {
        check_sub_flag(sub_flag)?;
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        check_size(&self.limits, self.id.len(), &packets)?;
        let bytes = reserved_bytes(&packets);
        self.reserve(bytes)?;
        let cmd = if kind == MessageKind::Broadcast && sub_flag == Flag::BROADCAST.0 {
            Command::Broadcast { packets, bytes }
        } else {
            Command::SendWith {
                kind,
                sub_flag,
                packets,
                bytes,
            }
        };
        self.handle.send(cmd).map_err(Error::from)
    }

    /// Waits while more than `send_high_water` bytes are queued for peers, then counts
    /// `bytes` of a user's send as in flight (not on the loop's own thread, which drains
    /// the queues: a handler's send never waits).
    fn reserve(&self, bytes: usize) -> Result<(), Error> {
        if !self.handle.is_loop_thread() && !self.shared.reserve(bytes) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Sends `packets` to the node `id` alone: directly when connected to it, else through
    /// the network's request/response, as py2p does.
    pub fn whisper<P: AsRef<[u8]>>(&self, id: &str, packets: &[P]) -> Result<(), Error> {
        self.whisper_with(id, Flag::WHISPER.0, packets)
    }

    /// [`MeshSocket::whisper`] with the user's `sub_flag` as the first packet.
    pub fn whisper_with<P: AsRef<[u8]>>(
        &self,
        id: &str,
        sub_flag: u8,
        packets: &[P],
    ) -> Result<(), Error> {
        check_sub_flag(sub_flag)?;
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        check_size(&self.limits, self.id.len(), &packets)?;
        let cmd = if sub_flag == Flag::WHISPER.0 {
            Command::Whisper {
                target: id.to_owned(),
                packets,
            }
        } else {
            Command::WhisperWith {
                target: id.to_owned(),
                sub_flag,
                packets,
            }
        };
        self.handle.send(cmd).map_err(Error::from)
    }

    /// Answers `msg` (py2p's `msg.reply(*packets)`): a whisper to its sender, directly when
    /// connected to it, else through the network's request/response. Never waits; callable
    /// from handlers.
    pub fn reply<P: AsRef<[u8]>>(&self, msg: &Message, packets: &[P]) -> Result<(), Error> {
        self.whisper(&msg.sender(), packets)
    }

    /// Dials a node and waits until its handshake is in (the peer is then in
    /// [`MeshSocket::peers`]); returns its id. Fails with [`Error::Connect`] when nothing
    /// listens there ([`ConnectError::Refused`](crate::ConnectError::Refused)), the TCP connection takes longer than
    /// `NetConfig::connect_timeout` ([`ConnectError::TimedOut`](crate::ConnectError::TimedOut)), the peer runs another
    /// protocol ([`ConnectError::ProtocolMismatch`](crate::ConnectError::ProtocolMismatch)) or sends no handshake within
    /// `MeshConfig::handshake_timeout`. A host name is looked up here, on the caller's thread.
    ///
    /// On the event-loop thread (in a handler) it cannot wait: it returns
    /// [`Error::OnLoopThread`] at once; use [`MeshSocket::connect_nonblocking`] there.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> Result<String, Error> {
        self.connect_waiting(addr, None)
    }

    /// Dials the node `id` at `addr` (py2p's `connect(addr, port, id)`): nothing is dialled
    /// when a peer of that id is connected already. Otherwise as [`MeshSocket::connect`].
    pub fn connect_with_id(&self, addr: impl ToSocketAddrs, id: &str) -> Result<String, Error> {
        self.connect_waiting(addr, Some(id.to_owned()))
    }

    fn connect_waiting(
        &self,
        addr: impl ToSocketAddrs,
        expected_id: Option<String>,
    ) -> Result<String, Error> {
        if self.handle.is_loop_thread() {
            return Err(Error::OnLoopThread("connect"));
        }
        let mut last = None;
        for addr in resolve(addr)? {
            let (tx, rx) = mpsc::channel();
            self.handle.send(Command::Connect {
                addr,
                expected_id: expected_id.clone(),
                reply: ConnectReply::Wait(tx),
            })?;
            match rx.recv() {
                Ok(Ok(id)) => return Ok(id),
                Ok(Err(error)) => last = Some(Error::Connect { addr, error }),
                Err(_) => return Err(Error::Closed),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidAddress("no address".into())))
    }

    /// Starts a dial and returns at once; the outcome arrives as a peer event:
    /// [`PeerEvent::Connected`] once the handshake is in, or [`PeerEvent::ConnectFailed`].
    /// Callable from handlers (with a literal address: a host name is looked up here, and
    /// that blocks the loop meanwhile).
    pub fn connect_nonblocking(&self, addr: impl ToSocketAddrs) -> Result<(), Error> {
        let addr = resolve(addr)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidAddress("no address".into()))?;
        self.handle
            .send(Command::Connect {
                addr,
                expected_id: None,
                reply: ConnectReply::Event,
            })
            .map_err(Error::from)
    }

    /// Closes the connection to a peer.
    pub fn disconnect(&self, id: &str) -> Result<(), Error> {
        self.handle
            .send(Command::Disconnect { id: id.to_owned() })
            .map_err(Error::from)
    }

    /// Asks every peer for its list of peers (py2p's `request_peers`); the node dials those
    /// it needs, up to `max_outgoing`.
    pub fn request_peers(&self) -> Result<(), Error> {
        self.handle.send(Command::RequestPeers).map_err(Error::from)
    }

    /// Registers a handler, run on the event-loop thread for every message the protocol does
    /// not consume, with the [`Connection`](crate::Connection) it came on (py2p's
    /// `handler(msg, conn)`); returning `true` keeps the message from `recv`. When this
    /// returns, the handler sees every message that arrives after it. A handler that panics
    /// is logged, listed in `status().errors` and skipped; the node goes on.
    ///
    /// Every method of the socket may be called from a handler: those that would wait for
    /// the loop either answer from what the loop has published (`peers`, `status`), take
    /// what is there without waiting (`recv`, `next_event`), or return
    /// [`Error::OnLoopThread`] at once (`connect`, `wait_for_peers` short of its peers).
    pub fn register_handler(
        &self,
        handler: impl FnMut(&Message, &crate::Connection) -> bool + Send + 'static,
    ) -> Result<(), Error> {
        let handler: Handler = Box::new(handler);
        self.handle.send(Command::RegisterHandler(handler))?;
        if !self.handle.is_loop_thread() {
            // Commands are taken in order: once a later one is answered, the handler is in
            // place, and every message that arrives from now on passes through it.
            let (tx, rx) = mpsc::channel();
            self.handle.send(Command::Peers(tx))?;
            let _ = rx.recv();
        }
        Ok(())
    }

    fn wake_if_paused(&self, resume: bool) {
        if resume {
            self.handle.resume();
        }
    }

    /// Waiting is not possible on the loop thread: there, every read takes what is there.
    fn wait_or_not(&self, timeout: Option<Duration>) -> Option<Duration> {
        if self.handle.is_loop_thread() {
            Some(Duration::ZERO)
        } else {
            timeout
        }
    }

    /// The next message, if one is waiting (py2p's `recv()`).
    pub fn try_recv(&self) -> Option<Message> {
        let (m, resume) = self.shared.inbox.pop(Some(Duration::ZERO));
        self.wake_if_paused(resume);
        m
    }

    /// The next message, waiting for one; `None` once the socket is closed. (py2p's `recv()`
    /// returns at once: that is [`MeshSocket::try_recv`].) On the event-loop thread it does
    /// not wait.
    pub fn recv(&self) -> Option<Message> {
        if let Some(m) = self.try_recv() {
            return Some(m);
        }
        let (m, resume) = self.shared.inbox.pop(self.wait_or_not(None));
        self.wake_if_paused(resume);
        m
    }

    /// The next message, waiting at most `timeout` (not at all on the event-loop thread).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        if let Some(m) = self.try_recv() {
            return Some(m);
        }
        let (m, resume) = self.shared.inbox.pop(self.wait_or_not(Some(timeout)));
        self.wake_if_paused(resume);
        m
    }

    /// Up to `n` messages: waits at most `timeout` for the first (not at all on the
    /// event-loop thread), then takes those already waiting. Empty when none came.
    pub fn recv_many(&self, n: usize, timeout: Duration) -> Vec<Message> {
        if n == 0 {
            return Vec::new();
        }
        let (m, resume) = self
            .shared
            .inbox
            .pop_many(n, self.wait_or_not(Some(timeout)));
        self.wake_if_paused(resume);
        m
    }

    /// Up to `n` messages already waiting, without waiting (py2p's `recv(quantity=n)`).
    pub fn try_recv_many(&self, n: usize) -> Vec<Message> {
        self.recv_many(n, Duration::ZERO)
    }

    /// An iterator of messages that waits for each; it ends when the socket closes (on the
    /// event-loop thread: when none is waiting).
    pub fn messages(&self) -> Messages<'_> {
        Messages { socket: self }
    }

    /// The next peer event, waiting at most `timeout` (not at all on the event-loop thread).
    pub fn next_event(&self, timeout: Duration) -> Option<PeerEvent> {
        self.shared.events.pop(self.wait_or_not(Some(timeout))).0
    }

    /// An iterator of peer events (connected, disconnected, connect failed) that waits for
    /// each (on the event-loop thread: ends when none is waiting).
    pub fn events(&self) -> Events<'_> {
        Events { socket: self }
    }

    /// The routing table: peers whose handshake is complete. Answered from the table the loop
    /// publishes before every peer event, so it never waits on the loop.
    pub fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        if self.handle.is_stopped() {
            return Err(Error::Closed);
        }
        Ok(self.shared.published().peers.clone())
    }

    /// Counters, state and the errors the node met (py2p's `status`, which is `"Nominal"` or
    /// the list of exceptions: here [`Status::errors`]). Asked of the loop, so that it counts
    /// everything done before the call; while the loop is busy in a handler (and on the loop
    /// thread) it is answered from the copy the loop published at the end of its last turn
    /// (at most 10 ms old then), never waiting for the handler.
    pub fn status(&self) -> Result<Status, Error> {
        let mut status = if self.handle.is_loop_thread() {
            self.published_status()
        } else {
            let (tx, rx) = mpsc::channel();
            self.handle.send(Command::Status(tx))?;
            loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(status) => break status,
                    Err(mpsc::RecvTimeoutError::Timeout) if self.shared.busy() => {
                        break self.published_status()
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::Closed),
                }
            }
        };
        let published = self.shared.published();
        status.errors = published.errors.iter().cloned().collect();
        status.errors_total = published.errors_total;
        status.inbox = self.shared.inbox.len();
        Ok(status)
    }

    fn published_status(&self) -> Status {
        let published = self.shared.published();
        published.status.clone().unwrap_or_else(|| Status {
            id: self.id.clone(),
            protocol_id: self.protocol_id.clone(),
            out_addr: self.out_addr.clone(),
            peers: published.peers.len(),
            connections: 0,
            awaiting_handshake: 0,
            received: 0,
            relayed: 0,
            duplicates: 0,
            expired: 0,
            decode_errors: 0,
            refused_subnet: 0,
            handler_panics: 0,
            seen_ids: 0,
            pending_requests: 0,
            lost_peers: 0,
            inbox: 0,
            errors: Vec::new(),
            errors_total: 0,
        })
    }

    /// Waits until at least `n` peers are in the routing table, by peer events. On the
    /// event-loop thread it answers at once: the peers when there are `n`, else
    /// [`Error::OnLoopThread`].
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> Result<Vec<PeerInfo>, Error> {
        let deadline = std::time::Instant::now() + timeout;
        let on_loop = self.handle.is_loop_thread();
        loop {
            let peers = self.peers()?;
            if peers.len() >= n {
                return Ok(peers);
            }
            if on_loop {
                return Err(Error::OnLoopThread("wait_for_peers"));
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

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
        self.socket
            .shared
            .events
            .pop(self.socket.wait_or_not(None))
            .0
    }
}

/// The addresses of `addr`, IPv4 first (a node bound to `127.0.0.1` is not reached at `::1`,
/// and `localhost` often names both).
fn resolve(addr: impl ToSocketAddrs) -> Result<Vec<SocketAddr>, Error> {
    let mut addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    if addrs.is_empty() {
        return Err(Error::InvalidAddress("no address".into()));
    }
    Ok(addrs)
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

/// The bytes a message of `packets` is counted as while it waits for the loop: its packets
/// with their length prefixes, and a frame's header, id and time.
fn reserved_bytes(packets: &[impl AsRef<[u8]>]) -> usize {
    packets.iter().map(|p| p.as_ref().len() + 4).sum::<usize>() + 160
}
