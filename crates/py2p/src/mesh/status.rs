//! A snapshot of a node's state and counters, as `status()` returns it.

/// A snapshot of a node's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: String,
    /// Its protocol id.
    pub protocol_id: String,
    /// The address it advertises.
    pub out_addr: (String, u16),
    /// Peers in the routing table (handshake complete).
    pub peers: usize,
    /// Open connections and dials in progress.
    pub connections: usize,
    /// Connections still waiting for a handshake.
    pub awaiting_handshake: usize,
    /// Messages delivered to this node's user.
    pub received: u64,
    /// Frames relayed to other peers by the waterfall.
    pub relayed: u64,
    /// Broadcasts dropped as already seen.
    pub duplicates: u64,
    /// Broadcasts dropped as older than the expiry.
    pub expired: u64,
    /// Frames that could not be decoded.
    pub decode_errors: u64,
    /// Peers refused for running another protocol.
    pub refused_subnet: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
    /// Broadcast ids remembered.
    pub seen_ids: usize,
    /// Whispers waiting for a route.
    pub pending_requests: usize,
    /// Peers lost without our doing and still being redialled.
    pub lost_peers: usize,
    /// Messages waiting in the inbox.
    pub inbox: usize,
    /// The errors the node met, oldest first (py2p's `status` list of exceptions): peers
    /// that sent undecodable frames or ran another protocol, failed dials, handlers that
    /// panicked, whispers that found no route. At most `MeshConfig::max_status_errors` are
    /// kept, the most recent; `errors_total` counts them all.
    pub errors: Vec<String>,
    /// Every error the node met since it started.
    pub errors_total: u64,
}
