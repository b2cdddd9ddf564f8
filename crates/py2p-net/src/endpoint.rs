//! The sans-I/O endpoint: every connection rule of a node, driven by values.
//!
//! An [`Endpoint`] owns the state of all connections of one socket (frame decoders, write
//! queues, TLS sessions, timers) and enforces every limit of [`NetConfig`]: the connection cap
//! and eviction (through [`Service::make_room`]), per-peer and total write-queue budgets
//! (slow-peer dropping), the total read-buffer budget, the TLS-handshake, partial-frame,
//! write-stall and connect timers, and pausing input while the service wants none. It never
//! touches a socket or a clock: a *driver* feeds it values and carries out what it asks.
//!
//! The mio daemon ([`EventLoop`](crate::EventLoop)) is one driver; a simulator or a test can
//! be another, moving bytes through in-memory pipes. A driver:
//!
//! 1. sets the time with [`Endpoint::set_now`] before each batch of inputs;
//! 2. reports accepted connections with [`Endpoint::accept`] (a `None` means: close it),
//!    dial results with [`Endpoint::connected`] / [`Endpoint::connect_failed`], bytes read
//!    with [`Endpoint::received`] (only while [`Endpoint::may_read`]), EOF with
//!    [`Endpoint::peer_closed`] and socket errors with [`Endpoint::io_error`];
//! 3. passes the user's commands with [`Endpoint::command`], and after the last of a run
//!    (before anything else) calls [`Endpoint::commands_done`];
//! 4. carries out [`Endpoint::poll_action`] until it returns `None`: open a connection
//!    ([`Action::Dial`]) or close one after writing its last bytes ([`Action::Close`]);
//! 5. writes, for each connection in [`Endpoint::take_dirty`] (or that became writable),
//!    (at the end of a turn the service first sends what it held back for the turn, in
//!    [`Service::before_write`], which `take_dirty` calls),
//!    with [`Endpoint::write_to`], giving it any [`std::io::Write`] that may refuse with
//!    `WouldBlock`;
//! 6. reads again the connections of [`Endpoint::paused`] once the service wants input;
//! 7. calls [`Endpoint::handle_timeout`] at [`Endpoint::poll_timeout`].
//!
//! The service's callbacks run inside these calls, with the endpoint as its [`Net`].

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::conn::{Conn, Phase};
use crate::tls::TlsLayer;
use crate::write_queue::WriteQueue;
use crate::{CloseReason, ConnId, ConnInfo, Frame, Net, NetConfig, NetError, Service};

/// A connection's read buffer up to this size is given back at every tick, busy or not.
const SMALL_READ_BUFFER: usize = 4 << 10;
/// The frame buffer is given back when a frame grew it past this.
const FRAME_KEEP: usize = 64 << 10;

/// rustls's own buffers per connection (unsent plaintext and records) at most.
const TLS_BUFFER_LIMIT: usize = 256 << 10;

/// What the endpoint asks of its driver.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `addr` for `conn`; report the outcome with
    /// [`Endpoint::connected`] or [`Endpoint::connect_failed`].
    Dial {
        /// The connection the endpoint made for it.
        conn: ConnId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Close the connection's socket, after one best-effort, non-blocking write of
    /// `last_words` (frames queued before a local close, and a TLS `close_notify`).
    Close {
        /// The connection, already forgotten by the endpoint.
        conn: ConnId,
        /// Bytes to try to write first (often empty).
        last_words: Vec<u8>,
    },
}

