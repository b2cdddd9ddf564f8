//! A socket that becomes readable while the service wants no input is read once the service
//! wants input again, even though no new readiness is reported for it (the loop's events
//! are edge triggered: the bytes that arrived during the pause announce themselves once).

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use py2p_net::{CloseReason, ConnId, ConnInfo, EventLoop, Net, NetConfig, Service};
use py2p_testkit::frame::frame;

/// Reports every frame; the frame `pause` turns input off until the test turns it on.
struct Pausing {
    wants: Arc<AtomicBool>,
    frames: mpsc::Sender<Vec<u8>>,
}

impl Service for Pausing {
    /// Answered at once: the loop has handled the events reported before it.
    type Command = mpsc::Sender<()>;
    fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, body: &[u8]) {
        if body == b"pause" {
            self.wants.store(false, Ordering::SeqCst);
        }
        let _ = self.frames.send(body.to_vec());
    }
    fn on_close(&mut self, _net: &mut dyn Net, _conn: ConnId, _why: &CloseReason) {}
    fn on_command(&mut self, _net: &mut dyn Net, done: mpsc::Sender<()>) {
        let _ = done.send(());
    }
    fn on_tick(&mut self, _net: &mut dyn Net) {}
    fn wants_input(&self) -> bool {
        self.wants.load(Ordering::SeqCst)
    }
}

#[test]
fn bytes_that_arrive_during_a_pause_are_read_when_input_resumes() {
    const WITHIN: Duration = Duration::from_secs(30);
    let wants = Arc::new(AtomicBool::new(true));
    let (frames_tx, frames) = mpsc::channel();
    let service = Pausing {
        wants: wants.clone(),
        frames: frames_tx,
    };
    let handle = EventLoop::spawn(
        "127.0.0.1:0".parse().unwrap(),
        NetConfig::default(),
        service,
    )
    .unwrap();
    let mut peer = TcpStream::connect(handle.local_addr()).unwrap();
    // The last frame of its read pauses the service: nothing waits in the endpoint.
    peer.write_all(&frame(b"pause")).unwrap();
    assert_eq!(frames.recv_timeout(WITHIN).unwrap(), b"pause");
    // Arrives while paused; the loop sees the socket readable and must not forget it.
    peer.write_all(&frame(b"after")).unwrap();
    let (done_tx, done) = mpsc::channel();
    handle.send(done_tx).unwrap();
    done.recv_timeout(WITHIN).unwrap();
    assert!(
        frames.try_recv().is_err(),
        "a frame was handed over while the service wanted no input"
    );
    wants.store(true, Ordering::SeqCst);
    handle.resume();
    assert_eq!(
        frames
            .recv_timeout(WITHIN)
            .expect("the frame sent during the pause arrives"),
        b"after"
    );
    handle.shutdown();
}
