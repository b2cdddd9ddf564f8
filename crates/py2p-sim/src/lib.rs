//! A deterministic simulator of mesh networks: the real node logic, no sockets.
//!
//! [`Sim`] runs many [`MeshSocket`](py2p::MeshSocket) nodes in one thread on virtual
//! time. Each node is the same state machine a `MeshSocket` runs, inside the same
//! connection machine, [`py2p_net::Endpoint`], that its event loop drives: framing, write
//! queues and budgets, the read budget, eviction at `max_connections`, timers and pausing
//! input are the endpoint's, not the simulator's. The simulator drives each endpoint as the
//! loop does (bytes in, actions and writes out, timers at `poll_timeout`) on virtual time,
//! and plays the network (TCP connections with per-link latency and jitter, order kept
//! within a connection, never across them; kernel buffers; resets). Faults come on demand: killing and restarting
//! nodes, partitions (silent, or resetting connections), broken links, random link
//! breaks, nodes that stop reading, users that stop receiving, and
//! [garbage peers](Garbage) that send junk.
//!
//! Everything random derives from one `u64` seed, and nothing depends on the wall clock or
//! on hash-map order, so a failing seed replays exactly; [`Sim::trace_hash`] fingerprints
//! a run to prove it. The `check_*` methods test the network's promises: every broadcast
//! reaches every connected node exactly once, no user sees a message past its expiry,
//! routing tables agree and make one network, memory stays bounded and drains.
//!
//! Nodes are mesh nodes, sync-table nodes ([`Sim::add_sync_node`]) or chord nodes
//! ([`Sim::add_chord_node`]). Limit:
//! `Message::reply` needs a real event loop, so handlers in a simulation cannot answer
//! through it.
//!
//! [`exercise`] puts one node under a peer that a fuzzer scripts byte by byte: the bodies
//! of the `mesh_node` and `sync_node` fuzz targets.
//!
//! It is also a way to test your own handlers against a whole network in milliseconds:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use py2p_sim::{Sim, SimConfig};
//!
//! let mut sim = Sim::new(7, SimConfig::default());
//! let nodes = sim.add_nodes(10);
//! for i in nodes.skip(1) {
//!     let j = sim.rng().index(i); // each node dials one that came before it
//!     sim.connect(i, j);
//! }
//! let seen = Arc::new(AtomicUsize::new(0));
//! let counter = seen.clone();
//! sim.register_handler(3, move |msg, _conn| {
//!     counter.fetch_add(1, Ordering::Relaxed);
//!     msg.packets().first().is_some_and(|p| p == b"ping") // consume pings
//! });
//! sim.run_for(Duration::from_secs(10));
//!
//! sim.broadcast(0, &["ping"]);
//! sim.broadcast(5, &["hello"]);
//! sim.kill(9);
//! sim.run_for(Duration::from_secs(10));
//!
//! assert_eq!(seen.load(Ordering::Relaxed), 2);
//! assert_eq!(sim.deliveries(3).len(), 2); // both reached the node
//! assert_eq!(sim.received(3).len(), 1); // the handler kept the ping from its user
//! assert!(sim.check_deliveries().is_empty());
//! println!("run {} fingerprint {:016x}", sim.seed(), sim.trace_hash());
//! ```

// Test machinery, not node code: it indexes the node and link tables it sized itself.
#![allow(clippy::indexing_slicing)]

mod check;
mod chord;
pub mod chord_exercise;
mod config;
mod engine;
pub mod exercise;
mod faults;
mod garbage;
mod link;
mod net;
mod network;
mod node;
mod queue;
#[cfg(test)]
mod same_outcome;
mod script;
mod scripted;
mod simulator;
mod trace;

pub use self::check::Violation;
pub use self::config::SimConfig;
pub use self::garbage::Garbage;
pub use self::node::{Delivery, Maxima, SeenEvent};
pub use self::simulator::Sim;
