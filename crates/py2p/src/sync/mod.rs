//! The sync table: py2p's `sync_socket`, a dictionary kept equal across a network.
//!
//! - `table`: the lease rules and the table itself, a plain state machine whose changes
//!   leave as `effect` values;
//! - `view`: the copy users' threads read, and the change events, kept by the node;
//! - `command`: users' requests, with where their answers go;
//! - `socket`: [`SyncSocket`](crate::SyncSocket), what users hold.

pub(crate) mod command;
mod effect;
mod entry;
mod socket;
pub(crate) mod table;
pub(crate) mod view;

pub(crate) use self::command::SyncCommand;
pub(crate) use self::effect::SyncEffect;
pub use self::entry::{Entry, SyncEvent};
pub use self::socket::SyncSocket;
pub(crate) use self::table::SyncTable;
pub use self::table::LEASE_SECS;
pub(crate) use self::view::SyncView;