/// Every connection of one socket and every rule they obey, without I/O (see the module docs).
pub struct Endpoint {
    /// Ordered by id, so that every rule acts in the same order on every run (a simulator
    /// replays a seed exactly; ties in eviction and shedding go the same way).
    /// Boxed records (see `Conn::new`).
    conns: BTreeMap<ConnId, Box<Conn>>,
    next_id: u64,
    config: NetConfig,
    closing: Vec<(ConnId, CloseReason)>,
    dirty: Vec<ConnId>,
    actions: VecDeque<Action>,
    stop_requested: bool,
    /// Set by [`Endpoint::close_all`]: frames and dials the service asks for while it hears
    /// of every connection closing are dropped (telling each remaining peer of each loss
    /// would queue N² frames at a shutdown).
    closing_all: bool,
    now: Instant,
    next_tick: Instant,
    /// Bytes waiting in all write queues and TLS buffers together.
    total_queued: usize,
    /// Bytes held in all connections' frame decoders.
    total_buffered: usize,
    /// Unix time pinned by a driver with its own clock (a simulator); else the system's.
    unix_time: Option<u64>,
    /// The system's Unix time, read at [`Endpoint::set_now`]: one clock read per batch of
    /// inputs instead of one per message (every message is stamped or checked against it).
    wall: u64,
    /// Every frame body is copied here for the service, one after the other (no allocation
    /// per frame); given back when a large frame grew it past `FRAME_KEEP`.
    frame: Vec<u8>,
}

