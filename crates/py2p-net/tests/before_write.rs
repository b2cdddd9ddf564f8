//! A service may hold frames back while it handles a turn's input and send them in
//! `Service::before_write`: the endpoint asks for them before the driver writes, so they
//! leave in the same turn, through the endpoint and through the event loop alike.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use py2p_net::{ConnId, ConnInfo, Endpoint, EventLoop, Net, NetConfig, Pipe, Service};
use py2p_testkit::frame::frame;

/// Echoes every frame, but only when the endpoint asks for what it held.
#[derive(Default)]
struct Holder {
    held: Vec<(ConnId, Vec<u8>)>,
}

impl Service for Holder {
    type Command = ();
    fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
    fn on_frame(&mut self, _net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        self.held.push((conn, frame(body)));
    }
    fn on_close(&mut self, _: &mut dyn Net, _: ConnId, _: &py2p_net::CloseReason) {}
    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
    fn on_tick(&mut self, _net: &mut dyn Net) {}
    fn before_write(&mut self, net: &mut dyn Net) {
        for (conn, f) in self.held.drain(..) {
            net.send(conn, f.into());
        }
    }
}

#[test]
fn frames_held_for_the_turn_are_sent_before_the_endpoint_hands_out_its_dirty_connections() {
    let mut service = Holder::default();
    let mut endpoint = Endpoint::new(NetConfig::default(), Instant::now(), 2);
    let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
    let conn = endpoint.accept(addr, &mut service).unwrap();
    let _ = endpoint.take_dirty(&mut service);
    let mut input = frame(b"one");
    input.extend_from_slice(&frame(b"two"));
    endpoint.received(conn, &input, &mut service);
    assert_eq!(service.held.len(), 2, "held while the input is handled");
    assert_eq!(endpoint.take_dirty(&mut service), vec![conn]);
    let mut pipe = Pipe {
        bytes: Vec::new(),
        room: 1 << 20,
    };
    endpoint.write_to(conn, &mut pipe, &mut service);
    assert_eq!(pipe.bytes, input, "both frames, in order, in one write");
}

#[test]
fn the_event_loop_sends_what_the_service_held_for_the_turn() {
    let handle = EventLoop::spawn(
        "127.0.0.1:0".parse().unwrap(),
        NetConfig::default(),
        Holder::default(),
    )
    .unwrap();
    let mut s = TcpStream::connect(handle.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut input = Vec::new();
    for i in 0..100u32 {
        input.extend_from_slice(&frame(&i.to_be_bytes()));
    }
    s.write_all(&input).unwrap();
    let mut echo = vec![0u8; input.len()];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(echo, input);
    handle.shutdown();
}
