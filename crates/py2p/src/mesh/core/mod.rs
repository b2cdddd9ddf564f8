//! The mesh node as a state machine: py2p's mesh.py behaviour, driven by the event loop (or
//! by a test) through [`py2p_net::Service`], with no sockets of its own.

mod connect;
mod deliver;
mod dial;
mod handshake;
mod link;
mod path;
mod peers;
mod publish;
mod redial;
mod renegotiate;
mod request;
mod service;
mod state;
#[cfg(test)]
mod tests;
mod waterfall;

pub(crate) use self::dial::Purpose;
pub(crate) use self::state::MeshCore;
