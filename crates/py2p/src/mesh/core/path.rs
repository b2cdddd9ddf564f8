//! The ways a frame can go through a node, and the counters `status` shows.

/// The ways a frame from a peer can go through a node's handlers. The core tells a
/// [`PathObserver`], when the harness gives it one, so that the fuzz targets can show that
/// their corpus reaches each; users' nodes have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The frame did not decode.
    Undecodable,
    /// A new broadcast, relayed.
    Broadcast,
    /// A broadcast already seen.
    DuplicateBroadcast,
    /// A message past the expiry (or stamped too far ahead).
    Expired,
    /// `renegotiate` with a compression list.
    RenegotiateCompression,
    /// `renegotiate` asking for the last message again.
    RenegotiateResend,
    /// `renegotiate` with anything else.
    RenegotiateOther,
    /// A first handshake, accepted.
    Handshake,
    /// A handshake repeated on a connection that had one.
    RepeatedHandshake,
    /// A handshake refused (the connection is closed).
    RefusedHandshake,
    /// A `peers` list.
    Peers,
    /// A handshake or `peers` list sent as a broadcast (or a handshake of the wrong size), ignored.
    IgnoredHandshakeOrPeers,
    /// A `request` for the peer list (`*`).
    RequestPeers,
    /// A `request` for a route to a node.
    RequestRoute,
    /// A `response` to a request.
    Response,
    /// A `response` to a request of ours.
    ResponseMatched,
    /// A sync `store`.
    Store,
    /// A message handed to the user (handlers and inbox).
    Delivered,
    /// A message with an unknown sub-flag, dropped after the handlers saw it.
    Unknown,
}

impl Path {
    /// Every path, in order.
    #[cfg(feature = "internals")]
    pub const ALL: [Path; 19] = [
        Path::Undecodable,
        Path::Broadcast,
        Path::DuplicateBroadcast,
        Path::Expired,
        Path::RenegotiateCompression,
        Path::RenegotiateResend,
        Path::RenegotiateOther,
        Path::Handshake,
        Path::RepeatedHandshake,
        Path::RefusedHandshake,
        Path::Peers,
        Path::IgnoredHandshakeOrPeers,
        Path::RequestPeers,
        Path::RequestRoute,
        Path::Response,
        Path::ResponseMatched,
        Path::Store,
        Path::Delivered,
        Path::Unknown,
    ];

    /// A short name, as the fuzz exercises report it.
    #[cfg(feature = "internals")]
    pub fn name(self) -> &'static str {
        match self {
            Path::Undecodable => "undecodable",
            Path::Broadcast => "broadcast",
            Path::DuplicateBroadcast => "duplicate-broadcast",
            Path::Expired => "expired",
            Path::RenegotiateCompression => "renegotiate-compression",
            Path::RenegotiateResend => "renegotiate-resend",
            Path::RenegotiateOther => "renegotiate-other",
            Path::Handshake => "handshake",
            Path::RepeatedHandshake => "repeated-handshake",
            Path::RefusedHandshake => "refused-handshake",
            Path::Peers => "peers",
            Path::IgnoredHandshakeOrPeers => "ignored-handshake-or-peers",
            Path::RequestPeers => "request-peers",
            Path::RequestRoute => "request-route",
            Path::Response => "response",
            Path::ResponseMatched => "response-matched",
            Path::Store => "store",
            Path::Delivered => "delivered",
            Path::Unknown => "unknown-subflag",
        }
    }
}

/// Counters shown by `status`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub received: u64,
    pub relayed: u64,
    pub duplicates: u64,
    pub expired: u64,
    pub decode_errors: u64,
    pub refused_subnet: u64,
    pub handler_panics: u64,
}

/// Told of each [`Path`] a frame takes (the fuzz harness counts them).
pub type PathObserver = Box<dyn FnMut(Path) + Send>;
