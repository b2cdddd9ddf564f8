//! The interface between the event loop and the protocol logic that runs on it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use py2p_wire::WireError;

use crate::Frame;

/// A connection's handle: unique for the life of an event loop, never reused. Opaque: the
/// loop hands them out; `Display` shows `conn#N` for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The handle numbered `n`. Only a driver of an [`Endpoint`](crate::Endpoint) (the
    /// simulator) and tests that stand in for one make handles; users get theirs from the loop.
    #[doc(hidden)]
    pub const fn from_raw(n: u64) -> ConnId {
        ConnId(n)
    }

    /// The number inside: for traces and for picks that must replay from a seed (the
    /// simulator). Not a stable meaning: only the loop's order of handing out.
    #[doc(hidden)]
    pub const fn to_raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What the loop knows of a connection when it opens.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The address at the other end of the TCP connection.
    pub peer_addr: SocketAddr,
    /// Whether we dialled it (`true`) or accepted it (`false`).
    pub outgoing: bool,
    /// In SSL mode, the TLS version negotiated (`"TLSv1.3"`, `"TLSv1.2"`); `None` in plaintext.
    pub tls_version: Option<&'static str>,
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection.
    PeerClosed,
    /// A socket error (text of the `io::Error`).
    Io(String),
    /// The service asked for it.
    Local,
    /// A frame could not be read: out of step or over a limit.
    Wire(WireError),
    /// The peer let more than `max_write_queue` bytes pile up.
    SlowPeer {
        /// Bytes queued when it was closed.
        queued: usize,
    },
    /// Closed to make room for a new connection when `max_connections` were held (see
    /// [`Service::make_room`]).
    Evicted,
    /// Unfinished frames of all peers together held more than `max_total_read_buffer`,
    /// and this peer's was the largest.
    ReadBudget {
        /// Bytes of its unfinished input when it was closed.
        buffered: usize,
    },
    /// Queued bytes were not accepted for `write_stall_timeout`.
    WriteStalled,
    /// A frame was begun and not finished within `partial_frame_timeout`.
    PartialFrameTimeout,
    /// A dial did not complete.
    ConnectFailed(String),
    /// The event loop is shutting down.
    Shutdown,
    /// SSL mode: the TLS session failed (a bad record, an alert, a failed handshake; or the
    /// peer speaks plaintext).
    Tls(String),
    /// SSL mode: the TLS handshake did not finish within `tls_handshake_timeout`.
    TlsHandshakeTimeout,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Io(e) => write!(f, "socket error: {e}"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Wire(e) => write!(f, "bad frame: {e}"),
            CloseReason::SlowPeer { queued } => {
                write!(f, "peer is not reading ({queued} bytes queued)")
            }
            CloseReason::Evicted => f.write_str("closed to make room for a new connection"),
            CloseReason::ReadBudget { buffered } => write!(
                f,
                "the largest unfinished input ({buffered} bytes) when all peers' together passed the limit"
            ),
            CloseReason::WriteStalled => f.write_str("peer accepted no bytes for too long"),
            CloseReason::PartialFrameTimeout => f.write_str("frame left unfinished for too long"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::Shutdown => f.write_str("shutting down"),
            CloseReason::Tls(e) => write!(f, "TLS: {e}"),
            CloseReason::TlsHandshakeTimeout => f.write_str("TLS handshake not finished in time"),
        }
    }
}

/// What a service can ask of the network. The event loop implements it over sockets; a
/// simulator can implement it in memory.
pub trait Net {
    /// Queues a whole frame (length header included) for a connection. Frames to one
    /// connection leave in the order they were queued, never interleaved or cut. Sending on a
    /// closed connection does nothing. A [shared](Frame::shared) frame can go to many
    /// connections without a copy per connection.
    fn send(&mut self, conn: ConnId, frame: Frame);
    /// Queues the frame that `encode` appends to the buffer it is given (one whole frame,
    /// length header included, of at most `room` bytes), as [`Net::send`] queues a frame.
    /// The buffer may hold frames queued before it for the same connection, so that a burst
    /// of small frames shares one allocation. Default: a buffer of its own, then `send`.
    fn send_encoded(&mut self, conn: ConnId, room: usize, encode: &mut dyn FnMut(&mut Vec<u8>)) {
        let mut frame = Vec::with_capacity(room);
        encode(&mut frame);
        self.send(conn, frame.into());
    }
    /// Starts a connection; `on_open` follows when it is established, or `on_close` when it fails.
    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, crate::NetError>;
    /// Closes a connection; `on_close` follows with [`CloseReason::Local`].
    fn close(&mut self, conn: ConnId);
    /// Bytes queued and not yet written for a connection.
    fn queued(&self, conn: ConnId) -> usize;
    /// Bytes queued and not yet written, over all connections.
    fn total_queued(&self) -> usize;
    /// The current time, for timers.
    fn now(&self) -> Instant;
    /// Whole seconds since the Unix epoch (UTC), as py2p stamps messages.
    fn unix_time(&self) -> u64;
    /// Asks the loop to stop after this callback.
    fn shutdown(&mut self);
}

/// Protocol logic driven by an event loop: every callback runs on the loop thread.
pub trait Service: Send + 'static {
    /// Requests from other threads (the user's API calls), delivered in order.
    type Command: Send + 'static;

    /// A connection is established (accepted, or dialled and connected).
    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo);
    /// A whole frame body (length header removed) arrived. The bytes are lent: the loop
    /// reuses one buffer for every frame (no allocation per frame); copy what is kept.
    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]);
    /// The frames of one delivery run (those of one read, or those that waited while input
    /// was paused) were all handed to [`Service::on_frame`]: a service that keeps some back
    /// to handle them together (checks several messages' ids at once) handles them now.
    /// Every driver of an [`Endpoint`](crate::Endpoint) gets it, as it calls the endpoint.
    /// Default: nothing kept.
    fn on_frames_done(&mut self, _net: &mut dyn Net) {}
    /// A connection closed (for any reason, including a failed dial).
    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason);
    /// A command from another thread.
    fn on_command(&mut self, net: &mut dyn Net, cmd: Self::Command);
    /// The end of a run of commands ([`Endpoint::commands_done`](crate::Endpoint::commands_done)):
    /// the driver took every command waiting, or is about to write in the middle of a long
    /// run. A service that gathers work over consecutive commands (to do it together) does
    /// it now. Default: nothing gathered.
    fn on_commands_done(&mut self, _net: &mut dyn Net) {}
    /// Runs every `tick_interval`, for timers.
    fn on_tick(&mut self, net: &mut dyn Net);
    /// Whether the service can take more frames now. While it returns `false` the loop stops
    /// reading sockets (TCP flow control then slows the senders) and asks again after
    /// [`LoopHandle::resume`](crate::LoopHandle::resume). Default: always.
    fn wants_input(&self) -> bool {
        true
    }
    /// A connection arrives while `max_connections` are held: names one to close to make
    /// room for it (say, the oldest that has not identified itself yet), or `None` to refuse
    /// the newcomer. Default: `None`.
    fn make_room(&mut self) -> Option<ConnId> {
        None
    }
    /// Runs once when the loop stops, after every connection is closed.
    fn on_shutdown(&mut self) {}
    /// Told after every turn of the loop how many bytes wait in all write queues together.
    fn on_backlog(&mut self, _queued_bytes: usize) {}
    /// Runs before the queues are written ([`Endpoint::take_dirty`](crate::Endpoint::take_dirty)):
    /// frames the service held back while it handled the turn's input must be sent now.
    /// Default: nothing held.
    fn before_write(&mut self, _net: &mut dyn Net) {}
}
