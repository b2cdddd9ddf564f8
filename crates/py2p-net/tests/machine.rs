//! The sans-I/O [`Endpoint`] driven two ways, with the same service and the same scenario:
//! through in-memory byte pipes (as a simulator drives it) and through the mio daemon over
//! real loopback sockets. Both must reach the same outcome, because it is the same code.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use py2p_net::{
    Action, CloseReason, ConnId, ConnInfo, Endpoint, EventLoop, Frame, Net, NetConfig, Pipe,
    Service,
};
use py2p_testkit::frame::frame;

/// Echoes frames; connections that have not sent a frame yet are "unidentified" and the
/// oldest of them makes room at the cap; a command sends a frame to every open connection.
struct Gate {
    order: Vec<ConnId>,
    identified: Vec<ConnId>,
    closed: mpsc::Sender<(ConnId, CloseReason)>,
}

impl Gate {
    fn new() -> (Gate, mpsc::Receiver<(ConnId, CloseReason)>) {
        let (tx, rx) = mpsc::channel();
        (
            Gate {
                order: Vec::new(),
                identified: Vec::new(),
                closed: tx,
            },
            rx,
        )
    }
}

impl Service for Gate {
    type Command = Cmd;
    fn on_open(&mut self, _net: &mut dyn Net, conn: ConnId, _info: &ConnInfo) {
        self.order.push(conn);
    }
    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        self.identified.push(conn);
        net.send(conn, frame(body).into());
    }
    fn on_close(&mut self, _net: &mut dyn Net, conn: ConnId, why: &CloseReason) {
        self.order.retain(|c| *c != conn);
        let _ = self.closed.send((conn, why.clone()));
    }
    fn on_command(&mut self, net: &mut dyn Net, cmd: Cmd) {
        let body = match cmd {
            Cmd::Broadcast(body) => body,
            Cmd::Open(tx) => {
                let _ = tx.send(self.order.clone());
                return;
            }
        };
        let shared = Frame::shared(frame(&body));
        for c in self.order.clone() {
            net.send(c, shared.clone());
        }
    }
    fn on_tick(&mut self, _net: &mut dyn Net) {}
    fn make_room(&mut self) -> Option<ConnId> {
        self.order
            .iter()
            .find(|c| !self.identified.contains(c))
            .copied()
    }
}

/// What the test asks of the service.
enum Cmd {
    /// Send this body to every open connection.
    Broadcast(Vec<u8>),
    /// Report the open connections, oldest first.
    Open(mpsc::Sender<Vec<ConnId>>),
}

/// A driver that moves bytes through memory: every connection's output goes into a pipe
/// of limited room, which the test's "peer" empties (or not).
struct Memory {
    endpoint: Endpoint,
    service: Gate,
    out: HashMap<ConnId, Pipe>,
    closed_sockets: Vec<ConnId>,
    room: usize,
}

impl Memory {
    fn new(config: NetConfig, room: usize) -> (Memory, mpsc::Receiver<(ConnId, CloseReason)>) {
        let (service, rx) = Gate::new();
        let m = Memory {
            endpoint: Endpoint::new(config, Instant::now(), 2),
            service,
            out: HashMap::new(),
            closed_sockets: Vec::new(),
            room,
        };
        (m, rx)
    }

    fn accept(&mut self, port: u16) -> Option<ConnId> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let id = self.endpoint.accept(addr, &mut self.service)?;
        self.out.insert(
            id,
            Pipe {
                bytes: Vec::new(),
                room: self.room,
            },
        );
        self.turn();
        Some(id)
    }

    fn send(&mut self, id: ConnId, bytes: &[u8]) {
        self.endpoint.received(id, bytes, &mut self.service);
        self.turn();
    }

    fn command(&mut self, body: Vec<u8>) {
        self.endpoint
            .command(Cmd::Broadcast(body), &mut self.service);
        self.endpoint.commands_done(&mut self.service);
        self.turn();
    }

    /// Carries out actions and writes what the pipes take.
    fn turn(&mut self) {
        loop {
            while let Some(action) = self.endpoint.poll_action() {
                if let Action::Close { conn, .. } = action {
                    self.out.remove(&conn);
                    self.closed_sockets.push(conn);
                }
            }
            let dirty = self.endpoint.take_dirty(&mut self.service);
            if dirty.is_empty() {
                return;
            }
            for id in dirty {
                if let Some(pipe) = self.out.get_mut(&id) {
                    self.endpoint.write_to(id, pipe, &mut self.service);
                }
            }
        }
    }

    fn read(&mut self, id: ConnId) -> Vec<u8> {
        let bytes = self.out.get_mut(&id).map(|p| std::mem::take(&mut p.bytes));
        if self.endpoint.has_output(id) {
            if let Some(pipe) = self.out.get_mut(&id) {
                self.endpoint.write_to(id, pipe, &mut self.service);
            }
            self.turn();
        }
        bytes.unwrap_or_default()
    }
}

