//! The mio event loop ("daemon"): one thread owns the listener and every connection.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use log::warn;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::{Action, ConnId, Endpoint, NetConfig, NetError, Service};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: u64 = 2;
/// Queued bytes above which the loop writes while it is still taking commands.
const FLUSH_DURING_COMMANDS: usize = 256 << 10;
/// Commands taken between two readings of the clock while the loop drains a long run of them.
const CLOCK_EVERY: u32 = 256;
/// Bytes read from one connection before the loop turns to the others.
const READ_BUDGET: usize = 1 << 20;

/// Starts event loops.
pub struct EventLoop;

struct Shared {
    waker: Waker,
    /// The waker was fired since the loop last took commands: later commands need not fire
    /// it again (one system call per burst of commands instead of one per command).
    woken: AtomicBool,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The loop thread's id, set by the thread itself before it runs anything: every
    /// `send` asks whether it is on the loop thread, and this answers without the mutex.
    thread_id: OnceLock<ThreadId>,
    local_addr: SocketAddr,
}

/// A handle on a running event loop: commands go in, and it can be stopped.
///
/// Cloning gives another handle on the same loop. The loop stops on [`LoopHandle::shutdown`]
/// (not when handles are dropped: the owner decides).
pub struct LoopHandle<C> {
    tx: Sender<C>,
    shared: Arc<Shared>,
}

impl<C> Clone for LoopHandle<C> {
    fn clone(&self) -> Self {
        LoopHandle {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<C: Send + 'static> LoopHandle<C> {
    /// Sends a command to the service and wakes the loop.
    pub fn send(&self, cmd: C) -> Result<(), NetError> {
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(NetError::Closed);
        }
        self.tx.send(cmd).map_err(|_| NetError::Closed)?;
        if self.shared.woken.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.waker.wake().map_err(NetError::Io)
    }

    /// Wakes the loop so that it asks the service again whether it wants input.
    pub fn resume(&self) {
        let _ = self.shared.waker.wake();
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Whether the loop has been asked to stop, or has stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Whether the calling thread is the loop's own thread.
    pub fn is_loop_thread(&self) -> bool {
        self.shared
            .thread_id
            .get()
            .is_some_and(|&id| id == thread::current().id())
    }

    /// Stops the loop: every connection is closed, then the thread is joined. Idempotent;
    /// called from the loop thread itself it only asks the loop to stop.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
        if self.is_loop_thread() {
            return;
        }
        let handle = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl EventLoop {
    /// Binds `bind`, then runs `service` on a new thread until the handle shuts it down.
    pub fn spawn<S: Service>(
        bind: SocketAddr,
        config: NetConfig,
        service: S,
    ) -> Result<LoopHandle<S::Command>, NetError> {
        Self::spawn_on(std::net::TcpListener::bind(bind)?, config, service)
    }

    /// Runs `service` on a listener the caller has bound already (to learn its port first).
    pub fn spawn_on<S: Service>(
        listener: std::net::TcpListener,
        config: NetConfig,
        service: S,
    ) -> Result<LoopHandle<S::Command>, NetError> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            waker,
            woken: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
            thread_id: OnceLock::new(),
            local_addr,
        });
        let driver = Driver {
            poll,
            listener,
            sockets: HashMap::new(),
            read_buf: vec![0; config.read_chunk.max(1024)],
            unread: HashSet::new(),
            endpoint: Endpoint::new(config, Instant::now(), FIRST_CONN),
        };
        let loop_shared = shared.clone();
        let thread = thread::Builder::new()
            .name(format!("py2p-loop-{}", local_addr.port()))
            .spawn(move || {
                let _ = loop_shared.thread_id.set(thread::current().id());
                run(driver, service, rx, loop_shared)
            })?;
        *shared.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(LoopHandle { tx, shared })
    }
}

/// The thin driver: sockets and time in, the [`Endpoint`]'s actions out.
struct Driver {
    poll: Poll,
    listener: TcpListener,
    sockets: HashMap<ConnId, Socket>,
    read_buf: Vec<u8>,
    /// Sockets that may hold bytes not read yet (read budget used up, or input paused).
    unread: HashSet<ConnId>,
    endpoint: Endpoint,
}

