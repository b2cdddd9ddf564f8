//! How a simulated network behaves: latencies, faults, the kernel's buffers and timers.

use std::time::Duration;

use py2p::MeshConfig;

/// The network a [`Sim`](super::Sim) runs on, and the configuration of its nodes.
///
/// Every field has a default suited to a LAN-like network; change the fields you need:
///
/// ```
/// use std::time::Duration;
/// use py2p_sim::SimConfig;
/// let config = SimConfig {
///     latency: (Duration::from_millis(20), Duration::from_millis(200)),
///     break_rate: 0.001,
///     ..SimConfig::default()
/// };
/// assert_eq!(config.jitter, SimConfig::default().jitter);
/// ```
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The configuration of every mesh node (its `bind` and `out_addr` are replaced by the
    /// node's simulated address). Its `net` part configures each node's
    /// [`Endpoint`](py2p_net::Endpoint), the connection machine the event loop runs, so every
    /// limit and timer of [`NetConfig`](py2p_net::NetConfig) applies as on a real socket.
    pub mesh: MeshConfig,
    /// One-way latency of a link, drawn once per pair of nodes from this range. Different
    /// links thus reorder messages against each other; one connection never does (TCP).
    /// Default 1–50 ms.
    pub latency: (Duration, Duration),
    /// Extra delay drawn for every segment, up to this much (order within a connection is
    /// kept all the same). Default 5 ms.
    pub jitter: Duration,
    /// Whether frames are cut into several segments on the way, so that receivers
    /// reassemble them with their frame decoder as they do real TCP reads. Default `true`.
    pub fragment: bool,
    /// Probability, for every frame sent, that its connection breaks instead (a reset: both
    /// ends see a socket error and the bytes in flight are lost). TCP loses no bytes, so
    /// this is how loss shows. Default 0.
    pub break_rate: f64,
    /// Bytes the kernels' socket buffers hold for one connection: up to this many bytes in
    /// flight or unread count as written; beyond it they are the sender's queue
    /// ([`Net::queued`](py2p_net::Net::queued)) and count against `max_write_queue`.
    /// Default 256 KiB.
    pub socket_buffer: usize,
    /// How long TCP retransmits data across a partition before giving up on the connection
    /// (Linux's default, `tcp_retries2 = 15`, is about 15 minutes). Default 900 s.
    pub tcp_timeout: Duration,
    /// How long after a broadcast every node of its sender's component must have it, for
    /// [`Sim::check_deliveries`](super::Sim::check_deliveries). Faults within this window
    /// excuse missing deliveries. Default 10 s.
    pub settle: Duration,
    /// Unix time at the start of the run (virtual seconds are added to it).
    /// Default 1,800,000,000.
    pub epoch: u64,
    /// Whether to keep a text line per event (see [`Sim::trace_lines`](super::Sim::trace_lines)),
    /// for reading what a failing seed did. Default `false`.
    pub trace_lines: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            mesh: MeshConfig::default(),
            latency: (Duration::from_millis(1), Duration::from_millis(50)),
            jitter: Duration::from_millis(5),
            fragment: true,
            break_rate: 0.0,
            socket_buffer: 256 << 10,
            tcp_timeout: Duration::from_secs(900),
            settle: Duration::from_secs(10),
            epoch: 1_800_000_000,
            trace_lines: false,
        }
    }
}