fn cap_config() -> NetConfig {
    NetConfig {
        max_connections: 4,
        ..NetConfig::default()
    }
}

/// Outcome of the cap scenario: the reasons the half-open connections closed (in order of
/// their opening) and whether the honest peer was echoed.
#[derive(Debug, PartialEq)]
struct CapOutcome {
    closed: Vec<(usize, CloseReason)>,
    honest_echoed: bool,
}

#[test]
fn cap_with_half_open_connections_then_an_honest_peer_in_memory() {
    let (mut m, closed) = Memory::new(cap_config(), 1 << 20);
    let silent: Vec<ConnId> = (0..4).map(|i| m.accept(40000 + i).unwrap()).collect();
    let honest = m.accept(41000).expect("room is made for the newcomer");
    m.send(honest, &frame(b"hello"));
    let echoed = m.read(honest) == frame(b"hello");
    let reasons: Vec<(usize, CloseReason)> = closed
        .try_iter()
        .map(|(c, r)| (silent.iter().position(|s| *s == c).unwrap(), r))
        .collect();
    let outcome = CapOutcome {
        closed: reasons,
        honest_echoed: echoed,
    };
    assert_eq!(outcome, cap_outcome_expected());
    assert_eq!(m.closed_sockets, vec![silent[0]]);
}

#[test]
fn cap_with_half_open_connections_then_an_honest_peer_over_sockets() {
    let (service, closed) = Gate::new();
    let handle = EventLoop::spawn("127.0.0.1:0".parse().unwrap(), cap_config(), service).unwrap();
    let addr = handle.local_addr();
    let mut silent = Vec::new();
    let mut first = None;
    for i in 0..4 {
        silent.push(TcpStream::connect(addr).unwrap());
        // One at a time, so that "oldest" means the first.
        let open = wait_open(&handle, i + 1);
        first = first.or(open.first().copied());
    }
    let mut honest = TcpStream::connect(addr).unwrap();
    honest.write_all(&frame(b"hello")).unwrap();
    honest
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut echo = vec![0u8; frame(b"hello").len()];
    honest.read_exact(&mut echo).unwrap();
    let (victim, reason) = closed.recv_timeout(Duration::from_secs(30)).unwrap();
    // The first silent socket is the one closed.
    silent[0]
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(silent[0].read(&mut byte), Ok(0) | Err(_)));
    let outcome = CapOutcome {
        closed: vec![(0, reason)],
        honest_echoed: echo == frame(b"hello"),
    };
    assert_eq!(outcome, cap_outcome_expected());
    assert_eq!(victim, first.unwrap(), "the first connection accepted");
    assert!(closed.try_recv().is_err(), "nobody else was closed");
    handle.shutdown();
}

fn cap_outcome_expected() -> CapOutcome {
    CapOutcome {
        closed: vec![(0, CloseReason::Evicted)],
        honest_echoed: true,
    }
}

/// Waits until the service holds `n` open connections, and returns them oldest first.
fn wait_open(handle: &py2p_net::LoopHandle<Cmd>, n: usize) -> Vec<ConnId> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (tx, rx) = mpsc::channel();
        handle.send(Cmd::Open(tx)).unwrap();
        let open = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if open.len() == n {
            return open;
        }
        assert!(Instant::now() < deadline, "{n} connections never opened");
        std::thread::yield_now();
    }
}

fn budget_config() -> NetConfig {
    NetConfig {
        max_write_queue: 1 << 20,
        ..NetConfig::default()
    }
}

#[test]
fn a_peer_that_stops_reading_is_dropped_when_its_budget_bites_in_memory() {
    let (mut m, closed) = Memory::new(budget_config(), 256 << 10);
    let reader = m.accept(40000).unwrap();
    let stalled = m.accept(40001).unwrap();
    let body = vec![9u8; 64 << 10];
    let mut got = 0;
    let mut reason = None;
    for _ in 0..100 {
        m.command(body.clone());
        got += m.read(reader).len();
        if let Ok((c, r)) = closed.try_recv() {
            assert_eq!(c, stalled);
            reason = Some(r);
            break;
        }
    }
    assert!(
        matches!(reason, Some(CloseReason::SlowPeer { .. })),
        "{reason:?}"
    );
    assert!(got > 256 << 10, "the reading peer kept being served: {got}");
    m.command(b"after".to_vec());
    let tail = m.read(reader);
    assert!(tail.ends_with(&frame(b"after")));
    assert!(closed.try_recv().is_err(), "nobody else was closed");
}

