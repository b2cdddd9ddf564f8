//! The mesh network: py2p's `mesh_socket`.
//!
//! [`MeshSocket`] is what users hold; `core` is the node's logic as a state machine driven
//! by the event loop; `seen` is the waterfall's de-duplication; `peer` is per-connection
//! state and the peer-list JSON; `resolver` looks up host names peers advertise, off the
//! loop's thread.

pub(crate) mod command;
pub(crate) mod core;
mod link;
pub(crate) mod node;
mod packed;
mod peer;
mod resolver;
mod seen;
pub(crate) mod shared;
mod socket;
mod status;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use self::link::MeshLink;
pub(crate) use self::node::MeshNode;
pub(crate) use self::shared::Shared;
pub use self::socket::{Events, MeshSocket, Messages};

pub(crate) use self::command::{Command, ConnectReply, Handler};
pub use self::packed::PackedPackets;
pub use self::status::Status;