impl Endpoint {
    /// An endpoint with no connections; connection ids start at `first_id`.
    pub fn new(config: NetConfig, now: Instant, first_id: u64) -> Endpoint {
        let tick = config.tick_interval.max(Duration::from_millis(10));
        Endpoint {
            conns: BTreeMap::new(),
            next_id: first_id,
            config,
            closing: Vec::new(),
            dirty: Vec::new(),
            actions: VecDeque::new(),
            stop_requested: false,
            closing_all: false,
            now,
            next_tick: now + tick,
            total_queued: 0,
            total_buffered: 0,
            unix_time: None,
            wall: system_unix_time(),
            frame: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Sets the time for the inputs that follow (and reads the system's Unix time for them,
    /// unless a driver pinned it with [`Endpoint::set_unix_time`]).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        if self.unix_time.is_none() {
            self.wall = system_unix_time();
        }
    }

    /// Pins the Unix time (whole seconds) that [`Net::unix_time`] gives the service, for a
    /// driver with its own clock (a simulator). Without it the system clock is read.
    pub fn set_unix_time(&mut self, secs: u64) {
        self.unix_time = Some(secs);
    }

    /// Connections held (in any phase).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether the service (or a driver's [`Endpoint::request_stop`]) asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// Asks the endpoint to stop: [`Endpoint::close_all`] should follow.
    pub fn request_stop(&mut self) {
        self.stop_requested = true;
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Connections with bytes to write since the last call, after the service sent what it
    /// held back for this turn ([`Service::before_write`]).
    pub fn take_dirty<S: Service>(&mut self, service: &mut S) -> Vec<ConnId> {
        service.before_write(self);
        self.finish_closes(service);
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        dirty
    }

    /// When [`Endpoint::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// A connection was accepted from `peer`. Returns its id, or `None` when it is refused
    /// (the driver closes the socket). At `max_connections` the oldest connection still in
    /// its TLS handshake is closed to make room, else the one [`Service::make_room`] names.
    pub fn accept<S: Service>(&mut self, peer: SocketAddr, service: &mut S) -> Option<ConnId> {
        if self.conns.len() >= self.config.max_connections {
            let half_open = self
                .conns
                .iter()
                .filter(|(id, c)| c.phase == Phase::TlsHandshake && !self.is_closing(**id))
                .min_by_key(|(id, c)| (c.since, **id))
                .map(|(id, _)| *id);
            match half_open.or_else(|| service.make_room()) {
                Some(victim) if self.conns.contains_key(&victim) => {
                    info!(
                        "{victim}: closing to make room for a connection from {peer} (limit of {} connections)",
                        self.config.max_connections
                    );
                    self.closing.push((victim, CloseReason::Evicted));
                    self.finish_closes(service);
                }
                _ => {
                    warn!(
                        "refusing connection from {peer}: limit of {} connections reached",
                        self.config.max_connections
                    );
                    return None;
                }
            }
        }
        let id = self.new_id();
        let mut conn = Conn::new(peer, false, self.config.limits.max_frame_len, self.now);
        if let Some(tls) = &self.config.tls {
            match TlsLayer::server(tls, TLS_BUFFER_LIMIT) {
                Ok(layer) => {
                    conn.tls = Some(Box::new(layer));
                    conn.phase = Phase::TlsHandshake;
                }
                Err(e) => {
                    warn!("refusing connection from {peer}: TLS: {e}");
                    return None;
                }
            }
        }
        let phase = conn.phase;
        self.conns.insert(id, conn);
        debug!("{id}: accepted from {peer}");
        if phase == Phase::Open {
            self.open(id, service);
        }
        self.finish_closes(service);
        Some(id)
    }

    /// A dial completed: `peer` is the address connected to.
    pub fn connected<S: Service>(&mut self, conn: ConnId, peer: SocketAddr, service: &mut S) {
        let tls = self.config.tls.clone();
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.phase != Phase::Connecting {
            return;
        }
        c.peer_addr = peer;
        c.since = now;
        c.last_read = now;
        debug!("{conn}: connected to {peer}");
        match tls {
            None => {
                c.phase = Phase::Open;
                self.open(conn, service);
            }
            Some(tls) => match TlsLayer::client(&tls, peer, TLS_BUFFER_LIMIT) {
                Ok(layer) => {
                    // The ClientHello goes out at once.
                    c.tls = Some(Box::new(layer));
                    c.phase = Phase::TlsHandshake;
                    self.dirty.push(conn);
                }
                Err(e) => self.closing.push((conn, CloseReason::Tls(e))),
            },
        }
        self.finish_closes(service);
    }

    /// A dial failed.
    pub fn connect_failed<S: Service>(&mut self, conn: ConnId, error: String, service: &mut S) {
        if self.conns.contains_key(&conn) {
            self.closing.push((conn, CloseReason::ConnectFailed(error)));
        }
        self.finish_closes(service);
    }

    /// A socket error: the connection closes.
    pub fn io_error<S: Service>(&mut self, conn: ConnId, error: String, service: &mut S) {
        if self.conns.contains_key(&conn) {
            self.closing.push((conn, CloseReason::Io(error)));
        }
        self.finish_closes(service);
    }

    /// Whether the driver may read the connection's socket now: it is up, not closing, no
    /// frames wait for the service, and the service wants input.
    pub fn may_read<S: Service>(&self, conn: ConnId, service: &S) -> bool {
        self.open_for_input(conn) && service.wants_input()
    }

    /// Whether the connection's socket is to be read when the service wants input: it is
    /// up, not closing, its peer has not closed, and no frames wait for the service.
    pub fn open_for_input(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.phase != Phase::Connecting && !c.read_pending && !c.peer_closed)
            && !self.is_closing(conn)
    }

    /// Connections holding frames the service has not taken yet (input was paused).
    pub fn paused(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.read_pending)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether frames wait on `conn` for the service (its input was paused).
    pub fn is_paused(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.read_pending)
    }

    /// Hands the frames waiting on a paused connection to the service. Returns whether the
    /// driver may read its socket again.
    pub fn resume<S: Service>(&mut self, conn: ConnId, service: &mut S) -> bool {
        if self.is_paused(conn) {
            let before = self.buffered(conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.read_pending = false;
            }
            self.deliver(conn, service);
            service.on_frames_done(self);
            self.account_input(conn, before);
            self.finish_closes(service);
        }
        self.may_read(conn, service)
    }

