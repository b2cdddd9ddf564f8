//! The mio event loop ("daemon"): one thread owns the listener and every connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::connection::{Connection, ReadOutcome};
use crate::{CloseReason, ConnId, ConnInfo, Frame, Net, NetConfig, NetError, Service};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: u64 = 2;
/// Queued bytes above which the loop writes while it is still taking commands.
const FLUSH_DURING_COMMANDS: usize = 256 << 10;
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
        let guard = self.shared.thread.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .is_some_and(|t| t.thread().id() == thread::current().id())
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
            local_addr,
        });
        let now = Instant::now();
        let core = Core {
            poll,
            listener,
            conns: HashMap::new(),
            next_id: FIRST_CONN,
            read_buf: vec![0; config.read_chunk.max(1024)],
            config,
            closing: Vec::new(),
            dirty: Vec::new(),
            stop_requested: false,
            now,
            total_queued: 0,
            total_buffered: 0,
        };
        let loop_shared = shared.clone();
        let thread = thread::Builder::new()
            .name(format!("py2p-loop-{}", local_addr.port()))
            .spawn(move || run(core, service, rx, loop_shared))?;
        *shared.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(LoopHandle { tx, shared })
    }
}

/// Everything the loop owns except the service, so that the service can borrow it as `Net`.
struct Core {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<Token, Connection>,
    next_id: u64,
    read_buf: Vec<u8>,
    config: NetConfig,
    closing: Vec<(Token, CloseReason)>,
    dirty: Vec<Token>,
    stop_requested: bool,
    now: Instant,
    /// Bytes waiting in all write queues together.
    total_queued: usize,
    /// Bytes held in all connections' frame decoders.
    total_buffered: usize,
}

fn conn_id(t: Token) -> ConnId {
    ConnId(t.0 as u64)
}

fn token(c: ConnId) -> Token {
    Token(c.0 as usize)
}

