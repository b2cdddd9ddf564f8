//! How the simulator drives its nodes: each node's [`Endpoint`] (the one a `MeshSocket`'s
//! event loop drives over sockets) gets the bytes that arrive, the outcomes of dials and the
//! virtual time, and the simulator carries out what it asks (dial, write, close) on the
//! simulated wires. Every connection rule (framing, write-queue and read-buffer budgets,
//! eviction at `max_connections`, the connect, partial-frame and write-stall timers,
//! pausing input) is the endpoint's; only the kernel's part of TCP is simulated here.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use py2p_net::{Action, ConnId, Endpoint, Net, NetConfig, Service};

use super::link::{End, Segment};
use super::net::Wire;
use super::network::{node_addr, Network};
use super::node::{Actor, Delivery, Maxima, SeenEvent};
use super::queue::Event;
use super::trace::describe_message;
use super::Sim;

impl Sim {
    pub(super) fn dispatch(&mut self, at: Duration, event: Event) {
        self.network.now = self.network.now.max(at);
        match event {
            Event::Wake(conn) => self.wake(conn),
            Event::Writable(conn) => self.writable(conn),
            Event::Syn {
                dialer,
                addr,
                attempt,
            } => self.syn(dialer, addr, attempt),
            Event::Tick { node, incarnation } => self.tick(node, incarnation),
        }
        while let Some(node) = self.network.shutdowns.pop() {
            self.kill(node);
        }
    }

    /// A new endpoint for life `incarnation` of node `index`, its connection ids apart from
    /// every other life's, its first timer at a random phase (scheduled here).
    pub(super) fn new_endpoint(
        &mut self,
        index: usize,
        incarnation: u32,
        config: &NetConfig,
    ) -> Endpoint {
        let tick = config.tick_interval.max(Duration::from_millis(10));
        let phase = self.network.rng.duration(Duration::ZERO, tick);
        let first = self.network.now + phase;
        self.network.queue.push(
            first,
            Event::Tick {
                node: index,
                incarnation,
            },
        );
        // The endpoint's first timer falls due one tick after the time it is made.
        let made = self.instant(first);
        let made = made.checked_sub(tick).unwrap_or(made);
        let first_id = ((index as u64 + 1) << 32) | (u64::from(incarnation & 0xfff) << 20);
        Endpoint::new(config.clone(), made, first_id)
    }

    /// The `Instant` of a virtual time.
    fn instant(&self, at: Duration) -> Instant {
        self.network.base + at
    }

    /// Node `node`'s endpoint and service, set to the current time, and the network; `None`
    /// when the node is dead.
    pub(super) fn parts(
        &mut self,
        node: usize,
    ) -> Option<(&mut Endpoint, &mut Actor, &mut Network)> {
        let slot = self.slots.get_mut(node).filter(|s| s.alive)?;
        slot.endpoint.set_now(self.network.base + self.network.now);
        slot.endpoint.set_unix_time(self.network.unix_time());
        Some((&mut slot.endpoint, &mut slot.actor, &mut self.network))
    }