struct Socket {
    stream: TcpStream,
    /// A dial not reported connected yet.
    connecting: bool,
}

fn token(c: ConnId) -> Token {
    Token(c.to_raw() as usize)
}

fn conn_id(t: Token) -> ConnId {
    ConnId::from_raw(t.0 as u64)
}

impl Driver {
    fn accept_all<S: Service>(&mut self, service: &mut S) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    let Some(id) = self.endpoint.accept(addr, service) else {
                        continue;
                    };
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token(id),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        warn!("{id}: cannot register connection from {addr}: {e}");
                        self.endpoint.io_error(id, e.to_string(), service);
                    } else {
                        let _ = stream.set_nodelay(true);
                        self.sockets.insert(
                            id,
                            Socket {
                                stream,
                                connecting: false,
                            },
                        );
                    }
                    self.apply_actions(service);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: try again on the next event.
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Carries out what the endpoint asked: dials and closes.
    fn apply_actions<S: Service>(&mut self, service: &mut S) {
        while let Some(action) = self.endpoint.poll_action() {
            match action {
                Action::Dial { conn, addr } => {
                    let registered = TcpStream::connect(addr).and_then(|mut stream| {
                        self.poll.registry().register(
                            &mut stream,
                            token(conn),
                            Interest::READABLE | Interest::WRITABLE,
                        )?;
                        Ok(stream)
                    });
                    match registered {
                        Ok(stream) => {
                            self.sockets.insert(
                                conn,
                                Socket {
                                    stream,
                                    connecting: true,
                                },
                            );
                        }
                        Err(e) => self.endpoint.connect_failed(conn, e.to_string(), service),
                    }
                }
                Action::Close { conn, last_words } => {
                    self.unread.remove(&conn);
                    if let Some(mut s) = self.sockets.remove(&conn) {
                        if !last_words.is_empty() && !s.connecting {
                            let _ = s.stream.write(&last_words);
                        }
                        let _ = self.poll.registry().deregister(&mut s.stream);
                        let _ = s.stream.shutdown(std::net::Shutdown::Both);
                    }
                }
            }
        }
    }

    /// Completes a pending dial; returns false when the connection is not established yet.
    fn check_connected<S: Service>(&mut self, id: ConnId, service: &mut S) -> bool {
        let Some(s) = self.sockets.get_mut(&id) else {
            return false;
        };
        if !s.connecting {
            return true;
        }
        match s.stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.endpoint.connect_failed(id, e.to_string(), service);
                return false;
            }
            Ok(None) => {}
        }
        match s.stream.peer_addr() {
            Ok(addr) => {
                s.connecting = false;
                let _ = s.stream.set_nodelay(true);
                self.endpoint.connected(id, addr, service);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => false,
            Err(e) => {
                self.endpoint.connect_failed(id, e.to_string(), service);
                false
            }
        }
    }

    /// Reads a socket while the endpoint takes input, up to `READ_BUDGET` bytes per turn.
    fn read_conn<S: Service>(&mut self, id: ConnId, service: &mut S) {
        self.unread.remove(&id);
        if !self.endpoint.resume(id, service) {
            // Frames wait in the endpoint, or the service wants no input now while the
            // socket may hold bytes: this readiness will not be reported again (edge
            // triggered), so the socket is read once input resumes.
            if self.endpoint.is_paused(id) || self.endpoint.open_for_input(id) {
                self.unread.insert(id);
            }
            return;
        }
        let mut total = 0;
        loop {
            let Some(s) = self.sockets.get_mut(&id) else {
                return;
            };
            match s.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    self.endpoint.peer_closed(id, service);
                    return;
                }
                Ok(n) => {
                    total += n;
                    let bytes = self.read_buf.get(..n).unwrap_or_default();
                    self.endpoint.received(id, bytes, service);
                    if total >= READ_BUDGET || !self.endpoint.may_read(id, service) {
                        if self.sockets.contains_key(&id) {
                            self.unread.insert(id);
                        }
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.endpoint.io_error(id, e.to_string(), service);
                    return;
                }
            }
        }
    }

    fn flush<S: Service>(&mut self, id: ConnId, service: &mut S) {
        if let Some(s) = self.sockets.get_mut(&id) {
            if !s.connecting {
                self.endpoint.write_to(id, &mut s.stream, service);
            }
        }
    }

    /// Writes every connection with new frames at the end of a turn, after the service sent
    /// what it held back for the turn ([`Service::before_write`], called by `take_dirty`).
    fn flush_dirty<S: Service>(&mut self, service: &mut S) {
        for id in self.endpoint.take_dirty(service) {
            self.flush(id, service);
        }
        self.apply_actions(service);
    }
}

