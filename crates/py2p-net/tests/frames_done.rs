//! `Service::on_frames_done` ends every delivery run: a service that keeps frames back to
//! handle them together (the mesh node checks several broadcasts' ids at once) holds none
//! after any call of the endpoint that hands it frames, whatever the reads' cuts, the
//! pauses and the peer's close; frames are still handed once, in order.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::Instant;

use py2p_net::{CloseReason, ConnId, ConnInfo, Endpoint, Net, NetConfig, Service};
use py2p_testkit::frame::frame;

/// Keeps the frames it is handed until the run's end; pauses after every `pause_every`.
struct Batcher {
    kept: Vec<Vec<u8>>,
    done: Vec<Vec<u8>>,
    runs: usize,
    pause_every: usize,
    handed: usize,
    paused: bool,
    closed: Vec<CloseReason>,
}

impl Batcher {
    fn new(pause_every: usize) -> Batcher {
        Batcher {
            kept: Vec::new(),
            done: Vec::new(),
            runs: 0,
            pause_every,
            handed: 0,
            paused: false,
            closed: Vec::new(),
        }
    }
}

impl Service for Batcher {
    type Command = ();
    fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, body: &[u8]) {
        assert!(!self.paused, "a frame while paused");
        self.kept.push(body.to_vec());
        self.handed += 1;
        if self.handed.is_multiple_of(self.pause_every) {
            self.paused = true;
        }
    }
    fn on_frames_done(&mut self, _net: &mut dyn Net) {
        if !self.kept.is_empty() {
            self.runs += 1;
        }
        self.done.append(&mut self.kept);
    }
    fn on_close(&mut self, _net: &mut dyn Net, _conn: ConnId, why: &CloseReason) {
        assert!(self.kept.is_empty(), "frames kept at the close");
        self.closed.push(why.clone());
    }
    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
    fn on_tick(&mut self, _net: &mut dyn Net) {}
    fn wants_input(&self) -> bool {
        !self.paused
    }
}

fn open(service: &mut Batcher) -> (Endpoint, ConnId) {
    let mut config = NetConfig::default();
    config.limits.max_frame_len = 100;
    let mut endpoint = Endpoint::new(config, Instant::now(), 1);
    let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
    let id = endpoint.accept(addr, service).expect("accepted");
    (endpoint, id)
}

#[test]
fn no_frame_is_kept_past_a_delivery_run() {
    let bodies: Vec<Vec<u8>> = (0..300u32)
        .map(|i| (0..(i * 7 % 101)).map(|b| (b ^ i) as u8).collect())
        .collect();
    let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
    for (cut, pause_every) in [(1, 3), (57, 7), (211, 5), (5000, 400), (5000, 13)] {
        let mut service = Batcher::new(pause_every);
        let (mut endpoint, id) = open(&mut service);
        let mut at = 0;
        while at < stream.len() || endpoint.total_buffered() > 0 {
            if service.paused {
                service.paused = false;
                let reading = endpoint.resume(id, &mut service);
                assert!(service.kept.is_empty(), "cut {cut}: kept after resume");
                if !reading {
                    continue;
                }
            }
            if !endpoint.may_read(id, &service) {
                continue;
            }
            let end = (at + cut).min(stream.len());
            endpoint.received(id, &stream[at..end], &mut service);
            assert!(service.kept.is_empty(), "cut {cut}: kept after a read");
            at = end;
        }
        assert_eq!(service.done, bodies, "cut {cut}, pause every {pause_every}");
        assert!(service.runs > 0);
        assert!(service.closed.is_empty());
    }
}

#[test]
fn the_frames_before_a_peers_close_are_done_before_it() {
    let mut service = Batcher::new(2);
    let (mut endpoint, id) = open(&mut service);
    let read: Vec<u8> = [&b"one"[..], b"two", b"three"]
        .iter()
        .flat_map(|b| frame(b))
        .collect();
    endpoint.received(id, &read, &mut service);
    assert_eq!(service.done, [b"one".to_vec(), b"two".to_vec()]);
    // Paused with "three" waiting; the peer closes; input resumes at its close.
    service.paused = false;
    endpoint.peer_closed(id, &mut service);
    assert!(service.kept.is_empty());
    assert_eq!(service.done.len(), 3);
    assert_eq!(service.closed, [CloseReason::PeerClosed]);
}
