//! Simulated TCP, the kernel's part only: a connection is two ends, and each end reads from
//! a pipe that keeps the order of what its peer wrote. Frames, queues and timers are the
//! node's [`Endpoint`](py2p_net::Endpoint)'s.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use py2p_net::ConnId;

/// What travels in a pipe, in order.
#[derive(Debug)]
pub(super) enum Segment {
    /// The dial completed (the SYN-ACK): the dialling end opens.
    Open,
    /// Bytes of the stream.
    Data(Vec<u8>),
    /// The peer closed its end (FIN, after everything it wrote).
    Eof,
    /// The connection was reset by the peer's kernel; the text becomes the close reason.
    /// Like data, it waits for a partition to heal.
    Reset(&'static str),
    /// An error the local kernel reports at once (a middlebox reset the connection): it
    /// crosses no network, so no partition holds it.
    Abort(&'static str),
    /// Nobody listens at the dialled address.
    Refused,
}

impl Segment {
    pub fn len(&self) -> usize {
        match self {
            Segment::Data(d) => d.len(),
            _ => 0,
        }
    }
}

/// The bytes on their way to one end: in flight, or arrived and not yet read.
#[derive(Debug, Default)]
pub(super) struct Pipe {
    /// Segments with the virtual time they arrive, in stream order.
    pub segments: VecDeque<(Duration, Segment)>,
    /// Data bytes in `segments`.
    pub bytes: usize,
    /// Arrival time of the last segment pushed: later ones never arrive before it.
    pub last_at: Duration,
    /// Since when the segment at the front waits for a partition to heal.
    pub cut_since: Option<Duration>,
}

impl Pipe {
    /// Queues a segment to arrive at `at`, or after the previous one if that is later.
    pub fn push(&mut self, at: Duration, segment: Segment) -> Duration {
        let at = at.max(self.last_at);
        self.last_at = at;
        self.bytes += segment.len();
        self.segments.push_back((at, segment));
        at
    }

    /// Drops everything in flight (a reset).
    pub fn clear(&mut self) {
        self.segments.clear();
        self.bytes = 0;
        self.last_at = Duration::ZERO;
        self.cut_since = None;
    }
}

/// One end of a connection, as the node that holds it sees it.
#[derive(Debug)]
pub(super) struct End {
    /// The node holding this end.
    pub node: usize,
    /// The node at the other end (or being dialled).
    pub peer_node: usize,
    /// The other end, once the dialled node accepted.
    pub peer: Option<ConnId>,
    /// A dial not yet completed.
    pub connecting: bool,
    /// The address of the other end, as `ConnInfo::peer_addr` gives it.
    pub remote_addr: SocketAddr,
    /// What this end reads.
    pub inbound: Pipe,
    /// One-way latency of the link.
    pub latency: Duration,
    /// A FIN or reset has been sent to the peer already.
    pub finished: bool,
}

impl End {
    pub fn new(
        node: usize,
        peer_node: usize,
        outgoing: bool,
        remote_addr: SocketAddr,
        latency: Duration,
    ) -> End {
        End {
            node,
            peer_node,
            peer: None,
            connecting: outgoing,
            remote_addr,
            inbound: Pipe::default(),
            latency,
            finished: false,
        }
    }
}