impl Net for Core {
    fn send(&mut self, conn: ConnId, frame: Frame) {
        let t = token(conn);
        let max = self.config.max_write_queue;
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        if c.queue.is_empty() {
            c.last_write_progress = self.now;
        }
        self.total_queued += frame.len();
        c.queue.push(frame);
        if c.queue.len() > max {
            let queued = c.queue.len();
            self.closing.push((t, CloseReason::SlowPeer { queued }));
        } else {
            self.dirty.push(t);
        }
        if self.total_queued > self.config.max_total_write_queue {
            self.shed_slowest();
        }
    }

    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(NetError::TooManyConnections {
                max: self.config.max_connections,
            });
        }
        let mut stream = TcpStream::connect(addr)?;
        let t = Token(self.next_id as usize);
        self.next_id += 1;
        self.poll
            .registry()
            .register(&mut stream, t, Interest::READABLE | Interest::WRITABLE)?;
        let max_frame = self.config.limits.max_frame_len;
        self.conns
            .insert(t, Connection::new(stream, addr, true, max_frame, self.now));
        debug!("{}: dialling {addr}", conn_id(t));
        Ok(conn_id(t))
    }

    fn close(&mut self, conn: ConnId) {
        let t = token(conn);
        if self.conns.contains_key(&t) {
            self.closing.push((t, CloseReason::Local));
        }
    }

    fn queued(&self, conn: ConnId) -> usize {
        self.conns.get(&token(conn)).map_or(0, |c| c.queue.len())
    }

    fn total_queued(&self) -> usize {
        self.total_queued
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn unix_time(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn shutdown(&mut self) {
        self.stop_requested = true;
    }
}

impl Core {
    /// Over the total budget: the connection with the longest queue is the slowest reader.
    fn shed_slowest(&mut self) {
        let closing = |t: &Token| self.closing.iter().any(|(c, _)| c == t);
        // Queues of connections already on their way out no longer count.
        let leaving: usize = self
            .conns
            .iter()
            .filter(|(t, _)| closing(t))
            .map(|(_, c)| c.queue.len())
            .sum();
        if self.total_queued.saturating_sub(leaving) <= self.config.max_total_write_queue {
            return;
        }
        let (total, max) = (self.total_queued, self.config.max_total_write_queue);
        self.drop_largest(
            |c| c.queue.len(),
            |queued| CloseReason::SlowPeer { queued },
            format_args!("{total} bytes queued to all peers, over the limit of {max}; dropping the slowest reader"),
        );
    }

    /// Closes the open connection with the most of `size` (when it has any), logging `why`
    /// with its id and address.
    fn drop_largest(
        &mut self,
        size: impl Fn(&Connection) -> usize,
        reason: impl FnOnce(usize) -> CloseReason,
        why: std::fmt::Arguments<'_>,
    ) {
        let closing = |t: &Token| self.closing.iter().any(|(c, _)| c == t);
        let largest = self
            .conns
            .iter()
            .filter(|(t, c)| !closing(t) && size(c) > 0)
            .max_by_key(|(_, c)| size(c))
            .map(|(t, c)| (*t, size(c), c.peer_addr));
        if let Some((t, n, addr)) = largest {
            warn!("{} ({addr}): {why}", conn_id(t));
            self.closing.push((t, reason(n)));
        }
    }

    fn accept_all<S: Service>(&mut self, service: &mut S) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    if self.conns.len() >= self.config.max_connections {
                        match service.make_room().map(token) {
                            Some(victim) if self.conns.contains_key(&victim) => {
                                info!(
                                    "{}: closing to make room for a connection from {addr} (limit of {} connections)",
                                    conn_id(victim),
                                    self.config.max_connections
                                );
                                self.closing.push((victim, CloseReason::Evicted));
                                self.finish_closes(service);
                            }
                            _ => {
                                warn!(
                                    "refusing connection from {addr}: limit of {} connections reached",
                                    self.config.max_connections
                                );
                                continue;
                            }
                        }
                    }
                    let t = Token(self.next_id as usize);
                    self.next_id += 1;
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        t,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        warn!("cannot register connection from {addr}: {e}");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let max_frame = self.config.limits.max_frame_len;
                    self.conns
                        .insert(t, Connection::new(stream, addr, false, max_frame, self.now));
                    debug!("{}: accepted from {addr}", conn_id(t));
                    service.on_open(
                        self,
                        conn_id(t),
                        &ConnInfo {
                            peer_addr: addr,
                            outgoing: false,
                        },
                    );
                    self.finish_closes(service);
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

    /// Completes a pending dial; returns false when the connection is not established yet.
    fn check_connected<S: Service>(&mut self, t: Token, service: &mut S) -> bool {
        let Some(c) = self.conns.get_mut(&t) else {
            return false;
        };
        if !c.connecting {
            return true;
        }
        match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.closing
                    .push((t, CloseReason::ConnectFailed(e.to_string())));
                return false;
            }
            Ok(None) => {}
        }
        match c.stream.peer_addr() {
            Ok(addr) => {
                c.connecting = false;
                c.last_read = self.now;
                let _ = c.stream.set_nodelay(true);
                debug!("{}: connected to {addr}", conn_id(t));
                service.on_open(
                    self,
                    conn_id(t),
                    &ConnInfo {
                        peer_addr: addr,
                        outgoing: true,
                    },
                );
                self.dirty.push(t);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => false,
            Err(e) => {
                self.closing
                    .push((t, CloseReason::ConnectFailed(e.to_string())));
                false
            }
        }
    }

    fn read_conn<S: Service>(&mut self, t: Token, service: &mut S) {
        if self.conns.get(&t).is_none_or(|c| c.connecting) {
            return;
        }
        let before = self.buffered(t);
        // Frames already buffered go first; the socket is read only when they are all taken.
        if self.deliver_buffered(t, service) {
            let now = self.now;
            if let Some(c) = self.conns.get_mut(&t) {
                c.read_pending = false;
                match c.read_some(&mut self.read_buf, READ_BUDGET, now) {
                    Ok((ReadOutcome::Eof, _)) => c.peer_closed = true,
                    Ok((ReadOutcome::Drained, _)) => {}
                    Err(e) => self.closing.push((t, CloseReason::Io(e.to_string()))),
                }
            }
            self.deliver_buffered(t, service);
        }
        self.total_buffered = (self.total_buffered + self.buffered(t)).saturating_sub(before);
        if self.total_buffered > self.config.max_total_read_buffer {
            self.shed_largest_input();
        }
        self.finish_closes(service);
    }

    /// Bytes held in a connection's frame decoder.
    fn buffered(&self, t: Token) -> usize {
        self.conns.get(&t).map_or(0, |c| c.decoder.buffered_len())
    }

    /// Closes the connection holding the most unfinished input, when all of them together
    /// hold more than `max_total_read_buffer`.
    fn shed_largest_input(&mut self) {
        let (total, max) = (self.total_buffered, self.config.max_total_read_buffer);
        self.drop_largest(
            |c| c.decoder.buffered_len(),
            |buffered| CloseReason::ReadBudget { buffered },
            format_args!("{total} bytes of unfinished frames held for all peers, over the limit of {max}; dropping the peer holding the most"),
        );
    }

    /// Hands complete frames to the service while it wants input. Returns whether every
    /// buffered frame was taken and the connection is still open (so reading may go on).
    /// Frames that wait while the service is paused stay in the decoder, bounded by one read.
    fn deliver_buffered<S: Service>(&mut self, t: Token, service: &mut S) -> bool {
        let id = conn_id(t);
        loop {
            // Once the service closes the connection, what is left of its input is dropped.
            if self.closing.iter().any(|(c, _)| *c == t) {
                return false;
            }
            let wants = service.wants_input();
            let Some(c) = self.conns.get_mut(&t) else {
                return false;
            };
            if !wants {
                c.read_pending = true;
                return false;
            }
            match c.decoder.next_frame() {
                Ok(Some(body)) => service.on_frame(self, id, body),
                Ok(None) => {
                    if c.peer_closed {
                        self.closing.push((t, CloseReason::PeerClosed));
                        return false;
                    }
                    return true;
                }
                Err(e) => {
                    self.closing.push((t, CloseReason::Wire(e)));
                    return false;
                }
            }
        }
    }

    fn flush(&mut self, t: Token) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        if c.connecting || c.queue.is_empty() {
            return;
        }
        let before = c.queue.len();
        let result = c.queue.write_to(&mut c.stream);
        let written = before - c.queue.len();
        self.total_queued -= written;
        if written > 0 {
            c.last_write_progress = now;
        }
        if let Err(e) = result {
            self.closing.push((t, CloseReason::Io(e.to_string())));
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for t in dirty.drain(..) {
            self.flush(t);
        }
        // Keep the allocation for the next turn.
        self.dirty = dirty;
    }

    /// Removes the connections scheduled to close and tells the service, until none are left
    /// (the service may close more while it hears of one).
    fn finish_closes<S: Service>(&mut self, service: &mut S) {
        while let Some((t, reason)) = self.closing.pop() {
            let Some(mut c) = self.conns.remove(&t) else {
                continue;
            };
            self.total_queued -= c.queue.len();
            self.total_buffered = self.total_buffered.saturating_sub(c.decoder.buffered_len());
            if matches!(reason, CloseReason::Local | CloseReason::Shutdown) && !c.connecting {
                // Last words (a refusal, a goodbye) go out if the socket takes them now.
                let _ = c.queue.write_to(&mut c.stream);
            }
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            match &reason {
                CloseReason::PeerClosed | CloseReason::Local | CloseReason::Shutdown => {
                    debug!("{} ({}): {reason}", conn_id(t), c.peer_addr)
                }
                _ => info!("{} ({}): closing: {reason}", conn_id(t), c.peer_addr),
            }
            service.on_close(self, conn_id(t), &reason);
        }
    }

    fn timers<S: Service>(&mut self, service: &mut S) {
        let now = self.now;
        for (t, c) in self.conns.iter_mut() {
            if c.connecting {
                if now.duration_since(c.last_read) > self.config.partial_frame_timeout {
                    self.closing
                        .push((*t, CloseReason::ConnectFailed("timed out".into())));
                }
                continue;
            }
            // While input is paused the buffered frames are ours to take, not the peer's delay.
            if c.decoder.is_mid_frame() && !c.read_pending {
                if now.duration_since(c.last_read) > self.config.partial_frame_timeout {
                    self.closing.push((*t, CloseReason::PartialFrameTimeout));
                }
            } else if c.decoder.capacity() > 0 {
                c.decoder.shrink();
            }
            if !c.queue.is_empty()
                && now.duration_since(c.last_write_progress) > self.config.write_stall_timeout
            {
                self.closing.push((*t, CloseReason::WriteStalled));
            }
        }
        self.finish_closes(service);
        service.on_tick(self);
        self.finish_closes(service);
    }
}