#[test]
fn a_peer_that_stops_reading_is_dropped_when_its_budget_bites_over_sockets() {
    let (service, closed) = Gate::new();
    let handle =
        EventLoop::spawn("127.0.0.1:0".parse().unwrap(), budget_config(), service).unwrap();
    let addr = handle.local_addr();
    let reader = TcpStream::connect(addr).unwrap();
    let _stalled = TcpStream::connect(addr).unwrap();
    let (tx, progress) = mpsc::channel();
    let mut clone = reader.try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let mut tail = Vec::new();
        while let Ok(n) = clone.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            let _ = tx.send(total);
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
            if tail.ends_with(&frame(b"after")) {
                break;
            }
        }
    });
    let body = vec![9u8; 64 << 10];
    let mut reason = None;
    let mut sent = 0;
    // One frame at a time, each read by the reading peer before the next, so that only the
    // stalled peer's queue grows (past the kernel's buffers, a few MiB, then past 1 MiB).
    for _ in 0..2000 {
        handle.send(Cmd::Broadcast(body.clone())).unwrap();
        sent += 4 + body.len();
        let mut got = 0;
        while got < sent {
            got = progress.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        if let Ok((_, r)) = closed.try_recv() {
            reason = Some(r);
            break;
        }
    }
    assert!(
        matches!(reason, Some(CloseReason::SlowPeer { .. })),
        "{reason:?}"
    );
    handle.send(Cmd::Broadcast(b"after".to_vec())).unwrap();
    drain.join().unwrap();
    assert!(sent > 1 << 20, "the reading peer kept being served: {sent}");
    assert!(closed.try_recv().is_err(), "nobody else was closed");
    reader.shutdown(std::net::Shutdown::Both).ok();
    handle.shutdown();
}

/// Tells every other open connection of each loss (as a mesh node asks its remaining peers
/// for theirs when one goes), and dials a replacement.
struct Gossip {
    open: Vec<ConnId>,
    dials_refused: usize,
}

impl Service for Gossip {
    type Command = ();
    fn on_open(&mut self, _net: &mut dyn Net, conn: ConnId, _info: &ConnInfo) {
        self.open.push(conn);
    }
    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, _body: &[u8]) {}
    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, _why: &CloseReason) {
        self.open.retain(|c| *c != conn);
        let news = Frame::shared(frame(b"a peer left"));
        for c in self.open.clone() {
            net.send(c, news.clone());
        }
        if net.dial(([127, 0, 0, 1], 9).into()).is_err() {
            self.dials_refused += 1;
        }
    }
    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
    fn on_tick(&mut self, _net: &mut dyn Net) {}
}

#[test]
fn a_shutdown_queues_nothing_the_service_sends_while_it_hears_of_the_closes() {
    let mut endpoint = Endpoint::new(NetConfig::default(), Instant::now(), 2);
    let mut service = Gossip {
        open: Vec::new(),
        dials_refused: 0,
    };
    let n = 200;
    for port in 0..n {
        let addr: SocketAddr = ([127, 0, 0, 1], 1000 + port).into();
        endpoint.accept(addr, &mut service).unwrap();
    }
    // Queued before the shutdown: goes out as last words.
    let first = service.open[0];
    endpoint.command((), &mut service);
    endpoint.commands_done(&mut service);
    let hello = frame(b"queued before");
    Net::send(&mut endpoint, first, hello.clone().into());
    while endpoint.poll_action().is_some() {}
    endpoint.close_all(&mut service);
    let mut closes = 0;
    let mut last_words = 0;
    while let Some(action) = endpoint.poll_action() {
        match action {
            Action::Close {
                conn,
                last_words: w,
            } => {
                closes += 1;
                if conn == first {
                    assert_eq!(w, hello);
                } else {
                    last_words += w.len();
                }
            }
            Action::Dial { .. } => panic!("a dial during the shutdown"),
        }
    }
    assert_eq!(closes, n as usize);
    // Without the rule each connection would carry a frame per earlier close: n²/2 frames.
    assert_eq!(last_words, 0, "frames queued during the shutdown");
    assert_eq!(service.dials_refused, n as usize);
    assert!(endpoint.is_empty());
}
