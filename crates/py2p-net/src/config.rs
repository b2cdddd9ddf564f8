//! Limits and timers of the event loop.

use std::time::Duration;

use py2p_wire::Limits;

use crate::TlsConfig;

/// Configuration of an [`EventLoop`](crate::EventLoop): every limit has a safe default.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Limits applied to frames read from peers (frame size, decompressed size, packets).
    pub limits: Limits,
    /// Most connections held at once, accepted and dialled together. Default 1,024.
    pub max_connections: usize,
    /// Most bytes queued for one peer; a peer that lets its queue pass this is disconnected
    /// rather than allowed to grow our memory. Default 32 MiB (twice the largest frame).
    pub max_write_queue: usize,
    /// Most bytes queued to all peers together. Past it the peer with the longest queue (the
    /// slowest reader) is disconnected, so that many slow peers cannot add up to more memory
    /// than one may use. Default 128 MiB.
    pub max_total_write_queue: usize,
    /// Most bytes of unfinished frames held for all peers together (each may hold up to
    /// `limits.max_frame_len`). Past it the peer with the most is disconnected, so that many
    /// peers that each begin a large frame cannot add up to more memory than a few may use.
    /// Default 256 MiB.
    pub max_total_read_buffer: usize,
    /// A connection with queued bytes that has accepted none for this long is closed.
    /// Default 60 s.
    pub write_stall_timeout: Duration,
    /// A connection that began a frame and then sent nothing for this long is closed
    /// (py2p closes these after 60 s). Default 60 s.
    pub partial_frame_timeout: Duration,
    /// A dial whose TCP connection is not established within this is closed with
    /// `CloseReason::ConnectFailed("timed out")`. Default 10 s.
    pub connect_timeout: Duration,
    /// How often the service's `on_tick` runs. Default 500 ms.
    pub tick_interval: Duration,
    /// Bytes read from one socket per read call. Default 64 KiB.
    pub read_chunk: usize,
    /// SSL mode: the TLS certificate and settings every connection uses, or `None` for
    /// plaintext. Default `None`.
    pub tls: Option<TlsConfig>,
    /// A connection whose TLS handshake has not finished after this long is closed (py2p
    /// gives a dial 1 s for TCP and TLS together). Default 10 s.
    pub tls_handshake_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            limits: Limits::default(),
            max_connections: 1024,
            max_write_queue: 32 << 20,
            max_total_write_queue: 128 << 20,
            max_total_read_buffer: 256 << 20,
            write_stall_timeout: Duration::from_secs(60),
            partial_frame_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            tick_interval: Duration::from_millis(500),
            read_chunk: 64 << 10,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}
