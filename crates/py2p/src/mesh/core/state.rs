//! The state of one mesh node ([`MeshCore`]) and what it keeps per dial, request and lost peer.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use py2p_net::ConnId;
use py2p_wire::Limits;

use super::effect::Effect;
use super::parked::ParkedChecks;
use super::path::{Counters, Path, PathObserver};
use crate::config::MeshConfig;
use crate::mesh::peer::Peer;
use crate::mesh::seen::{IdHasher, Seen};

/// A dial in progress: who we expect, and whispers to deliver once connected.
pub(super) struct Dial {
    pub(super) addr: SocketAddr,
    pub(super) expected_id: Option<String>,
    pub(super) deferred: Vec<Vec<Vec<u8>>>,
}

/// Whispers waiting for a route to their target (request/response).
pub(super) struct PendingRequest {
    pub(super) target: String,
    pub(super) messages: Vec<Vec<Vec<u8>>>,
    pub(super) created: Instant,
}

/// The state of one mesh node: py2p's mesh rules with no I/O, no thread, no lock. Input
/// comes in as calls (`on_open`, `on_frame`, `on_close`, `on_tick`, and the user's requests),
/// frames, dials and closes go out through `py2p_net::Net`, and everything else is queued as
/// an [`Effect`] for the node around it (`poll_effect`).
pub(crate) struct MeshCore {
    pub(crate) config: MeshConfig,
    pub(crate) id: String,
    pub(crate) protocol_id: String,
    pub(crate) out_addr: (String, u16),
    pub(super) limits: Limits,
    /// Boxed records (see [`Peer::new`]).
    pub(super) peers: HashMap<ConnId, Box<Peer>, ConnHash>,
    pub(super) routing: HashMap<String, ConnId>,
    pub(super) dials: HashMap<ConnId, Dial>,
    pub(super) seen: Seen,
    pub(super) requests: HashMap<String, PendingRequest>,
    pub(super) counters: Counters,
    pub(super) request_counter: u64,
    /// Peers lost without our doing, redialled now and then (see `MeshConfig::reconnect_for`).
    pub(super) lost: HashMap<String, LostPeer>,
    /// The user's `connect`s in progress, by connection (and the address dialled): answered
    /// when the handshake is in.
    pub(super) waiters: HashMap<ConnId, SocketAddr>,
    /// The routing table changed since it was last published for `peers()`.
    pub(super) peers_dirty: bool,
    /// Frames are decompressed here, one after the other (no allocation per frame).
    pub(super) scratch: Vec<u8>,
    /// The connections a broadcast goes to, kept between messages (no allocation per frame).
    pub(super) targets: Vec<ConnId>,
    /// A broadcast's frame per compression method, kept between messages (emptied after each).
    pub(super) frames: Vec<(Option<py2p_wire::Compression>, py2p_net::Frame)>,
    /// Outputs for the node, oldest first (see [`Effect`]).
    pub(super) effects: VecDeque<Effect>,
    /// Told of each path a frame takes: the fuzz harness's, `None` in users' nodes.
    pub(super) observer: Option<PathObserver>,
    /// Broadcasts waiting for their id checks, made together (`checks.rs`).
    pub(super) parked: ParkedChecks,
}

/// The hash of the peer map, looked up several times per frame (once per target of a
/// relay): connection handles are handed out by our own event loop, one after the other, so
/// no peer chooses them and SipHash's defence against chosen keys buys nothing; this is a
/// multiply-rotate and murmur3's finaliser (every bit of the handle reaches the bucket bits),
/// the seen set's hasher from a fixed seed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnHash;

impl std::hash::BuildHasher for ConnHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// The decompression buffer is given back when a frame grew it past this.
pub(super) const SCRATCH_KEEP: usize = 64 << 10;

/// A peer whose connection broke: where to find it again, and when to try.
pub(super) struct LostPeer {
    pub(super) addr: (String, u16),
    pub(super) since: Instant,
    pub(super) next_try: Instant,
    pub(super) attempts: u32,
    /// How many times in a row it was lost again within [`FLAP_WINDOW`] of coming back.
    pub(super) flaps: u32,
    /// When it was found again (routed under its id). The entry stays for
    /// [`FLAP_WINDOW`] after that: a peer lost again meanwhile goes on backing off.
    pub(super) found: Option<Instant>,
}

/// How long a lost peer that came back is remembered: lost again within it, it is dialled
/// at the next, doubled, interval instead of starting over.
pub(super) const FLAP_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl MeshCore {
    /// A node with id `id` that advertises `out_addr`.
    pub fn new(config: MeshConfig, id: String, out_addr: (String, u16)) -> Self {
        let limits = config.net.limits;
        let protocol_id = config.protocol.id();
        let seen = Seen::new(config.seen_capacity, config.message_expiry.as_secs());
        MeshCore {
            config,
            id,
            protocol_id,
            out_addr,
            limits,
            peers: HashMap::default(),
            routing: HashMap::new(),
            dials: HashMap::new(),
            seen,
            requests: HashMap::new(),
            counters: Counters::default(),
            request_counter: 0,
            lost: HashMap::new(),
            waiters: HashMap::new(),
            peers_dirty: true,
            scratch: Vec::new(),
            targets: Vec::new(),
            frames: Vec::new(),
            effects: VecDeque::new(),
            observer: None,
            parked: ParkedChecks::default(),
        }
    }
}

impl MeshCore {
    /// The oldest output not yet carried out.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }
}

impl MeshCore {
    /// Tells the observer, if any, that a frame took `path`.
    pub(super) fn hit(&mut self, path: Path) {
        if let Some(observe) = &mut self.observer {
            observe(path);
        }
    }

    /// Has `observer` told of every path a frame takes from now on.
    #[cfg(feature = "internals")]
    pub(crate) fn observe_paths(&mut self, observer: PathObserver) {
        self.observer = Some(observer);
    }
}
