//! The py2p event loop ("daemon") and connections.
//!
//! One thread per socket runs a [mio] poll loop that owns the listening socket and every
//! connection: it accepts and dials, reads bytes into a [`py2p_wire::FrameDecoder`] per
//! connection, writes queued frames without ever blocking, enforces the limits of
//! [`NetConfig`], and fires timers. It knows nothing of meshes or sync tables: those are
//! [`Service`]s, plain state machines that receive [`ConnId`]-tagged events and act through
//! the [`Net`] trait. A test can drive a service through its own `Net` without any socket.
//!
//! ```no_run
//! use py2p_net::{ConnId, EventLoop, Net, NetConfig, Service, CloseReason, ConnInfo};
//!
//! /// Answers every frame with the same bytes.
//! struct Echo;
//! impl Service for Echo {
//!     type Command = ();
//!     fn on_open(&mut self, _net: &mut dyn Net, _conn: ConnId, _info: &ConnInfo) {}
//!     fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]) {
//!         let mut frame = (body.len() as u32).to_be_bytes().to_vec();
//!         frame.extend_from_slice(body);
//!         net.send(conn, frame.into());
//!     }
//!     fn on_close(&mut self, _net: &mut dyn Net, _conn: ConnId, _why: &CloseReason) {}
//!     fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}
//!     fn on_tick(&mut self, _net: &mut dyn Net) {}
//! }
//!
//! let handle = EventLoop::spawn("127.0.0.1:0".parse()?, NetConfig::default(), Echo)?;
//! println!("echoing frames on {}", handle.local_addr());
//! handle.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod config;
mod conn;
mod endpoint;
mod error;
mod event_loop;
mod frame;
mod service;
mod tls;
mod write_queue;

pub use config::NetConfig;
pub use endpoint::{Action, Endpoint, Pipe};
pub use error::NetError;
pub use event_loop::{EventLoop, LoopHandle};
pub use frame::Frame;
pub use service::{CloseReason, ConnId, ConnInfo, Net, Service};
pub use tls::TlsConfig;
