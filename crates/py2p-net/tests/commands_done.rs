//! A service may gather consecutive commands and do them together in
//! `Service::on_commands_done`: the event loop calls it at the end of every drain of its
//! command channel, so a command never waits for more commands to come.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use py2p_net::{ConnId, ConnInfo, Endpoint, EventLoop, Net, NetConfig, Pipe, Service};
use py2p_testkit::frame::frame;

/// Sends each command's bytes as a frame to the connection it has, but only when told
/// that the run of commands ended (a frame of `b"open"` on each new connection).
#[derive(Default)]
struct Gatherer {
    conn: Option<ConnId>,
    gathered: Vec<Vec<u8>>,
    runs: usize,
}

impl Service for Gatherer {
    type Command = Vec<u8>;
    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, _info: &ConnInfo) {
        self.conn = Some(conn);
        net.send(conn, frame(b"open").into());
    }
    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, _body: &[u8]) {}
    fn on_close(&mut self, _: &mut dyn Net, _: ConnId, _: &py2p_net::CloseReason) {}
    fn on_command(&mut self, _net: &mut dyn Net, cmd: Vec<u8>) {
        self.gathered.push(cmd);
    }
    fn on_commands_done(&mut self, net: &mut dyn Net) {
        self.runs += 1;
        let Some(conn) = self.conn else { return };
        for body in self.gathered.drain(..) {
            net.send(conn, frame(&body).into());
        }
    }
    fn on_tick(&mut self, _net: &mut dyn Net) {}
}

#[test]
fn the_endpoint_hands_the_end_of_a_run_of_commands_to_the_service() {
    let mut service = Gatherer::default();
    let mut endpoint = Endpoint::new(NetConfig::default(), Instant::now(), 2);
    let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
    let conn = endpoint.accept(addr, &mut service).unwrap();
    endpoint.command(b"one".to_vec(), &mut service);
    endpoint.command(b"two".to_vec(), &mut service);
    assert_eq!(service.gathered.len(), 2, "gathered until the run ends");
    endpoint.commands_done(&mut service);
    assert_eq!((service.gathered.len(), service.runs), (0, 1));
    let mut pipe = Pipe {
        bytes: Vec::new(),
        room: 1 << 20,
    };
    let _ = endpoint.take_dirty(&mut service);
    endpoint.write_to(conn, &mut pipe, &mut service);
    let mut want = frame(b"open");
    want.extend_from_slice(&frame(b"one"));
    want.extend_from_slice(&frame(b"two"));
    assert_eq!(pipe.bytes, want);
}

/// Reads one frame's body.
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

#[test]
fn the_event_loop_ends_each_drain_of_commands_with_the_hook() {
    let handle = EventLoop::spawn(
        "127.0.0.1:0".parse().unwrap(),
        NetConfig::default(),
        Gatherer::default(),
    )
    .unwrap();
    let mut s = TcpStream::connect(handle.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(read_frame(&mut s), b"open");
    // One command alone: it goes out although no other command follows.
    handle.send(b"alone".to_vec()).unwrap();
    assert_eq!(read_frame(&mut s), b"alone");
    // A burst: every command, in order, whatever the drains it was split into.
    for i in 0..1000u32 {
        handle.send(i.to_be_bytes().to_vec()).unwrap();
    }
    for i in 0..1000u32 {
        assert_eq!(read_frame(&mut s), i.to_be_bytes());
    }
    handle.shutdown();
}