    /// Bytes read from a connection's socket.
    pub fn received<S: Service>(&mut self, conn: ConnId, bytes: &[u8], service: &mut S) {
        let before = self.buffered(conn);
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.phase == Phase::Connecting || bytes.is_empty() {
            return;
        }
        c.last_read = now;
        match &mut c.tls {
            None => {
                // A frame begun in an earlier read is completed in the decoder's buffer and
                // handed over from there; the frames after it are handed over where they
                // lie in `bytes`, without a copy.
                let rest = c.decoder.fill(bytes);
                self.deliver(conn, service);
                self.deliver_in_place(conn, rest, service);
            }
            Some(tls) => {
                let decoder = &mut c.decoder;
                let queued_before = tls.pending();
                let result = tls.receive(bytes, &mut |plain| decoder.push(plain));
                if tls.wants_write() {
                    // Handshake replies, alerts, key updates.
                    self.total_queued =
                        (self.total_queued + tls.pending()).saturating_sub(queued_before);
                    self.dirty.push(conn);
                }
                match result {
                    Err(e) => self.closing.push((conn, CloseReason::Tls(e))),
                    Ok(input) => {
                        if input.closed {
                            c.peer_closed = true;
                        }
                        if c.phase == Phase::TlsHandshake && !tls.is_handshaking() {
                            c.phase = Phase::Open;
                            debug!(
                                "{conn} ({}): TLS handshake done ({})",
                                c.peer_addr,
                                tls.version().unwrap_or("?")
                            );
                            self.open(conn, service);
                        }
                    }
                }
                self.deliver(conn, service);
            }
        }
        service.on_frames_done(self);
        self.account_input(conn, before);
        self.finish_closes(service);
    }

