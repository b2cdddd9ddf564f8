//! How the simulator runs nodes: the work of the real event loop (reading, splitting frames,
//! closing, timers), done on virtual time.

use std::net::SocketAddr;
use std::time::Duration;

use py2p_net::{CloseReason, ConnId, ConnInfo};

use super::link::{End, Segment};
use super::net::NodeNet;
use super::network::node_addr;
use super::node::{Delivery, Driven, Maxima, SeenEvent};
use super::queue::Event;
use super::trace::{describe_frame, describe_message};
use super::Sim;

impl Sim {
    pub(super) fn dispatch(&mut self, at: Duration, event: Event) {
        self.network.now = self.network.now.max(at);
        match event {
            Event::Wake(conn) => self.wake(conn),
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

    /// Runs `f` on node `node`'s logic with the network it acts through; `None` when the
    /// node is dead.
    fn with_node<R>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut dyn Driven, &mut NodeNet<'_>) -> R,
    ) -> Option<R> {
        let slot = self.slots.get_mut(node)?;
        if !slot.alive {
            return None;
        }
        let mut net = NodeNet {
            network: &mut self.network,
            node,
        };
        Some(f(slot.actor.driven(), &mut net))
    }

    fn can_read(&self, node: usize) -> bool {
        self.slots
            .get(node)
            .is_some_and(|s| s.alive && s.reading && s.actor.driven_ref().input())
    }

    /// What the real loop does after every callback: closes what was asked closed (telling
    /// the node, which may close more); here also the user takes what arrived, and reading
    /// resumes where it was paused and is possible again. (The loop also reports its
    /// backlog after every turn; the simulator does at ticks, as nothing here waits on it.)
    pub(super) fn after_turn(&mut self, node: usize) {
        self.finish_closes(node);
        self.collect_user(node);
        if !self.network.read_blocked.is_empty() && self.can_read(node) {
            let blocked: Vec<ConnId> = self
                .network
                .read_blocked
                .iter()
                .copied()
                .filter(|c| self.network.ends.get(c).is_some_and(|e| e.node == node))
                .collect();
            for c in blocked {
                self.network.read_blocked.remove(&c);
                self.network.queue.push(self.network.now, Event::Wake(c));
            }
        }
    }

    fn finish_closes(&mut self, node: usize) {
        while let Some((conn, reason)) = self.network.closing.pop() {
            let Some(end) = self.network.ends.get(&conn) else {
                continue;
            };
            // Only the node whose turn it is closes connections, and only its own.
            debug_assert_eq!(end.node, node, "{conn} closed out of its node's turn");
            if end.node != node {
                continue;
            }
            self.network.remove_end(conn, None);
            let what = format!("closed: {reason}");
            self.network
                .trace
                .record(self.network.now, &what, node, conn.0, &[]);
            self.with_node(node, |d, net| d.close(net, conn, &reason));
        }
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
        let Some(mesh) = slot.actor.mesh() else {
            return;
        };
        let shared = mesh.shared.clone();
        // A sync node's user takes its table's changes as they come (they are not kept).
        if let Some(events) = mesh.sync_events.as_ref().filter(|_| user_reading) {
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

    /// Segments may have arrived at `conn`: hand them to its node, in order, while it reads.
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
            if is_data && !self.can_read(node) {
                self.network.read_blocked.insert(conn);
                return;
            }
            let buffer = self.network.config.socket_buffer;
            let Some(end) = self.network.ends.get_mut(&conn) else {
                return;
            };
            let Some((_, segment)) = end.inbound.segments.pop_front() else {
                return;
            };
            end.inbound.cut_since = None;
            end.inbound.bytes -= segment.len();
            end.inbound.stalled_since = (end.inbound.bytes > buffer).then_some(now);
            match segment {
                Segment::Open => self.opened(conn),
                Segment::Data(bytes) => self.read(conn, &bytes),
                Segment::Eof => {
                    self.network.closing.push((conn, CloseReason::PeerClosed));
                    self.after_turn(node);
                }
                Segment::Reset(why) | Segment::Abort(why) => {
                    if let Some(e) = self.network.ends.get_mut(&conn) {
                        e.finished = true;
                    }
                    self.network
                        .closing
                        .push((conn, CloseReason::Io(why.to_owned())));
                    self.after_turn(node);
                }
                Segment::Refused => {
                    self.network.closing.push((
                        conn,
                        CloseReason::ConnectFailed("connection refused".into()),
                    ));
                    self.after_turn(node);
                }
            }
        }
    }

    /// A dial completed.
    fn opened(&mut self, conn: ConnId) {
        let Some(end) = self.network.ends.get_mut(&conn) else {
            return;
        };
        end.connecting = false;
        end.last_read = self.network.now;
        let node = end.node;
        let info = ConnInfo {
            peer_addr: end.remote_addr,
            outgoing: true,
            tls_version: None,
        };
        let unsent = std::mem::take(&mut end.unsent);
        self.network
            .trace
            .record(self.network.now, "connected", node, conn.0, &[]);
        for frame in unsent {
            self.network.send(node, conn, frame);
        }
        self.with_node(node, |d, net| d.open(net, conn, &info));
        self.after_turn(node);
    }

    /// Bytes arrived: through the frame decoder, then one `on_frame` per whole frame, as
    /// the real loop reads.
    fn read(&mut self, conn: ConnId, bytes: &[u8]) {
        let now = self.network.now;
        let Some(end) = self.network.ends.get_mut(&conn) else {
            return;
        };
        let node = end.node;
        end.last_read = now;
        end.decoder.push(bytes);
        let mut frames = Vec::new();
        let mut error = None;
        loop {
            match end.decoder.next_frame() {
                Ok(Some(body)) => frames.push(body),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        for body in frames {
            self.network
                .trace
                .record_with(now, "frame", node, conn.0, &body, || describe_frame(&body));
            self.with_node(node, |d, net| d.frame(net, conn, body));
        }
        if let Some(e) = error {
            self.network.closing.push((conn, CloseReason::Wire(e)));
        }
        self.after_turn(node);
    }

    /// A dial reaches its address: the node there accepts, unless nobody listens, a
    /// partition drops the SYN (sent again after 1, 2, 4... s, as TCP does, until the
    /// dialler's connect timeout), or the node holds all the connections it may.
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
        let max = self
            .network
            .node_net
            .get(to)
            .map_or(usize::MAX, |c| c.max_connections);
        if self.network.node_ends.get(to).map_or(0, |s| s.len()) >= max {
            // Accepted by the kernel, closed at once by the loop.
            self.network.push_segment(dialer, Segment::Open);
            self.network.push_segment(dialer, Segment::Eof);
            return;
        }
        let acceptor = self.network.new_conn();
        let port = 32_768 + (dialer.0 % 28_000) as u16;
        let remote = SocketAddr::new(node_addr(from).ip(), port);
        let max_frame = self.network.max_frame(to);
        let mut end = End::new(
            to,
            from,
            false,
            remote,
            latency,
            self.network.now,
            max_frame,
        );
        end.peer = Some(dialer);
        self.network.ends.insert(acceptor, end);
        self.network.node_ends[to].insert(acceptor);
        if let Some(d) = self.network.ends.get_mut(&dialer) {
            d.peer = Some(acceptor);
            d.peer_node = to;
        }
        self.network.push_segment(dialer, Segment::Open);
        self.network
            .trace
            .record(self.network.now, "accepted", to, acceptor.0, &[]);
        let info = ConnInfo {
            peer_addr: remote,
            outgoing: false,
            tls_version: None,
        };
        self.with_node(to, |d, net| d.open(net, acceptor, &info));
        self.after_turn(to);
    }

    /// A node's timers, as the real loop runs them every `tick_interval`: dial, partial
    /// frame and write-stall timeouts, TCP giving up across a partition, then `on_tick`.
    fn tick(&mut self, node: usize, incarnation: u32) {
        let Some(slot) = self.slots.get(node) else {
            return;
        };
        if !slot.alive || slot.incarnation != incarnation {
            return;
        }
        let now = self.network.now;
        let net_config = self.network.node_net.get(node).cloned().unwrap_or_default();
        let tcp_timeout = self.network.config.tcp_timeout;
        let conns: Vec<ConnId> = self
            .network
            .node_ends
            .get(node)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for conn in conns {
            let Some(end) = self.network.ends.get(&conn) else {
                continue;
            };
            if end.connecting {
                if now.saturating_sub(end.opened) > net_config.partial_frame_timeout {
                    self.network
                        .closing
                        .push((conn, CloseReason::ConnectFailed("timed out".into())));
                }
                continue;
            }
            if end.decoder.is_mid_frame()
                && now.saturating_sub(end.last_read) > net_config.partial_frame_timeout
            {
                self.network
                    .closing
                    .push((conn, CloseReason::PartialFrameTimeout));
                continue;
            }
            let Some(peer) = end.peer.and_then(|p| self.network.ends.get(&p)) else {
                continue;
            };
            let stalled = peer
                .inbound
                .stalled_since
                .is_some_and(|t| now.saturating_sub(t) > net_config.write_stall_timeout);
            let gave_up = peer
                .inbound
                .cut_since
                .is_some_and(|t| now.saturating_sub(t) > tcp_timeout);
            if gave_up {
                self.network.reset(conn, "connection timed out");
            } else if stalled {
                self.network.closing.push((conn, CloseReason::WriteStalled));
            }
        }
        self.after_turn(node);
        self.network.trace.record(now, "tick", node, 0, &[]);
        self.with_node(node, |d, net| d.tick(net));
        self.after_turn(node);
        let queued = self.queued_bytes(node);
        self.with_node(node, |d, _| d.backlog(queued));
        self.sample(node);
        let next = now + self.tick_interval(node);
        self.network
            .queue
            .push(next, Event::Tick { node, incarnation });
    }

    /// Notes the node's memory figures.
    fn sample(&mut self, node: usize) {
        let conn_queue = self
            .network
            .node_ends
            .get(node)
            .into_iter()
            .flatten()
            .map(|&c| self.network.queued(c))
            .max()
            .unwrap_or(0);
        let mut m = Maxima {
            queued_bytes: self.queued_bytes(node),
            conn_queue,
            connections: self.connections(node),
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
