//! What a chord node's table holds, as users see it.

/// A snapshot of a chord node's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChordInfo {
    /// Whether this node holds slots (has joined).
    pub joined: bool,
    /// Peers known to hold slots.
    pub joined_peers: usize,
    /// Slots held here.
    pub slots: usize,
    /// Copies held of the slots of the node this one precedes.
    pub backups: usize,
    /// Bytes they count against `max_table_bytes`.
    pub bytes: usize,
    /// User keys known.
    pub keys: usize,
    /// Lookups waiting for a peer's answer.
    pub pending_lookups: usize,
    /// The user's gets in flight.
    pub pending_gets: usize,
}
