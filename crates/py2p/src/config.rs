//! Configuration of a socket, with a builder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use py2p_net::NetConfig;
use py2p_wire::{Compression, Encryption, Limits, Protocol};

/// Everything a mesh (or sync) socket can be told before it starts. Every limit has a safe
/// default; [`MeshConfig::builder`] sets the fields one by one.
///
/// ```
/// use py2p::MeshConfig;
/// let config = MeshConfig::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .subnet("chat")
///     .max_outgoing(8)
///     .build();
/// assert_eq!(config.protocol.subnet, "chat");
/// ```
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Where to listen. Port 0 picks a free port. Default `0.0.0.0:0`.
    pub bind: SocketAddr,
    /// The protocol (subnet, encryption); peers of another protocol are refused.
    /// Default `("mesh", "Plaintext")`.
    pub protocol: Protocol,
    /// The address advertised to peers (`out_addr`). Default: the bound address, or the
    /// machine's LAN address when bound to `0.0.0.0`.
    pub out_addr: Option<(String, u16)>,
    /// Compression methods offered, in order of preference. Default: all five, py2p's order.
    pub compressions: Vec<Compression>,
    /// Most outgoing connections made from peer lists (py2p's `max_outgoing`). Default 4.
    pub max_outgoing: usize,
    /// Most entries in a `peers` list sent to one peer. Default 64.
    pub max_peer_list: usize,
    /// A connection that has not completed the handshake in this time is closed. Default 30 s.
    pub handshake_timeout: Duration,
    /// Broadcasts older than this are dropped, and their ids forgotten after it. Default 60 s.
    pub message_expiry: Duration,
    /// Most broadcast ids remembered for de-duplication. Default 1,000,000 (about 40 MB at most).
    pub seen_capacity: usize,
    /// Most received messages held for `recv` before the node stops reading from peers
    /// (TCP flow control then slows them down; nothing is dropped). Default 65,536.
    pub inbox_capacity: usize,
    /// Most bytes of received messages held for `recv` (payloads, ids and headers), the
    /// same way: past it the node stops reading until `recv` makes room. Default 64 MiB.
    pub inbox_max_bytes: usize,
    /// Bytes queued to peers above which `send` and `whisper` wait. Default 1 MiB: enough to
    /// keep every connection's kernel buffer full, small enough that what waits stays in the
    /// CPU's caches (a larger backlog only adds latency and memory traffic).
    pub send_high_water: usize,
    /// Most frames that fail to decode on one connection before it is closed. Default 16.
    pub max_decode_errors: u32,
    /// A whisper waiting for a route (request/response) is dropped after this. Default 60 s.
    pub request_timeout: Duration,
    /// A peer lost without our doing (its connection broke) is dialled again after this,
    /// then at doubling intervals up to a minute. Default 5 s.
    pub reconnect_interval: Duration,
    /// How long a lost peer is dialled again before it is given up; zero turns redialling
    /// off. Default 10 minutes.
    pub reconnect_for: Duration,
    /// Most lost peers remembered for redialling; past it the one lost longest is
    /// forgotten (a peer that keeps coming back under new ids cannot grow the list, nor
    /// have us dial any address it likes for ten minutes each). Default 64.
    pub max_lost_peers: usize,
    /// Most bytes a sync table holds (keys, values, owner ids and about 96 bytes per
    /// entry); a store past it is refused (a peer's with a log line, the user's with
    /// `Error::TableFull`), deletes and shrinking stores always pass. Default 256 MiB.
    pub max_table_bytes: usize,
    /// When two connections join the same pair of nodes (both dialled at once), both ends
    /// keep the one dialled by the node with the larger id; the other is closed after this
    /// grace, so that frames already on their way over it still arrive, and the peer, which
    /// makes the same choice, has time to learn of the kept connection before it sees the
    /// other one close (no passing `Disconnected` event). Default 2 s.
    pub conflict_grace: Duration,
    /// Most errors `status()` lists (the most recent; older ones are only counted).
    /// Default 256.
    pub max_status_errors: usize,
    /// The event loop's limits and timers (frame sizes, connections, write queues).
    pub net: NetConfig,
    /// SSL mode: a PEM certificate (chain) file to serve instead of a self-signed one made
    /// at bind. Used with `tls_key`. Default `None`.
    pub tls_cert: Option<PathBuf>,
    /// SSL mode: the PEM private key of `tls_cert`. Default `None`.
    pub tls_key: Option<PathBuf>,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            protocol: Protocol::new("mesh", Encryption::Plaintext),
            out_addr: None,
            compressions: Compression::PREFERENCE.to_vec(),
            max_outgoing: 4,
            max_peer_list: 64,
            handshake_timeout: Duration::from_secs(30),
            message_expiry: Duration::from_secs(60),
            seen_capacity: 1_000_000,
            inbox_capacity: 65_536,
            inbox_max_bytes: 64 << 20,
            send_high_water: 1 << 20,
            max_decode_errors: 16,
            request_timeout: Duration::from_secs(60),
            reconnect_interval: Duration::from_secs(5),
            reconnect_for: Duration::from_secs(600),
            max_lost_peers: 64,
            max_table_bytes: 256 << 20,
            conflict_grace: Duration::from_secs(2),
            max_status_errors: 256,
            net: NetConfig::default(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl MeshConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> MeshConfigBuilder {
        MeshConfigBuilder {
            config: MeshConfig::default(),
        }
    }
}