fn run<S: Service>(mut core: Core, mut service: S, rx: Receiver<S::Command>, shared: Arc<Shared>) {
    let mut events = Events::with_capacity(1024);
    let tick = core.config.tick_interval.max(Duration::from_millis(10));
    let mut next_tick = Instant::now() + tick;
    loop {
        let pending_reads = service.wants_input() && core.conns.values().any(|c| c.read_pending);
        let timeout = if pending_reads {
            Duration::ZERO
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        if let Err(e) = core.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                warn!("poll failed: {e}; stopping the event loop");
                break;
            }
        }
        core.now = Instant::now();
        for event in events.iter() {
            match event.token() {
                LISTENER => core.accept_all(&mut service),
                WAKER => {}
                t => {
                    let connecting = core.conns.get(&t).is_some_and(|c| c.connecting);
                    if connecting && !core.check_connected(t, &mut service) {
                        core.finish_closes(&mut service);
                        continue;
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        core.read_conn(t, &mut service);
                    }
                    if event.is_writable() {
                        core.flush(t);
                    }
                }
            }
        }
        // Commands from the user's threads. Clearing `woken` first (a read-modify-write,
        // which sees every command sent before a `send` found it set) makes the next
        // command after this drain fire the waker again.
        shared.woken.swap(false, Ordering::AcqRel);
        while let Ok(cmd) = rx.try_recv() {
            service.on_command(&mut core, cmd);
            core.finish_closes(&mut service);
            // A long run of commands (a program sending in a loop) is written out as it goes,
            // so that the queues, and the senders' view of them, stay current.
            if core.total_queued > FLUSH_DURING_COMMANDS {
                core.flush_dirty();
                core.finish_closes(&mut service);
                service.on_backlog(core.total_queued);
            }
        }
        // Connections whose reading was paused or cut short by the budget.
        if service.wants_input() {
            let pending: Vec<Token> = core
                .conns
                .iter()
                .filter(|(_, c)| c.read_pending)
                .map(|(t, _)| *t)
                .collect();
            for t in pending {
                core.read_conn(t, &mut service);
            }
        }
        if core.now >= next_tick {
            core.timers(&mut service);
            next_tick = core.now + tick;
        }
        core.finish_closes(&mut service);
        core.flush_dirty();
        core.finish_closes(&mut service);
        service.on_backlog(core.total_queued);
        if core.stop_requested || shared.stop.load(Ordering::Acquire) {
            break;
        }
    }
    shared.stop.store(true, Ordering::Release);
    let all: Vec<Token> = core.conns.keys().copied().collect();
    core.closing
        .extend(all.into_iter().map(|t| (t, CloseReason::Shutdown)));
    core.finish_closes(&mut service);
    service.on_shutdown();
}
