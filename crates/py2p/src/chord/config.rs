//! The limits and timers of a chord node.

use std::time::Duration;

/// What a chord node may hold and how long it waits. Every limit has a safe default.
#[derive(Debug, Clone)]
pub struct ChordConfig {
    /// Most bytes the node's slots hold (slot keys, values and about 112 bytes per entry);
    /// a store past it is refused with a log line (the user's with `Error::TableFull`).
    /// Default 256 MiB.
    pub max_table_bytes: usize,
    /// Largest value stored or set, in bytes. Default 4 MiB.
    pub max_value_len: usize,
    /// Largest user key, in bytes. Default 4 KiB.
    pub max_key_len: usize,
    /// Most user keys remembered for `keys()` (learned from notifies). Default 1,000,000.
    pub max_keys: usize,
    /// Most lookups waiting for a peer's answer (the node's own and those it forwards for
    /// peers); past it a peer's retrieve is answered "missing" at once. Default 65,536.
    pub max_pending_lookups: usize,
    /// Most peers waiting on one forwarded lookup. Default 64.
    pub max_waiters_per_lookup: usize,
    /// Most `get`s of this node's user in flight. Default 65,536.
    pub max_pending_gets: usize,
    /// A forwarded lookup not answered in this time is answered "missing". Default 30 s.
    pub lookup_timeout: Duration,
    /// Default timeout of a `get` (py2p: 10 s).
    pub get_timeout: Duration,
    /// After a joined peer is lost, how long the node waits before it stores the lost
    /// peer's slots again from its own copies (so that the other nodes know of the loss
    /// too and do not forward the repair to the dead node). Default 2 s.
    pub repair_delay: Duration,
    /// Stores sent to a peer are kept this long and sent again to the slot's new holder
    /// if the connection breaks meanwhile (what was in flight on it is lost). Default 10 s.
    pub resend_window: Duration,
    /// Most bytes of such stores kept per peer (the oldest go first). Default 1 MiB.
    pub max_resend_bytes: usize,
}

impl Default for ChordConfig {
    fn default() -> Self {
        ChordConfig {
            max_table_bytes: 256 << 20,
            max_value_len: 4 << 20,
            max_key_len: 4 << 10,
            max_keys: 1_000_000,
            max_pending_lookups: 65_536,
            max_waiters_per_lookup: 64,
            max_pending_gets: 65_536,
            lookup_timeout: Duration::from_secs(30),
            get_timeout: Duration::from_secs(10),
            repair_delay: Duration::from_secs(2),
            resend_window: Duration::from_secs(10),
            max_resend_bytes: 1 << 20,
        }
    }
}
