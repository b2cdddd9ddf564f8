//! A mesh node and network for the tables' unit tests: one routed peer, a clock the test
//! moves, and a record of what the tables sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use py2p_net::{ConnId, Frame, Net, NetError};
use py2p_wire::Flag;

use super::MeshLink;

/// A network whose clock the test sets; it sends nothing and refuses every dial (noting
/// the address).
pub(crate) struct FakeNet {
    start: Instant,
    /// Time since the start.
    pub elapsed: Duration,
    /// The addresses dialled, oldest first.
    pub dialled: Vec<SocketAddr>,
}

impl FakeNet {
    pub fn new() -> FakeNet {
        FakeNet {
            start: Instant::now(),
            elapsed: Duration::ZERO,
            dialled: Vec::new(),
        }
    }
}

impl Net for FakeNet {
    fn send(&mut self, _conn: ConnId, _frame: Frame) {}
    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        self.dialled.push(addr);
        Err(NetError::Closed)
    }
    fn close(&mut self, _conn: ConnId) {}
    fn queued(&self, _conn: ConnId) -> usize {
        0
    }
    fn total_queued(&self) -> usize {
        0
    }
    fn now(&self) -> Instant {
        self.start + self.elapsed
    }
    fn unix_time(&self) -> u64 {
        1_700_000_000 + self.elapsed.as_secs()
    }
    fn shutdown(&mut self) {}
}

/// A network that keeps every frame sent, with the connection it went to (as [`FakeNet`],
/// whose clock and dials it uses).
pub(crate) struct RecordingNet {
    pub clock: FakeNet,
    /// Frames sent, oldest first.
    pub sent: Vec<(ConnId, Vec<u8>)>,
}

impl RecordingNet {
    pub fn new() -> RecordingNet {
        RecordingNet {
            clock: FakeNet::new(),
            sent: Vec::new(),
        }
    }

    /// The connections frames were sent to, in order.
    pub fn sent_to(&self) -> Vec<u64> {
        self.sent.iter().map(|(c, _)| c.to_raw()).collect()
    }
}

impl Net for RecordingNet {
    fn send(&mut self, conn: ConnId, frame: Frame) {
        self.sent.push((conn, frame.to_vec()));
    }
    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        self.clock.dial(addr)
    }
    fn close(&mut self, _conn: ConnId) {}
    fn queued(&self, _conn: ConnId) -> usize {
        0
    }
    fn total_queued(&self) -> usize {
        0
    }
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn unix_time(&self) -> u64 {
        self.clock.unix_time()
    }
    fn shutdown(&mut self) {}
}

/// A node `id` with one routed peer, `peer` on `conn`; what the tables send is kept.
pub(crate) struct FakeLink {
    pub id: String,
    pub peer: String,
    pub conn: ConnId,
    /// Whispers sent: (connection, payload).
    pub sent: Vec<(ConnId, Vec<Vec<u8>>)>,
    /// Broadcasts sent.
    pub broadcasts: Vec<Vec<Vec<u8>>>,
}

impl FakeLink {
    pub fn new(id: &str, peer: &str) -> FakeLink {
        FakeLink {
            id: id.to_owned(),
            peer: peer.to_owned(),
            conn: ConnId::from_raw(1),
            sent: Vec::new(),
            broadcasts: Vec::new(),
        }
    }
}

impl MeshLink for FakeLink {
    fn id(&self) -> &str {
        &self.id
    }
    fn routed_conn(&self, id: &str) -> Option<ConnId> {
        (id == self.peer).then_some(self.conn)
    }
    fn peer_id_of(&self, conn: ConnId) -> Option<String> {
        (conn == self.conn).then(|| self.peer.clone())
    }
    fn peer_label_of(&self, conn: ConnId) -> String {
        format!("peer {} ({conn:?})", self.peer)
    }
    fn routed_ids(&self) -> Vec<String> {
        vec![self.peer.clone()]
    }
    fn send_to(&mut self, _net: &mut dyn Net, conn: ConnId, _t: Flag, payload: Vec<Vec<u8>>) {
        self.sent.push((conn, payload));
    }
    fn broadcast(&mut self, _net: &mut dyn Net, payload: Vec<Vec<u8>>) {
        self.broadcasts.push(payload);
    }
}
