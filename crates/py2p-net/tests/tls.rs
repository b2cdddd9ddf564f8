//! The TLS layer of the [`Endpoint`], driven in memory: two endpoints complete a handshake
//! and exchange frames (each frame its own record); half-open TLS connections make room at
//! the cap for an honest one; garbage of any shape closes one connection without a panic.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Instant;

use proptest::prelude::*;
use py2p_net::{
    Action, CloseReason, ConnId, ConnInfo, Endpoint, Net, NetConfig, Pipe, Service, TlsConfig,
};
use py2p_testkit::frame::frame;

/// What the service heard (the fields show in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Event {
    Open(ConnId, Option<&'static str>),
    Frame(ConnId, Vec<u8>),
    Closed(ConnId, CloseReason),
}

struct Recorder(mpsc::Sender<Event>);

enum Cmd {
    Dial(SocketAddr),
    Send(ConnId, Vec<u8>),
}

impl Service for Recorder {
    type Command = Cmd;
    fn on_open(&mut self, _net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
        let _ = self.0.send(Event::Open(conn, info.tls_version));
    }
    fn on_frame(&mut self, _net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        let _ = self.0.send(Event::Frame(conn, body.to_vec()));
    }
    fn on_close(&mut self, _net: &mut dyn Net, conn: ConnId, why: &CloseReason) {
        let _ = self.0.send(Event::Closed(conn, why.clone()));
    }
    fn on_command(&mut self, net: &mut dyn Net, cmd: Cmd) {
        match cmd {
            Cmd::Dial(addr) => {
                net.dial(addr).unwrap();
            }
            Cmd::Send(conn, body) => {
                net.send(conn, frame(&body).into());
            }
        }
    }
    fn on_tick(&mut self, _net: &mut dyn Net) {}
}

fn ssl_config() -> NetConfig {
    NetConfig {
        tls: Some(TlsConfig::self_signed().unwrap()),
        ..NetConfig::default()
    }
}

struct Side {
    ep: Endpoint,
    svc: Recorder,
    events: mpsc::Receiver<Event>,
}

fn side(config: NetConfig) -> Side {
    let (tx, events) = mpsc::channel();
    Side {
        ep: Endpoint::new(config, Instant::now(), 2),
        svc: Recorder(tx),
        events,
    }
}

/// Moves bytes from `from`'s connection `a` to `to`'s connection `b`; returns the count.
fn carry(from: &mut Side, a: ConnId, to: &mut Side, b: ConnId) -> usize {
    let mut pipe = Pipe {
        bytes: Vec::new(),
        room: 1 << 20,
    };
    from.ep.write_to(a, &mut pipe, &mut from.svc);
    let n = pipe.bytes.len();
    if n > 0 {
        to.ep.received(b, &pipe.bytes, &mut to.svc);
    }
    n
}

/// A client endpoint dialled a server endpoint; both connections, after the handshake.
fn connected_pair() -> (Side, ConnId, Side, ConnId) {
    let (mut server, mut client) = (side(ssl_config()), side(ssl_config()));
    let server_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let client_addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    client.ep.command(Cmd::Dial(server_addr), &mut client.svc);
    client.ep.commands_done(&mut client.svc);
    let Some(Action::Dial { conn: c, addr }) = client.ep.poll_action() else {
        panic!("no dial")
    };
    assert_eq!(addr, server_addr);
    let s = server.ep.accept(client_addr, &mut server.svc).unwrap();
    client.ep.connected(c, server_addr, &mut client.svc);
    while carry(&mut client, c, &mut server, s) + carry(&mut server, s, &mut client, c) > 0 {}
    (server, s, client, c)
}

#[test]
fn two_endpoints_handshake_and_exchange_frames_in_memory() {
    let (mut server, s, mut client, c) = connected_pair();
    assert!(matches!(server.events.try_recv(), Ok(Event::Open(id, Some("TLSv1.3"))) if id == s));
    assert!(matches!(client.events.try_recv(), Ok(Event::Open(id, Some("TLSv1.3"))) if id == c));
    for i in 0..3u8 {
        client
            .ep
            .command(Cmd::Send(c, vec![i; 100]), &mut client.svc);
    }
    client.ep.commands_done(&mut client.svc);
    server
        .ep
        .command(Cmd::Send(s, b"back".to_vec()), &mut server.svc);
    server.ep.commands_done(&mut server.svc);
    while carry(&mut client, c, &mut server, s) + carry(&mut server, s, &mut client, c) > 0 {}
    let got: Vec<Vec<u8>> = server
        .events
        .try_iter()
        .filter_map(|e| match e {
            Event::Frame(_, b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![vec![0u8; 100], vec![1u8; 100], vec![2u8; 100]]);
    assert!(matches!(client.events.try_recv(), Ok(Event::Frame(_, b)) if b == b"back"));
}

#[test]
fn each_frame_ends_a_tls_record() {
    let (server, s, mut client, c) = connected_pair();
    drop((server, s));
    for _ in 0..3 {
        client
            .ep
            .command(Cmd::Send(c, vec![7u8; 50]), &mut client.svc);
    }
    client.ep.commands_done(&mut client.svc);
    let mut pipe = Pipe {
        bytes: Vec::new(),
        room: 1 << 20,
    };
    client.ep.write_to(c, &mut pipe, &mut client.svc);
    // Three frames of 54 bytes: three application-data records, never one of 162.
    let mut records = 0;
    let mut rest = &pipe.bytes[..];
    while rest.len() >= 5 {
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        assert_eq!(rest[0], 0x17);
        assert!(
            len < 162,
            "a record holds more than one frame ({len} bytes)"
        );
        records += 1;
        rest = &rest[5 + len..];
    }
    assert_eq!(records, 3);
}

#[test]
fn half_open_tls_connections_make_room_for_an_honest_one() {
    let config = NetConfig {
        max_connections: 3,
        ..ssl_config()
    };
    let mut server = side(config);
    let half: Vec<ConnId> = (0..3)
        .map(|i| {
            let addr: SocketAddr = ([127, 0, 0, 1], 6000 + i).into();
            let id = server.ep.accept(addr, &mut server.svc).unwrap();
            server
                .ep
                .received(id, &[0x16, 0x03, 0x01, 0x02], &mut server.svc);
            id
        })
        .collect();
    let honest = server
        .ep
        .accept("127.0.0.1:7000".parse().unwrap(), &mut server.svc);
    assert!(honest.is_some(), "room was made");
    let closed: Vec<ConnId> = std::iter::from_fn(|| server.ep.poll_action())
        .filter_map(|a| match a {
            Action::Close { conn, .. } => Some(conn),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        vec![half[0]],
        "the oldest half-open connection made room"
    );
    // The service never heard of a connection that did not finish its TLS handshake.
    assert!(server.events.try_recv().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Garbage in any pieces: no panic; the connection either still waits for a handshake
    /// or is closed, never handed to the service.
    #[test]
    fn garbage_never_opens_a_connection(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..3000), 1..6)) {
        let mut server = side(ssl_config());
        let id = server.ep.accept("127.0.0.1:4000".parse().unwrap(), &mut server.svc).unwrap();
        for chunk in &chunks {
            server.ep.received(id, chunk, &mut server.svc);
        }
        prop_assert!(server.events.try_recv().is_err());
        prop_assert!(server.ep.len() <= 1);
    }
}
