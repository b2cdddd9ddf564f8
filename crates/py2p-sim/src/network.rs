//! The simulated wires: connections, latencies, partitions and the kernel's part of TCP
//! (buffers, retransmission, resets). Every node's endpoint writes to it through a
//! [`Wire`](super::net::Wire); no connection rule of the event loop lives here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use py2p_net::ConnId;

use super::link::{End, Segment};
use super::queue::{Event, EventQueue};
use super::trace::Trace;
use super::SimConfig;
use py2p_testkit::Rng;

/// The port every simulated node listens on.
pub(super) const PORT: u16 = 4444;

/// The address of node `index`: 10.0.0.1 for node 0, 10.0.0.2 for node 1, and so on.
pub(super) fn node_addr(index: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0A00_0000u32.wrapping_add(index as u32 + 1));
    SocketAddr::new(ip.into(), PORT)
}

/// Everything between the nodes, and the clock.
pub(super) struct Network {
    /// Virtual time since the start of the run.
    pub now: Duration,
    /// The `Instant` that virtual time 0 maps to.
    pub base: Instant,
    /// Unix time at virtual time 0.
    pub epoch: u64,
    pub queue: EventQueue,
    pub ends: BTreeMap<ConnId, End>,
    /// The ends each node holds.
    pub node_ends: Vec<BTreeSet<ConnId>>,
    /// Live nodes by address.
    pub listeners: BTreeMap<SocketAddr, usize>,
    latencies: BTreeMap<(usize, usize), Duration>,
    /// One side of the partition, when there is one (everyone else is the other side).
    pub cut: Option<BTreeSet<usize>>,
    pub rng: Rng,
    pub trace: Trace,
    /// Ends whose reading stopped with data waiting (their node paused input, or froze).
    pub read_blocked: BTreeSet<ConnId>,
    /// Nodes that asked their loop to stop.
    pub shutdowns: Vec<usize>,
    /// Virtual times of faults (kills, partitions, heals, broken links, stalls).
    pub faults: Vec<Duration>,
    pub config: SimConfig,
}

impl Network {
    pub fn new(seed: u64, config: SimConfig) -> Network {
        Network {
            now: Duration::ZERO,
            base: Instant::now(),
            epoch: config.epoch,
            queue: EventQueue::default(),
            ends: BTreeMap::new(),
            node_ends: Vec::new(),
            listeners: BTreeMap::new(),
            latencies: BTreeMap::new(),
            cut: None,
            rng: Rng::new(seed),
            trace: Trace::new(config.trace_lines),
            read_blocked: BTreeSet::new(),
            shutdowns: Vec::new(),
            faults: Vec::new(),
            config,
        }
    }

    pub fn unix_time(&self) -> u64 {
        self.epoch + self.now.as_secs()
    }

    /// The one-way latency between two nodes, drawn the first time it is needed.
    pub fn latency(&mut self, a: usize, b: usize) -> Duration {
        let key = (a.min(b), a.max(b));
        if let Some(&d) = self.latencies.get(&key) {
            return d;
        }
        let (lo, hi) = self.config.latency;
        let d = self.rng.duration(lo, hi);
        self.latencies.insert(key, d);
        d
    }

    /// Sets the latency between two nodes from now on (connections already open keep theirs).
    pub fn set_latency(&mut self, a: usize, b: usize, d: Duration) {
        self.latencies.insert((a.min(b), a.max(b)), d);
    }

    /// Whether a partition separates two nodes.
    pub fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cut
            .as_ref()
            .is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    fn jitter(&mut self) -> Duration {
        let j = self.config.jitter;
        self.rng.duration(Duration::ZERO, j)
    }

    /// Queues a segment for the end `to`, arriving after the link's latency (and jitter),
    /// never before what was queued earlier.
    pub fn push_segment(&mut self, to: ConnId, segment: Segment) {
        let jitter = self.jitter();
        let now = self.now;
        let Some(end) = self.ends.get_mut(&to) else {
            return;
        };
        let at = end.inbound.push(now + end.latency + jitter, segment);
        self.queue.push(at, Event::Wake(to));
    }

    /// A node's endpoint dials `addr` for its connection `conn`: the SYN leaves now.
    pub fn dial(&mut self, node: usize, conn: ConnId, addr: SocketAddr) {
        let target = self.listeners.get(&addr).copied();
        // A dial to nobody still needs a latency: use the address's would-be node.
        let peer_node = target.unwrap_or(usize::MAX);
        let latency = match target {
            Some(t) => self.latency(node, t),
            None => self.config.latency.0,
        };
        let end = End::new(node, peer_node, true, addr, latency);
        self.ends.insert(conn, end);
        if let Some(set) = self.node_ends.get_mut(node) {
            set.insert(conn);
        }
        let jitter = self.jitter();
        self.queue.push(
            self.now + latency + jitter,
            Event::Syn {
                dialer: conn,
                addr,
                attempt: 0,
            },
        );
        self.trace
            .record(self.now, &format!("dial {addr}"), node, conn.to_raw(), &[]);
    }

    /// Removes an end; its peer reads an end of stream after what is in flight (or a reset,
    /// which discards what is in flight).
    pub fn remove_end(&mut self, conn: ConnId, reset: Option<&'static str>) -> Option<End> {
        let end = self.ends.remove(&conn)?;
        self.read_blocked.remove(&conn);
        if let Some(set) = self.node_ends.get_mut(end.node) {
            set.remove(&conn);
        }
        if let Some(peer) = end.peer {
            if !end.finished {
                match reset {
                    Some(why) => {
                        if let Some(p) = self.ends.get_mut(&peer) {
                            p.inbound.clear();
                        }
                        self.push_segment(peer, Segment::Reset(why));
                    }
                    None => self.push_segment(peer, Segment::Eof),
                }
            }
        }
        Some(end)
    }

    /// Resets a connection from the end `conn`: in-flight bytes both ways are lost and the
    /// peer reads a reset after the link's latency. The caller tells `conn`'s endpoint.
    pub fn reset(&mut self, conn: ConnId, why: &'static str) {
        let Some(end) = self.ends.get_mut(&conn) else {
            return;
        };
        if end.finished {
            return;
        }
        end.finished = true;
        end.inbound.clear();
        let peer = end.peer;
        if let Some(peer) = peer {
            if let Some(p) = self.ends.get_mut(&peer) {
                p.inbound.clear();
                if !p.finished {
                    p.finished = true;
                    self.push_segment(peer, Segment::Reset(why));
                }
            }
        }
    }

    /// Schedules a look at every end of `node` that has something waiting.
    pub fn wake_node(&mut self, node: usize, delay: Duration) {
        let Some(set) = self.node_ends.get(node) else {
            return;
        };
        let waiting: Vec<ConnId> = set
            .iter()
            .copied()
            .filter(|c| {
                self.ends
                    .get(c)
                    .is_some_and(|e| !e.inbound.segments.is_empty())
            })
            .collect();
        for c in waiting {
            self.queue.push(self.now + delay, Event::Wake(c));
        }
    }
}
