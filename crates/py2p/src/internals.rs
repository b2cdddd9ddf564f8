//! The node's insides, for `py2p-sim` and the node fuzz targets: **not a stable API**.
//!
//! Compiled only with the non-default `internals` feature, and hidden from the docs. The
//! simulator (`crates/py2p-sim`) runs the very node a [`MeshSocket`](crate::MeshSocket) runs,
//! [`MeshNode`] (the mesh core with its table, handlers and inbox), inside its own virtual
//! network, so it needs what the socket facade keeps to itself: the node, the commands a
//! socket sends it, the state it shares with its user, the sync and chord tables, and the
//! handler paths the fuzz harness counts. Anything here may change in any release; users call
//! the sockets.

pub use crate::chord::command::ChordCommand;
pub use crate::chord::table::{ChordOutcome, ChordTable};
pub use crate::id::node_id;
pub use crate::inbox::Inbox;
pub use crate::mesh::command::{Command, ConnectReply};
pub use crate::mesh::core::Path;
pub use crate::mesh::node::MeshNode;
pub use crate::mesh::shared::Shared;
pub use crate::mesh::PackedPackets;
pub use crate::sync::command::SyncCommand;
pub use crate::sync::table::{StoreOutcome, SyncTable};
pub use crate::sync::view::SyncView;
