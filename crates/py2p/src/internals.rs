//! The node's insides, for `py2p-sim` and the node fuzz targets: **not a stable API**.
//!
//! Compiled only with the non-default `internals` feature, and hidden from the docs. The
//! simulator (`crates/py2p-sim`) runs the very state machine a [`MeshSocket`](crate::MeshSocket)
//! runs, [`MeshCore`], inside its own virtual network, so it needs what the socket facade
//! keeps to itself: the core, the commands a socket sends it, the state it shares with its
//! user, the sync and chord tables, and the handler path counters the fuzz harness reads.
//! Anything here may change in any release; users call the sockets.

pub use crate::chord::table::{ChordCommand, ChordOutcome, ChordTable};
pub use crate::id::node_id;
pub use crate::inbox::Inbox;
pub use crate::mesh::core::{MeshCore, Path};
pub use crate::mesh::shared::Shared;
pub use crate::mesh::{Command, ConnectReply};
pub use crate::sync::table::{StoreOutcome, SyncCommand, SyncTable};
