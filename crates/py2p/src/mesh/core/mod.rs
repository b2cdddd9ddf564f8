//! The mesh node's logic as a state machine: py2p's mesh.py rules with no sockets, threads or
//! locks. Input comes in as calls (connections, frames, time, the user's requests), frames
//! leave through [`py2p_net::Net`], and the rest leaves as [`Effect`] values that the node
//! around it (`crate::mesh::node`) carries out.

mod checks;
mod connect;
mod deliver;
mod dial;
mod effect;
mod handshake;
mod held;
mod input;
mod link;
mod out;
mod parked;
mod path;
mod peers;
mod publish;
mod redial;
mod renegotiate;
mod request;
mod state;
#[cfg(test)]
mod tests;
mod user;
mod waterfall;

pub(crate) use self::connect::Connecting;
pub(crate) use self::dial::dropped_note;
pub(crate) use self::effect::{Effect, Purpose, Tables};
pub(crate) use self::held::HeldRelays;
pub(crate) use self::input::Taken;
pub(crate) use self::out::Out;
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use self::path::{Path, PathObserver};
pub(crate) use self::state::MeshCore;
pub(crate) use self::user::{IdBatch, UserBroadcast};
