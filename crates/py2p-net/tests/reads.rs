//! Frames taken straight out of each read (no copy into the decoder): whatever the reads'
//! cuts and the service's pauses, the service gets every frame once, in order, never while
//! it is paused; input held for a paused service stays bounded by one read; a refused header
//! in the middle of a read closes the connection after the frames before it.

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
use py2p_wire::WireError;

/// Records frames; stops wanting input after every `pause_every` frames until resumed.
struct Recorder {
    frames: Vec<Vec<u8>>,
    pause_every: usize,
    paused: bool,
    taken_while_paused: usize,
    closed: Vec<CloseReason>,
}

impl Service for Recorder {
    type Command = ();
    fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, body: &[u8]) {
        if self.paused {
            self.taken_while_paused += 1;
        }
        self.frames.push(body.to_vec());
        if self.frames.len().is_multiple_of(self.pause_every) {
            self.paused = true;
        }
    }
    fn on_close(&mut self, _net: &mut dyn Net, _conn: ConnId, why: &CloseReason) {
        self.closed.push(why.clone());
    }
    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
    fn on_tick(&mut self, _net: &mut dyn Net) {}
    fn wants_input(&self) -> bool {
        !self.paused
    }
}

fn open(service: &mut Recorder) -> (Endpoint, ConnId) {
    let mut config = NetConfig::default();
    config.limits.max_frame_len = 100;
    let mut endpoint = Endpoint::new(config, Instant::now(), 1);
    let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
    let id = endpoint.accept(addr, service).expect("accepted");
    (endpoint, id)
}

#[test]
fn every_frame_once_in_order_whatever_the_cuts_and_pauses() {
    let bodies: Vec<Vec<u8>> = (0..400u32)
        .map(|i| (0..(i * 7 % 101)).map(|b| (b ^ i) as u8).collect())
        .collect();
    let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
    for (cut, pause_every) in [(1, 3), (3, 1), (57, 7), (211, 5), (1000, 11), (5000, 400)] {
        let mut service = Recorder {
            frames: Vec::new(),
            pause_every,
            paused: false,
            taken_while_paused: 0,
            closed: Vec::new(),
        };
        let (mut endpoint, id) = open(&mut service);
        let mut at = 0;
        while at < stream.len() || endpoint.total_buffered() > 0 {
            // As the event loop does: resume a paused connection before reading it again.
            if service.paused {
                service.paused = false;
                if !endpoint.resume(id, &mut service) {
                    continue;
                }
            }
            if !endpoint.may_read(id, &service) {
                continue;
            }
            let end = (at + cut).min(stream.len());
            endpoint.received(id, &stream[at..end], &mut service);
            at = end;
            assert!(
                endpoint.total_buffered() <= cut + 104,
                "cut {cut}: {} bytes held",
                endpoint.total_buffered()
            );
        }
        assert_eq!(service.taken_while_paused, 0, "cut {cut}");
        assert_eq!(
            service.frames, bodies,
            "cut {cut}, pause every {pause_every}"
        );
        assert!(service.closed.is_empty());
    }
}

#[test]
fn a_refused_header_mid_read_closes_after_the_frames_before_it() {
    let mut service = Recorder {
        frames: Vec::new(),
        pause_every: usize::MAX,
        paused: false,
        taken_while_paused: 0,
        closed: Vec::new(),
    };
    let (mut endpoint, id) = open(&mut service);
    // A frame split across two reads, a whole one, then a header of 101 bytes (one over).
    let mut read = frame(b"first");
    let second = read.split_off(3);
    endpoint.received(id, &read, &mut service);
    let mut read = second;
    read.extend(frame(b"second"));
    read.extend(101u32.to_be_bytes());
    read.extend(frame(b"never"));
    endpoint.received(id, &read, &mut service);
    assert_eq!(service.frames, [b"first".to_vec(), b"second".to_vec()]);
    assert_eq!(
        service.closed,
        [CloseReason::Wire(WireError::FrameTooLarge {
            len: 101,
            max: 100
        })]
    );
    assert_eq!(endpoint.total_buffered(), 0);
    assert!(endpoint.is_empty());
}
