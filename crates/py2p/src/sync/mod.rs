//! The sync table: py2p's `sync_socket`, a dictionary kept equal across a network.

mod entry;
mod socket;
pub(crate) mod table;

pub use self::entry::{Entry, SyncEvent};
pub use self::socket::SyncSocket;
pub use self::table::LEASE_SECS;
pub(crate) use self::table::{SyncCommand, SyncTable};