    /// The peer closed its side (EOF; without a TLS `close_notify` too, as py2p does).
    pub fn peer_closed<S: Service>(&mut self, conn: ConnId, service: &mut S) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.peer_closed = true;
        if c.phase != Phase::Open {
            let reason = if c.outgoing && c.phase == Phase::TlsHandshake {
                CloseReason::Tls("peer closed during the TLS handshake".into())
            } else {
                CloseReason::PeerClosed
            };
            self.closing.push((conn, reason));
        } else {
            self.deliver(conn, service);
            service.on_frames_done(self);
        }
        self.finish_closes(service);
    }

    /// Writes what `w` takes of the connection's queue now (an `Err` of kind `WouldBlock`
    /// from `w` just stops it). Returns the bytes written; an error closes the connection.
    pub fn write_to<S: Service>(
        &mut self,
        conn: ConnId,
        w: &mut dyn Write,
        service: &mut S,
    ) -> usize {
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return 0;
        };
        if !c.has_output() {
            return 0;
        }
        let before = c.queued();
        let result = c.write_to(w);
        let after = c.queued();
        self.total_queued = (self.total_queued + after).saturating_sub(before);
        let written = match result {
            Ok(n) => n,
            Err(e) => {
                self.closing.push((conn, CloseReason::Io(e.to_string())));
                0
            }
        };
        if written > 0 || after == 0 {
            c.last_write_progress = now;
        }
        self.finish_closes(service);
        written
    }

    /// Bytes waiting for the connection's socket.
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.has_output())
    }

    /// Passes a command from the user's threads to the service.
    pub fn command<S: Service>(&mut self, cmd: S::Command, service: &mut S) {
        service.on_command(self, cmd);
        self.finish_closes(service);
    }

    /// Tells the service that a run of [`Endpoint::command`]s ended
    /// ([`Service::on_commands_done`]): after the last command waiting, and before writing
    /// in the middle of a long run.
    pub fn commands_done<S: Service>(&mut self, service: &mut S) {
        service.on_commands_done(self);
        self.finish_closes(service);
    }

    /// Bytes waiting in all write queues together.
    pub fn total_queued(&self) -> usize {
        self.total_queued
    }

    /// Bytes of unfinished (or not yet taken) frames held for all connections together.
    pub fn total_buffered(&self) -> usize {
        self.total_buffered
    }

    /// Fires the timers that are due (TLS handshake, connect, partial frame, write stall) and
    /// the service's `on_tick`, when [`Endpoint::poll_timeout`] has passed.
    pub fn handle_timeout<S: Service>(&mut self, service: &mut S) {
        let now = self.now;
        if now < self.next_tick {
            return;
        }
        let config = &self.config;
        for (id, c) in self.conns.iter_mut() {
            match c.phase {
                Phase::Connecting => {
                    if now.duration_since(c.since) > config.connect_timeout {
                        self.closing
                            .push((*id, CloseReason::ConnectFailed("timed out".into())));
                    }
                    continue;
                }
                Phase::TlsHandshake => {
                    if now.duration_since(c.since) > config.tls_handshake_timeout {
                        self.closing.push((*id, CloseReason::TlsHandshakeTimeout));
                    }
                    continue;
                }
                Phase::Open => {}
            }
            // While input is paused the buffered frames are ours to take, not the peer's delay.
            // A small read buffer is given back at every tick (an idle connection keeps
            // none); a large one once its connection was quiet for a tick (a busy one keeps
            // it: freeing and growing it again every tick costs malloc time).
            let quiet = now.duration_since(c.last_read) >= config.tick_interval;
            if c.decoder.is_mid_frame() && !c.read_pending {
                if now.duration_since(c.last_read) > config.partial_frame_timeout {
                    self.closing.push((*id, CloseReason::PartialFrameTimeout));
                }
            } else if c.decoder.capacity() > 0
                && (quiet || c.decoder.capacity() <= SMALL_READ_BUFFER)
            {
                c.decoder.shrink();
            }
            c.queue.shrink();
            if c.queued() > 0
                && now.duration_since(c.last_write_progress) > config.write_stall_timeout
            {
                self.closing.push((*id, CloseReason::WriteStalled));
            }
        }
        self.finish_closes(service);
        service.on_tick(self);
        self.finish_closes(service);
        self.next_tick = now + self.config.tick_interval.max(Duration::from_millis(10));
    }

    /// Closes every connection ([`CloseReason::Shutdown`]) and tells the service it stopped.
    ///
    /// Frames the service sends and dials it asks for from then on are dropped: nothing
    /// queued after the shutdown began would be written.
    pub fn close_all<S: Service>(&mut self, service: &mut S) {
        self.closing_all = true;
        let all: Vec<ConnId> = self.conns.keys().copied().collect();
        self.closing
            .extend(all.into_iter().map(|id| (id, CloseReason::Shutdown)));
        self.finish_closes(service);
        service.on_shutdown();
    }

    fn new_id(&mut self) -> ConnId {
        let id = ConnId::from_raw(self.next_id);
        self.next_id += 1;
        id
    }

    fn is_closing(&self, conn: ConnId) -> bool {
        self.closing.iter().any(|(c, _)| *c == conn)
    }

    fn buffered(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.buffered())
    }

    /// Tells the service of an established connection.
    fn open<S: Service>(&mut self, conn: ConnId, service: &mut S) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let info = ConnInfo {
            peer_addr: c.peer_addr,
            outgoing: c.outgoing,
            tls_version: c.tls.as_deref().and_then(TlsLayer::version),
        };
        service.on_open(self, conn, &info);
        self.dirty.push(conn);
    }

    /// Updates the input total after a connection's decoder changed from `before` bytes, and
    /// enforces the read budget.
    fn account_input(&mut self, conn: ConnId, before: usize) {
        self.total_buffered = (self.total_buffered + self.buffered(conn)).saturating_sub(before);
        if self.total_buffered > self.config.max_total_read_buffer {
            let (total, max) = (self.total_buffered, self.config.max_total_read_buffer);
            self.drop_largest(
                Conn::buffered,
                |buffered| CloseReason::ReadBudget { buffered },
                format_args!("{total} bytes of unfinished frames held for all peers, over the limit of {max}; dropping the peer holding the most"),
            );
        }
    }

    /// Over the total write budget: the connection with the longest queue is the slowest reader.
    fn shed_slowest(&mut self) {
        // Queues of connections already on their way out no longer count.
        let leaving: usize = self
            .conns
            .iter()
            .filter(|(id, _)| self.is_closing(**id))
            .map(|(_, c)| c.queued())
            .sum();
        if self.total_queued.saturating_sub(leaving) <= self.config.max_total_write_queue {
            return;
        }
        let (total, max) = (self.total_queued, self.config.max_total_write_queue);
        self.drop_largest(
            Conn::queued,
            |queued| CloseReason::SlowPeer { queued },
            format_args!("{total} bytes queued to all peers, over the limit of {max}; dropping the slowest reader"),
        );
    }

    /// Closes the open connection with the most of `size` (when it has any), logging `why`
    /// with its id and address.
    fn drop_largest(
        &mut self,
        size: impl Fn(&Conn) -> usize,
        reason: impl FnOnce(usize) -> CloseReason,
        why: std::fmt::Arguments<'_>,
    ) {
        let largest = self
            .conns
            .iter()
            .filter(|(id, c)| !self.is_closing(**id) && size(c) > 0)
            .max_by_key(|(_, c)| size(c))
            .map(|(id, c)| (*id, size(c), c.peer_addr));
        if let Some((id, n, addr)) = largest {
            warn!("{id} ({addr}): {why}");
            self.closing.push((id, reason(n)));
        }
    }

    /// Hands complete frames to the service while it wants input. Frames that wait while
    /// the service is paused stay in the decoder, bounded by one read.
    fn deliver<S: Service>(&mut self, conn: ConnId, service: &mut S) {
        loop {
            // Once the service closes the connection, what is left of its input is dropped.
            if self.is_closing(conn) {
                return;
            }
            let wants = service.wants_input();
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.phase != Phase::Open {
                return;
            }
            if !wants {
                c.read_pending = true;
                return;
            }
            let mut frame = std::mem::take(&mut self.frame);
            match c.decoder.next_frame_into(&mut frame) {
                Ok(true) => {
                    service.on_frame(self, conn, &frame);
                    if frame.capacity() <= FRAME_KEEP {
                        self.frame = frame;
                    }
                }
                Ok(false) => {
                    self.frame = frame;
                    if c.peer_closed {
                        self.closing.push((conn, CloseReason::PeerClosed));
                    }
                    return;
                }
                Err(e) => {
                    self.closing.push((conn, CloseReason::Wire(e)));
                    return;
                }
            }
        }
    }

    /// Hands the whole frames of `data` (the rest of a read, after the frame the decoder
    /// held) to the service as slices of it, while it wants input. What is left (a frame
    /// not complete yet, or frames that wait while the service is paused) goes into the
    /// decoder, bounded by one read as with [`Endpoint::deliver`].
    fn deliver_in_place<S: Service>(&mut self, conn: ConnId, mut data: &[u8], service: &mut S) {
        loop {
            // Once the service closes the connection, what is left of its input is dropped.
            if self.is_closing(conn) {
                return;
            }
            if data.is_empty() {
                // As after `deliver`: a peer that closed its side is closed once its
                // frames are all taken.
                if self.conns.get(&conn).is_some_and(|c| c.peer_closed) {
                    self.deliver(conn, service);
                }
                return;
            }
            let wants = service.wants_input();
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if !wants || c.phase != Phase::Open {
                c.decoder.push(data);
                c.read_pending |= !wants && c.phase == Phase::Open;
                return;
            }
            match c.decoder.take_frame(&mut data) {
                Ok(Some(body)) => service.on_frame(self, conn, body),
                Ok(None) => {
                    // A frame not complete yet (or, were the decoder still holding bytes,
                    // the frames after them: taken from there, in order).
                    c.decoder.push(data);
                    return self.deliver(conn, service);
                }
                Err(e) => {
                    self.closing.push((conn, CloseReason::Wire(e)));
                    return;
                }
            }
        }
    }

    /// Removes the connections scheduled to close and tells the service, until none are left
    /// (the service may close more while it hears of one).
    fn finish_closes<S: Service>(&mut self, service: &mut S) {
        while let Some((id, reason)) = self.closing.pop() {
            let Some(mut c) = self.conns.remove(&id) else {
                continue;
            };
            self.total_queued = self.total_queued.saturating_sub(c.queued());
            self.total_buffered = self.total_buffered.saturating_sub(c.buffered());
            let last_words = if matches!(reason, CloseReason::Local | CloseReason::Shutdown) {
                // Last words (a refusal, a goodbye) go out if the socket takes them now.
                c.last_words()
            } else {
                Vec::new()
            };
            self.actions.push_back(Action::Close {
                conn: id,
                last_words,
            });
            match &reason {
                CloseReason::PeerClosed | CloseReason::Local | CloseReason::Shutdown => {
                    debug!("{id} ({}): {reason}", c.peer_addr)
                }
                _ => info!("{id} ({}): closing: {reason}", c.peer_addr),
            }
            // The service never heard of an accepted connection that did not finish its TLS
            // handshake; a dial it asked for, it hears of either way.
            if c.phase == Phase::Open || c.outgoing {
                service.on_close(self, id, &reason);
            }
        }
    }
}

