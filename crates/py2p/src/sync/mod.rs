//! The sync table: py2p's `sync_socket`, a dictionary kept equal across a network.

mod socket;
pub(crate) mod table;

pub use self::socket::{SyncEvents, SyncSocket};
pub use self::table::LEASE_SECS;
pub(crate) use self::table::{SyncCommand, SyncTable};

/// A value with its metadata: who stored it and when (the lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// The id of the node that stored it.
    pub owner: String,
    /// When it was stored, in seconds since the Unix epoch.
    pub time: u64,
}

/// A change to the table, from a peer or local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A key took a new value.
    Stored {
        /// The key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
        /// The node that stored it.
        owner: String,
    },
    /// A key was deleted.
    Deleted {
        /// The key.
        key: Vec<u8>,
    },
}
