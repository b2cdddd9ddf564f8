//! The event loop's limits on what peers send, with real sockets on loopback.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use py2p_net::{CloseReason, ConnId, ConnInfo, EventLoop, Net, NetConfig, Service};
use py2p_testkit::frame::frame;

/// Echoes every frame, and reports why connections close.
struct Echo {
    closed: mpsc::Sender<String>,
}

impl Service for Echo {
    type Command = ();
    fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        net.send(conn, frame(body).into());
    }
    fn on_close(&mut self, _net: &mut dyn Net, _conn: ConnId, why: &CloseReason) {
        let _ = self.closed.send(why.to_string());
    }
    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
    fn on_tick(&mut self, _net: &mut dyn Net) {}
}

/// Sends a header announcing `len` bytes and the first `part` of them.
fn begin_frame(stream: &mut TcpStream, len: usize, part: usize) {
    stream.write_all(&(len as u32).to_be_bytes()).unwrap();
    stream.write_all(&vec![7u8; part]).unwrap();
}

#[test]
fn unfinished_frames_of_all_peers_together_are_bounded() {
    let (tx, closed) = mpsc::channel();
    let config = NetConfig {
        max_total_read_buffer: 1 << 20,
        ..NetConfig::default()
    };
    let handle =
        EventLoop::spawn("127.0.0.1:0".parse().unwrap(), config, Echo { closed: tx }).unwrap();
    let addr = handle.local_addr();
    // Two peers begin 1 MiB frames: 300 KiB from the first, 900 KiB from the second, 1.2 MiB
    // together. The sum passes 1 MiB only once the second holds over 700 KiB, the most
    // whatever order the loop reads in: it goes, the first stays.
    let mut first = TcpStream::connect(addr).unwrap();
    begin_frame(&mut first, 1 << 20, 300 << 10);
    let mut second = TcpStream::connect(addr).unwrap();
    begin_frame(&mut second, 1 << 20, 900 << 10);
    let why = closed.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(why.contains("unfinished input"), "{why}");
    second
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(second.read(&mut byte), Ok(0) | Err(_)),
        "the second peer is disconnected"
    );
    // The first finishes its frame and is served.
    first
        .write_all(&vec![7u8; (1 << 20) - (300 << 10)])
        .unwrap();
    let mut echo = vec![0u8; 4 + (1 << 20)];
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    first.read_exact(&mut echo).unwrap();
    assert_eq!(&echo[..4], &(1u32 << 20).to_be_bytes());
    assert!(closed.try_recv().is_err(), "nobody else was closed");
    handle.shutdown();
}