fn run<S: Service>(mut d: Driver, mut service: S, rx: Receiver<S::Command>, shared: Arc<Shared>) {
    let mut events = Events::with_capacity(1024);
    loop {
        let pending_reads = service.wants_input() && !d.unread.is_empty();
        let timeout = if pending_reads {
            Duration::ZERO
        } else {
            d.endpoint
                .poll_timeout()
                .saturating_duration_since(Instant::now())
        };
        if let Err(e) = d.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                warn!("poll failed: {e}; stopping the event loop");
                break;
            }
        }
        d.endpoint.set_now(Instant::now());
        for event in events.iter() {
            match event.token() {
                LISTENER => d.accept_all(&mut service),
                WAKER => {}
                t => {
                    let id = conn_id(t);
                    let connecting = d.sockets.get(&id).is_some_and(|s| s.connecting);
                    if connecting && !d.check_connected(id, &mut service) {
                        d.apply_actions(&mut service);
                        continue;
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        d.read_conn(id, &mut service);
                    }
                    // Written at once: what the service queued in answer (a handshake's
                    // replies, say) leaves before the next connection's input is handled,
                    // so a burst of new connections does not hold all their replies in
                    // memory at the same time. Relays the service holds for the turn go
                    // out at its end, with `flush_dirty`.
                    if event.is_writable() || d.endpoint.has_output(id) {
                        d.flush(id, &mut service);
                    }
                    d.apply_actions(&mut service);
                }
            }
        }
        // Commands from the user's threads. Clearing `woken` first (a read-modify-write,
        // which sees every command sent before a `send` found it set) makes the next
        // command after this drain fire the waker again.
        shared.woken.swap(false, Ordering::AcqRel);
        let mut taken = 0u32;
        while let Ok(cmd) = rx.try_recv() {
            // Senders may keep this drain going for long: the clock (which stamps messages)
            // is read again every so many commands.
            taken = taken.wrapping_add(1);
            if taken.is_multiple_of(CLOCK_EVERY) {
                d.endpoint.set_now(Instant::now());
            }
            d.endpoint.command(cmd, &mut service);
            d.apply_actions(&mut service);
            // A long run of commands (a program sending in a loop) is written out as it goes,
            // so that the queues, and the senders' view of them, stay current.
            if d.endpoint.total_queued() > FLUSH_DURING_COMMANDS {
                d.endpoint.commands_done(&mut service);
                d.flush_dirty(&mut service);
                service.on_backlog(d.endpoint.total_queued());
            }
        }
        // The drain's end: what the service gathered over the commands is done now.
        d.endpoint.commands_done(&mut service);
        d.apply_actions(&mut service);
        // Connections whose reading was paused or cut short by the budget.
        if service.wants_input() {
            let mut pending: Vec<ConnId> = d.unread.iter().copied().collect();
            pending.extend(d.endpoint.paused());
            pending.sort_unstable();
            pending.dedup();
            for id in pending {
                d.read_conn(id, &mut service);
                d.apply_actions(&mut service);
            }
        }
        d.endpoint.handle_timeout(&mut service);
        d.apply_actions(&mut service);
        d.flush_dirty(&mut service);
        service.on_backlog(d.endpoint.total_queued());
        if d.endpoint.stop_requested() || shared.stop.load(Ordering::Acquire) {
            break;
        }
    }
    shared.stop.store(true, Ordering::Release);
    d.endpoint.close_all(&mut service);
    d.apply_actions(&mut service);
}