impl Endpoint {
    /// Queues on `conn` the frame that `push` puts in its write queue (returning its
    /// length), with the queue limits of [`Net::send`].
    fn queue_frame(&mut self, conn: ConnId, push: impl FnOnce(&mut WriteQueue) -> usize) {
        if self.closing_all {
            return;
        }
        let max = self.config.max_write_queue;
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.queued() == 0 {
            c.last_write_progress = now;
        }
        self.total_queued += push(&mut c.queue);
        let queued = c.queued();
        if queued > max {
            self.closing.push((conn, CloseReason::SlowPeer { queued }));
        } else {
            self.dirty.push(conn);
        }
        if self.total_queued > self.config.max_total_write_queue {
            self.shed_slowest();
        }
    }
}

impl Net for Endpoint {
    fn send(&mut self, conn: ConnId, frame: Frame) {
        self.queue_frame(conn, |queue| {
            let n = frame.len();
            queue.push(frame);
            n
        });
    }

    fn send_encoded(&mut self, conn: ConnId, room: usize, encode: &mut dyn FnMut(&mut Vec<u8>)) {
        self.queue_frame(conn, |queue| queue.push_encoded(room, encode));
    }

    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        if self.closing_all {
            return Err(NetError::Closed);
        }
        if self.conns.len() >= self.config.max_connections {
            return Err(NetError::TooManyConnections {
                max: self.config.max_connections,
            });
        }
        let id = self.new_id();
        let max_frame = self.config.limits.max_frame_len;
        self.conns
            .insert(id, Conn::new(addr, true, max_frame, self.now));
        self.actions.push_back(Action::Dial { conn: id, addr });
        debug!("{id}: dialling {addr}");
        Ok(id)
    }

    fn close(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.closing.push((conn, CloseReason::Local));
        }
    }

    fn queued(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.queued())
    }

    fn total_queued(&self) -> usize {
        self.total_queued
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn unix_time(&self) -> u64 {
        self.unix_time.unwrap_or(self.wall)
    }

    fn shutdown(&mut self) {
        self.stop_requested = true;
    }
}

/// Whole seconds since the Unix epoch on the system's clock.
fn system_unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A [`Write`] over a `Vec<u8>` that takes at most `room` bytes and then refuses with
/// `WouldBlock`, like a full socket buffer: for drivers that move bytes in memory.
#[derive(Debug, Default)]
pub struct Pipe {
    /// Bytes written and not yet taken by the other end.
    pub bytes: Vec<u8>,
    /// Most bytes `bytes` may hold.
    pub room: usize,
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.room.saturating_sub(self.bytes.len()));
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.bytes
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
