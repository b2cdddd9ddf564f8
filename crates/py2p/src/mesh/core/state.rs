//! The state of one mesh node ([`MeshCore`]) and what it keeps per dial, request and lost peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use py2p_net::ConnId;
use py2p_wire::Limits;

use crate::config::MeshConfig;
use crate::connection::Connection;
use crate::mesh::peer::Peer;
use crate::mesh::resolver::Resolver;
use crate::mesh::seen::Seen;
use crate::mesh::shared::Shared;
use crate::mesh::{ConnectReply, Handler};
use crate::sync::SyncTable;

use super::path::Counters;

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

/// The state of one mesh node.
pub(crate) struct MeshCore {
    pub(crate) config: MeshConfig,
    pub(crate) id: String,
    pub(crate) protocol_id: String,
    pub(crate) out_addr: (String, u16),
    pub(super) limits: Limits,
    pub(super) peers: HashMap<ConnId, Peer>,
    pub(super) routing: HashMap<String, ConnId>,
    pub(super) dials: HashMap<ConnId, Dial>,
    pub(super) seen: Seen,
    pub(super) requests: HashMap<String, PendingRequest>,
    pub(super) handlers: Vec<Handler>,
    pub(crate) shared: Arc<Shared>,
    pub(super) counters: Counters,
    pub(crate) sync: Option<SyncTable>,
    /// The chord table of a chord node (see `crate::chord`).
    pub(crate) chord: Option<crate::chord::ChordTable>,
    pub(super) request_counter: u64,
    /// Peers lost without our doing, redialled now and then (see `MeshConfig::reconnect_for`).
    pub(super) lost: HashMap<String, LostPeer>,
    /// Host names peers advertise, looked up off the loop's thread.
    pub(super) resolver: Resolver,
    /// The user's `connect`s in progress, by connection: told when the handshake is in.
    pub(super) waiters: HashMap<ConnId, (SocketAddr, ConnectReply)>,
    /// The routing table changed since it was last published for `peers()`.
    pub(super) peers_dirty: bool,
    /// When the status was last published.
    pub(super) published_at: Option<Instant>,
    /// The handles handlers get, by connection: made once per connection (and again after
    /// its handshake), not once per message.
    pub(super) conn_handles: HashMap<ConnId, Connection>,
    /// Frames are decompressed here, one after the other (no allocation per frame).
    pub(super) scratch: Vec<u8>,
}

/// The decompression buffer is given back when a frame grew it past this.
pub(super) const SCRATCH_KEEP: usize = 64 << 10;

/// A peer whose connection broke: where to find it again, and when to try.
pub(super) struct LostPeer {
    pub(super) addr: (String, u16),
    pub(super) since: Instant,
    pub(super) next_try: Instant,
    pub(super) attempts: u32,
}

impl MeshCore {
    pub fn new(
        config: MeshConfig,
        id: String,
        out_addr: (String, u16),
        shared: Arc<Shared>,
        sync: Option<SyncTable>,
    ) -> Self {
        let limits = config.net.limits;
        let protocol_id = config.protocol.id();
        let seen = Seen::new(config.seen_capacity, config.message_expiry.as_secs());
        MeshCore {
            config,
            id,
            protocol_id,
            out_addr,
            limits,
            peers: HashMap::new(),
            routing: HashMap::new(),
            dials: HashMap::new(),
            seen,
            requests: HashMap::new(),
            handlers: Vec::new(),
            shared,
            counters: Counters::default(),
            sync,
            chord: None,
            request_counter: 0,
            lost: HashMap::new(),
            resolver: Resolver::new(),
            waiters: HashMap::new(),
            peers_dirty: true,
            published_at: None,
            conn_handles: HashMap::new(),
            scratch: Vec::new(),
        }
    }
}
