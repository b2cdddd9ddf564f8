//! Peer-to-peer sockets that share one network with the py2p 0.5 Python package.
//!
//! - [`MeshSocket`]: a node of a mesh network (py2p's `mesh_socket`): broadcasts reach every
//!   node exactly once through the waterfall, whispers reach one node, directly or through
//!   the network's request/response.
//! - [`SyncSocket`]: a dictionary kept equal across a network, with py2p's one-hour leases
//!   (py2p's `sync_socket`).
//! - [`ChordSocket`]: a distributed hash table, each key in five slots on the nodes that
//!   joined the ring (py2p's `chord_socket`).
//!
//! Each socket runs one event-loop thread that owns its connections (see `py2p-net`); the
//! wire format is `py2p-wire`. Nothing a peer sends can panic a node or grow its memory
//! without bound: every limit is a field of [`MeshConfig`] with a safe default.
//!
//! ```
//! use std::time::Duration;
//! use py2p::{MeshConfig, MeshSocket, MessageKind};
//!
//! let config = || MeshConfig::builder().bind("127.0.0.1:0".parse().unwrap()).build();
//! let alice = MeshSocket::bind(config())?;
//! let bob = MeshSocket::bind(config())?;
//! bob.connect(alice.local_addr())?;
//! alice.wait_for_peers(1, Duration::from_secs(10))?;
//!
//! // Answer every whisper from the event loop itself, on the connection it came on.
//! bob.register_handler(|msg, conn| {
//!     if msg.kind() == MessageKind::Whisper {
//!         let _ = conn.reply(&[b"pong"]);
//!         return true;
//!     }
//!     false
//! })?;
//! alice.whisper(bob.id(), &["ping"])?;
//! let answer = alice.recv_timeout(Duration::from_secs(10)).expect("an answer");
//! assert_eq!(answer.packets(), [b"pong".to_vec()]);
//! # Ok::<(), py2p::Error>(())
//! ```

#![warn(missing_docs)]
// `internals` makes the node's insides `pub` for py2p-sim: they are documented for their
// readers, not item by item for users, and their fields name the loop's private types. The
// default build (what users get, and `cargo xtask test`'s API check) keeps both lints.
#![cfg_attr(feature = "internals", allow(missing_docs, private_interfaces))]

pub mod chord;
mod config;
mod connection;
mod error;
mod id;
mod inbox;
// Test support for py2p-sim and the fuzz targets, not part of the API (feature `internals`).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
mod mesh;
mod mesh_methods;
mod message;
mod sync;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use chord::config::ChordConfig;
pub use chord::info::ChordInfo;
pub use chord::socket::ChordSocket;
pub use config::{MeshConfig, MeshConfigBuilder};
pub use connection::Connection;
pub use error::{ConnectError, Error};
pub use mesh::{Events, MeshSocket, Messages, Status};
pub use message::{Message, MessageKind, PeerEvent, PeerInfo};
pub use sync::{Entry, SyncEvent, SyncSocket, LEASE_SECS};

pub use py2p_net::NetConfig;
pub use py2p_wire::{Compression, Encryption, Limits, Payload, Protocol};