    /// Runs `f` on node `node`'s endpoint and service, then finishes the turn.
    fn turn<R>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut Endpoint, &mut Actor, &mut Network) -> R,
    ) -> Option<R> {
        let (endpoint, actor, network) = self.parts(node)?;
        let r = f(endpoint, actor, network);
        self.after_turn(node);
        Some(r)
    }

    fn can_read(&self, node: usize, conn: ConnId) -> bool {
        self.slots
            .get(node)
            .is_some_and(|s| s.alive && s.reading && s.endpoint.may_read(conn, &s.actor))
    }

    /// What the event loop does after every input: carries out the endpoint's actions and
    /// writes; here also the user takes what arrived, and reading resumes where input was
    /// paused and is wanted again.
    pub(super) fn after_turn(&mut self, node: usize) {
        loop {
            self.drive(node);
            self.collect_user(node);
            if !self.resume_paused(node) {
                break;
            }
        }
        if let Some((endpoint, actor, network)) = self.parts(node) {
            actor.on_backlog(endpoint.total_queued());
            if endpoint.stop_requested() {
                // A node that stops its own loop: the simulator kills it after this event.
                network.shutdowns.push(node);
            }
        }
    }

    /// Carries out the endpoint's dials and closes and writes what it queued, until it asks
    /// for nothing more.
    fn drive(&mut self, node: usize) {
        loop {
            let Some((endpoint, actor, network)) = self.parts(node) else {
                return;
            };
            let mut busy = false;
            while let Some(action) = endpoint.poll_action() {
                busy = true;
                match action {
                    Action::Dial { conn, addr } => network.dial(node, conn, addr),
                    Action::Close { conn, last_words } => {
                        if !last_words.is_empty() {
                            // One best-effort write, as the loop makes before closing.
                            let _ = Wire {
                                network: &mut *network,
                                conn,
                            }
                            .write(&last_words);
                        }
                        network
                            .trace
                            .record(network.now, "closed", node, conn.to_raw(), &[]);
                        network.remove_end(conn, None);
                    }
                }
            }
            for conn in endpoint.take_dirty(actor) {
                busy = true;
                let mut wire = Wire {
                    network: &mut *network,
                    conn,
                };
                endpoint.write_to(conn, &mut wire, actor);
            }
            if !busy {
                return;
            }
        }
    }

    /// Hands paused input to a node that wants it again, and wakes the ends whose reading
    /// stopped. Returns whether frames were handed over (the turn goes on).
    fn resume_paused(&mut self, node: usize) -> bool {
        let Some(slot) = self.slots.get(node) else {
            return false;
        };
        if !slot.alive || !slot.reading || !slot.actor.wants_input() {
            return false;
        }
        let paused = slot.endpoint.paused();
        let blocked: Vec<ConnId> = self
            .network
            .read_blocked
            .iter()
            .copied()
            .filter(|c| self.network.ends.get(c).is_some_and(|e| e.node == node))
            .collect();
        let mut delivered = false;
        for conn in paused {
            delivered = true;
            if let Some((endpoint, actor, _)) = self.parts(node) {
                endpoint.resume(conn, actor);
            }
        }
        for conn in blocked {
            if self.can_read(node, conn) {
                self.network.read_blocked.remove(&conn);
                self.network.queue.push(self.network.now, Event::Wake(conn));
            }
        }
        delivered
    }

    /// The simulated user takes messages and events as they come (unless told not to).
    fn collect_user(&mut self, node: usize) {
        let now = self.network.now;
        let unix_time = self.network.unix_time();
        let Some(slot) = self.slots.get_mut(node) else {
            return;
        };
        let incarnation = slot.incarnation;
        let user_reading = slot.user_reading;
        let Some(mesh) = slot.actor.mesh_mut() else {
            return;
        };
        // What the node queued for its user in this event (the loop hands it over at the
        // end of its turn, at the latest).
        mesh.core.flush_inbox();
        let shared = mesh.shared.clone();
        // A sync node's user takes its table's changes as they come (they are not kept).
        if let Some(events) = mesh.sync_view.as_ref().filter(|_| user_reading) {
            let events = &events.events;
            while let (Some(_), _) = events.pop(Some(Duration::ZERO)) {}
        }
        for message in mesh.take_delivered() {
            self.network.trace.record_with(
                now,
                "delivered",
                node,
                0,
                message.id().as_bytes(),
                || describe_message(message.wire()),
            );
            slot.deliveries.push(Delivery {
                at: now,
                unix_time,
                incarnation,
                message,
            });
        }
        while let (Some(event), _) = shared.events.pop(Some(Duration::ZERO)) {
            slot.events.push(SeenEvent {
                at: now,
                incarnation,
                event,
            });
        }
        if !user_reading {
            return;
        }
        while let (Some(message), _) = shared.inbox.pop(Some(Duration::ZERO)) {
            self.network
                .trace
                .record(now, "user receives", node, 0, message.id().as_bytes());
            slot.received.push(Delivery {
                at: now,
                unix_time,
                incarnation,
                message,
            });
        }
    }

    /// Segments may have arrived at `conn`: hand them to its node's endpoint, in order, while
    /// it reads.
    fn wake(&mut self, conn: ConnId) {
        loop {
            let now = self.network.now;
            let Some(end) = self.network.ends.get(&conn) else {
                return;
            };
            let node = end.node;
            let Some((at, segment)) = end.inbound.segments.front() else {
                return;
            };
            if *at > now {
                return;
            }
            let local = matches!(segment, Segment::Abort(_) | Segment::Refused);
            let is_data = matches!(segment, Segment::Data(_));
            if !local && self.network.is_cut(node, end.peer_node) {
                if let Some(e) = self.network.ends.get_mut(&conn) {
                    e.inbound.cut_since.get_or_insert(now);
                }
                return;
            }
            if is_data && !self.can_read(node, conn) {
                self.network.read_blocked.insert(conn);
                return;
            }
            let Some(end) = self.network.ends.get_mut(&conn) else {
                return;
            };
            let Some((_, segment)) = end.inbound.segments.pop_front() else {
                return;
            };
            end.inbound.cut_since = None;
            end.inbound.bytes -= segment.len();
            let (peer, remote) = (end.peer, end.remote_addr);
            match segment {
                Segment::Open => {
                    end.connecting = false;
                    self.network
                        .trace
                        .record(now, "connected", node, conn.to_raw(), &[]);
                    self.turn(node, |ep, actor, _| ep.connected(conn, remote, actor));
                }
                Segment::Data(bytes) => {
                    self.network
                        .trace
                        .record(now, "read", node, conn.to_raw(), &bytes);
                    self.turn(node, |ep, actor, _| ep.received(conn, &bytes, actor));
                    // The kernel's buffer has room again: the writer may go on.
                    if let Some(peer) = peer {
                        self.network.queue.push(now, Event::Writable(peer));
                    }
                }
                Segment::Eof => {
                    self.turn(node, |ep, actor, _| ep.peer_closed(conn, actor));
                }
                Segment::Reset(why) | Segment::Abort(why) => {
                    end.finished = true;
                    self.turn(node, |ep, actor, _| {
                        ep.io_error(conn, why.to_owned(), actor)
                    });
                }
                Segment::Refused => {
                    self.turn(node, |ep, actor, _| {
                        ep.connect_failed(conn, "connection refused".into(), actor)
                    });
                }
            }
        }
    }

    /// The peer of `conn` read: its node writes what its endpoint holds for it.
    fn writable(&mut self, conn: ConnId) {
        let Some(end) = self.network.ends.get(&conn) else {
            return;
        };
        let node = end.node;
        let has_output = self
            .slots
            .get(node)
            .is_some_and(|s| s.alive && s.endpoint.has_output(conn));
        if has_output {
            self.turn(node, |ep, actor, network| {
                ep.write_to(conn, &mut Wire { network, conn }, actor)
            });
        }
    }

    /// A dial reaches its address: the node there accepts (its endpoint decides whether
    /// and whom it evicts at `max_connections`), unless nobody listens or a partition
    /// drops the SYN (sent again after 1, 2, 4... s, as TCP does, until the dialler's
    /// endpoint gives up).
    fn syn(&mut self, dialer: ConnId, addr: SocketAddr, attempt: u32) {
        let Some(dial) = self.network.ends.get(&dialer) else {
            return;
        };
        if !dial.connecting || dial.peer.is_some() {
            return;
        }
        let from = dial.node;
        let latency = dial.latency;
        let Some(&to) = self.network.listeners.get(&addr) else {
            self.network.push_segment(dialer, Segment::Refused);
            return;
        };
        if self.network.is_cut(from, to) {
            let backoff = Duration::from_secs(1 << attempt.min(5));
            self.network.queue.push(
                self.network.now + backoff,
                Event::Syn {
                    dialer,
                    addr,
                    attempt: attempt + 1,
                },
            );
            return;
        }
        let port = 32_768 + (dialer.to_raw() % 28_000) as u16;
        let remote = SocketAddr::new(node_addr(from).ip(), port);
        let Some((endpoint, actor, network)) = self.parts(to) else {
            network_refuse(&mut self.network, dialer);
            return;
        };
        let now = network.now;
        match endpoint.accept(remote, actor) {
            None => {
                // Accepted by the kernel, closed at once by the loop.
                network.push_segment(dialer, Segment::Open);
                network.push_segment(dialer, Segment::Eof);
                network.trace.record(now, "refused", to, 0, &[]);
            }
            Some(acceptor) => {
                let mut end = End::new(to, from, false, remote, latency);
                end.peer = Some(dialer);
                network.ends.insert(acceptor, end);
                if let Some(set) = network.node_ends.get_mut(to) {
                    set.insert(acceptor);
                }
                if let Some(d) = network.ends.get_mut(&dialer) {
                    d.peer = Some(acceptor);
                    d.peer_node = to;
                }
                network.push_segment(dialer, Segment::Open);
                network
                    .trace
                    .record(now, "accepted", to, acceptor.to_raw(), &[]);
            }
        }
        self.after_turn(to);
    }

    /// A node's timers, when its endpoint asked for them: first the kernel's (TCP giving up
    /// on bytes held by a partition), then the endpoint's, which runs `on_tick`.
    fn tick(&mut self, node: usize, incarnation: u32) {
        let Some(slot) = self.slots.get(node) else {
            return;
        };
        if !slot.alive || slot.incarnation != incarnation {
            return;
        }
        let now = self.network.now;
        let tcp_timeout = self.network.config.tcp_timeout;
        let gave_up: Vec<ConnId> = self
            .network
            .node_ends
            .get(node)
            .into_iter()
            .flatten()
            .copied()
            .filter(|c| {
                let peer = self.network.ends.get(c).and_then(|e| e.peer);
                peer.and_then(|p| self.network.ends.get(&p))
                    .and_then(|p| p.inbound.cut_since)
                    .is_some_and(|t| now.saturating_sub(t) > tcp_timeout)
            })
            .collect();
        self.network.trace.record(now, "tick", node, 0, &[]);
        let next = self.turn(node, |ep, actor, network| {
            for conn in gave_up {
                network.reset(conn, "connection timed out");
                ep.io_error(conn, "connection timed out".into(), actor);
            }
            ep.handle_timeout(actor);
            ep.poll_timeout()
        });
        self.sample(node);
        let Some(next) = next else {
            return;
        };
        let at = next
            .saturating_duration_since(self.network.base)
            .max(now + Duration::from_millis(1));
        self.network
            .queue
            .push(at, Event::Tick { node, incarnation });
    }

    /// Notes the node's memory figures.
    fn sample(&mut self, node: usize) {
        let Some(slot) = self.slots.get(node).filter(|s| s.alive) else {
            return;
        };
        let conn_queue = self
            .network
            .node_ends
            .get(node)
            .into_iter()
            .flatten()
            .map(|&c| Net::queued(&slot.endpoint, c))
            .max()
            .unwrap_or(0);
        let mut m = Maxima {
            queued_bytes: slot.endpoint.total_queued(),
            conn_queue,
            connections: slot.endpoint.len(),
            ..Maxima::default()
        };
        if let Some(st) = self.status(node) {
            m.seen_ids = st.seen_ids;
            m.pending_requests = st.pending_requests;
            m.inbox = st.inbox;
        }
        if let Some(slot) = self.slots.get_mut(node) {
            slot.maxima.update(m);
        }
    }
}

/// The dialled node died in this very instant: its kernel refuses.
fn network_refuse(network: &mut Network, dialer: ConnId) {
    network.push_segment(dialer, Segment::Refused);
}