/// Builds a [`MeshConfig`].
#[derive(Debug, Clone)]
pub struct MeshConfigBuilder {
    config: MeshConfig,
}

impl MeshConfigBuilder {
    /// Where to listen.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr;
        self
    }
    /// The subnet (encryption stays as it is).
    pub fn subnet(mut self, subnet: impl Into<String>) -> Self {
        self.config.protocol.subnet = subnet.into();
        self
    }
    /// SSL mode: serve this PEM certificate and key instead of a self-signed certificate.
    pub fn tls_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.config.tls_cert = Some(cert.into());
        self.config.tls_key = Some(key.into());
        self
    }
    /// The encryption (the subnet stays as it is).
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.config.protocol.encryption = encryption;
        self
    }
    /// The whole protocol.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.config.protocol = protocol;
        self
    }
    /// The address advertised to peers.
    pub fn out_addr(mut self, host: impl Into<String>, port: u16) -> Self {
        self.config.out_addr = Some((host.into(), port));
        self
    }
    /// Compression methods offered, in order of preference (empty: none).
    pub fn compressions(mut self, methods: impl IntoIterator<Item = Compression>) -> Self {
        self.config.compressions = methods.into_iter().collect();
        self
    }
    /// Most outgoing connections made from peer lists.
    pub fn max_outgoing(mut self, n: usize) -> Self {
        self.config.max_outgoing = n;
        self
    }
    /// Handshake deadline.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.config.handshake_timeout = d;
        self
    }
    /// Most bytes a sync table holds.
    pub fn max_table_bytes(mut self, bytes: usize) -> Self {
        self.config.max_table_bytes = bytes;
        self
    }
    /// Most lost peers remembered for redialling.
    pub fn max_lost_peers(mut self, n: usize) -> Self {
        self.config.max_lost_peers = n;
        self
    }
    /// How long the connection not kept after a connection conflict stays open.
    pub fn conflict_grace(mut self, d: Duration) -> Self {
        self.config.conflict_grace = d;
        self
    }
    /// Most bytes of received messages held for `recv`.
    pub fn inbox_max_bytes(mut self, bytes: usize) -> Self {
        self.config.inbox_max_bytes = bytes.max(1);
        self
    }
    /// Most received messages held for `recv`.
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.config.inbox_capacity = n.max(1);
        self
    }
    /// Limits on frames read from peers.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.net.limits = limits;
        self
    }
    /// Most connections held at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.net.max_connections = n;
        self
    }
    /// Most bytes queued to one peer before it is disconnected as too slow.
    pub fn max_write_queue(mut self, bytes: usize) -> Self {
        self.config.net.max_write_queue = bytes;
        self
    }
    /// How long, and how often, lost peers are dialled again (zero `reconnect_for`: never).
    pub fn reconnect(mut self, interval: Duration, reconnect_for: Duration) -> Self {
        self.config.reconnect_interval = interval;
        self.config.reconnect_for = reconnect_for;
        self
    }
    /// How long a dial may take to establish its TCP connection (`NetConfig::connect_timeout`).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.net.connect_timeout = d;
        self
    }

    /// Most errors `status()` lists.
    pub fn max_status_errors(mut self, n: usize) -> Self {
        self.config.max_status_errors = n;
        self
    }

    /// The event loop's configuration, whole.
    pub fn net(mut self, net: NetConfig) -> Self {
        self.config.net = net;
        self
    }
    /// The configuration.
    pub fn build(self) -> MeshConfig {
        self.config
    }
}
