//! The mesh node as a state machine: py2p's mesh.py behaviour, driven by the event loop (or
//! by a test) through [`py2p_net::Service`], with no sockets of its own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, error, info, warn};
use py2p_net::{CloseReason, ConnId, ConnInfo, Frame, Net, Service};
use py2p_wire::{base58, compression, Compression, Flag, Limits, WireError};
use sha2::{Digest, Sha384};

use super::peer::{self, LastSent, Peer};
use super::resolver::{Resolution, Resolver, Sink, Then};
use super::seen::Seen;
use super::shared::Shared;
use super::{Command, ConnectReply, Handler, Status};
use crate::config::MeshConfig;
use crate::connection::{is_user_sub_flag, ConnectError, Connection};
use crate::id::id_cmp;
use crate::message::{Message, MessageKind, PeerEvent, PeerInfo};
use crate::sync::SyncTable;

/// A dial in progress: who we expect, and whispers to deliver once connected.
struct Dial {
    addr: SocketAddr,
    expected_id: Option<String>,
    deferred: Vec<Vec<Vec<u8>>>,
}

/// Whispers waiting for a route to their target (request/response).
struct PendingRequest {
    target: String,
    messages: Vec<Vec<Vec<u8>>>,
    created: Instant,
}

/// The ways a frame from a peer can go through a node's handlers, counted per node
/// ([`Counters::paths`]) so that the fuzz targets can show that their corpus reaches each.
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
    pub(crate) const ALL: [Path; 19] = [
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
    /// Frames by the way they went (indexed by `Path as usize`).
    pub paths: [u64; Path::ALL.len()],
}

impl Counters {
    fn hit(&mut self, path: Path) {
        if let Some(n) = self.paths.get_mut(path as usize) {
            *n += 1;
        }
    }
}

pub_if_internals! {
/// The state of one mesh node.
pub(crate) struct MeshCore {
    pub(crate) config: MeshConfig,
    pub(crate) id: String,
    pub(crate) protocol_id: String,
    pub(crate) out_addr: (String, u16),
    limits: Limits,
    peers: HashMap<ConnId, Peer>,
    routing: HashMap<String, ConnId>,
    dials: HashMap<ConnId, Dial>,
    seen: Seen,
    requests: HashMap<String, PendingRequest>,
    handlers: Vec<Handler>,
    pub(crate) shared: Arc<Shared>,
    counters: Counters,
    /// The sync table of a sync node (see `crate::sync`).
    pub sync: Option<SyncTable>,
    /// The chord table of a chord node (see `crate::chord`).
    pub chord: Option<crate::chord::ChordTable>,
    request_counter: u64,
    /// Peers lost without our doing, redialled now and then (see `MeshConfig::reconnect_for`).
    lost: HashMap<String, LostPeer>,
    /// Host names peers advertise, looked up off the loop's thread.
    resolver: Resolver,
    /// The user's `connect`s in progress, by connection: told when the handshake is in.
    waiters: HashMap<ConnId, (SocketAddr, ConnectReply)>,
    /// The routing table changed since it was last published for `peers()`.
    peers_dirty: bool,
    /// When the status was last published.
    published_at: Option<Instant>,
    /// The handles handlers get, by connection: made once per connection (and again after
    /// its handshake), not once per message.
    conn_handles: HashMap<ConnId, Connection>,
    /// Frames are decompressed here, one after the other (no allocation per frame).
    scratch: Vec<u8>,
}
}

/// The decompression buffer is given back when a frame grew it past this.
const SCRATCH_KEEP: usize = 64 << 10;

/// A peer whose connection broke: where to find it again, and when to try.
struct LostPeer {
    addr: (String, u16),
    since: Instant,
    next_try: Instant,
    attempts: u32,
}

impl MeshCore {
    pub fn new(
        config: MeshConfig,
        id: String,
        out_addr: (String, u16),
        shared: Arc<Shared>,
        sync: Option<SyncTable>,
    ) -> Self {
        let limits = config.net.limits;
        let protocol_id = config.protocol.id();
        let seen = Seen::new(config.seen_capacity, config.message_expiry.as_secs());
        MeshCore {
            config,
            id,
            protocol_id,
            out_addr,
            limits,
            peers: HashMap::new(),
            routing: HashMap::new(),
            dials: HashMap::new(),
            seen,
            requests: HashMap::new(),
            handlers: Vec::new(),
            shared,
            counters: Counters::default(),
            sync,
            chord: None,
            request_counter: 0,
            lost: HashMap::new(),
            resolver: Resolver::new(),
            waiters: HashMap::new(),
            peers_dirty: true,
            published_at: None,
            conn_handles: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    // ----- what the user's threads see -----

    /// Publishes the routing table for `peers()` (before any peer event that changes it).
    fn publish_peers(&mut self) {
        self.peers_dirty = false;
        // The status copy counts the peers too: it is made again at the next chance.
        self.published_at = None;
        let peers = self.peer_infos();
        self.shared.published().peers = peers;
    }

    /// Publishes the status for `status()` calls made while the loop is busy in a handler.
    /// Unless the published copy is younger than `max_age` and the routing table did not
    /// change since: a loop turning fast (a flood of small messages) spends its time on them,
    /// not on copies of the status.
    fn publish_status(&mut self, max_age: std::time::Duration) {
        let routing_changed = self.peers_dirty || self.published_at.is_none();
        if self.peers_dirty {
            self.publish_peers();
        }
        let now = Instant::now();
        if !routing_changed
            && self
                .published_at
                .is_some_and(|t| now.duration_since(t) < max_age)
        {
            return;
        }
        self.published_at = Some(now);
        let status = self.status();
        self.shared.published().status = Some(status);
    }

    /// An error for `status()`, with the log line it came with.
    fn note_error(&self, text: String) {
        self.shared.note_error(text);
    }

    /// Tells a waiting `connect` how it ended.
    fn finish_connect(&mut self, conn: ConnId, result: Result<String, ConnectError>) {
        let Some((addr, reply)) = self.waiters.remove(&conn) else {
            return;
        };
        if let Err(e) = &result {
            self.note_error(format!("connect to {addr}: {e}"));
        }
        self.answer_connect(addr, reply, result);
    }

    /// Tells whoever waits on a `connect` to `addr` how it ended: the waiting thread or the
    /// callback either way, the event stream only of a failure.
    fn answer_connect(
        &self,
        addr: SocketAddr,
        reply: ConnectReply,
        result: Result<String, ConnectError>,
    ) {
        match (reply, result) {
            (ConnectReply::Wait(tx), result) => {
                let _ = tx.send(result);
            }
            (ConnectReply::Notify(tell), result) => tell(result),
            (ConnectReply::Event, Err(error)) => self
                .shared
                .push_event(PeerEvent::ConnectFailed { addr, error }),
            _ => {}
        }
    }

    /// The user's `connect`: a dial, answered once the peer's handshake is in.
    fn user_connect(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        reply: ConnectReply,
    ) {
        if let Some(id) = expected_id
            .as_ref()
            .filter(|id| self.routing.contains_key(*id))
        {
            self.answer_connect(addr, reply, Ok(id.clone()));
            return;
        }
        let host = addr.ip().to_string();
        if self.is_self_addr(&host, addr.port()) {
            self.answer_connect(addr, reply, Err(ConnectError::SelfConnection));
            return;
        }
        match self.dial(net, addr, expected_id, Vec::new()) {
            Ok(conn) => {
                self.waiters.insert(conn, (addr, reply));
            }
            Err(text) => {
                let error = ConnectError::Io(std::io::ErrorKind::Other, text);
                self.note_error(format!("connect to {addr}: {error}"));
                self.answer_connect(addr, reply, Err(error));
            }
        }
    }

    // ----- sending -----

    /// A message from this node, stamped now.
    pub(crate) fn own_message(
        &self,
        net: &dyn Net,
        msg_type: Flag,
        payload: Vec<Vec<u8>>,
    ) -> py2p_wire::Message {
        py2p_wire::Message::new(
            vec![msg_type.0],
            self.id.as_bytes().to_vec(),
            payload,
            net.unix_time(),
        )
    }

    fn frame_for(&self, conn: ConnId, msg: &py2p_wire::Message) -> Option<Vec<u8>> {
        let peer = self.peers.get(&conn)?;
        Some(msg.encode(peer.compression.first().copied()))
    }

    /// Sends a message of ours to one connection, remembering it for `resend` and, for
    /// broadcasts, in the seen set (py2p remembers every message it sends).
    pub(crate) fn send_to(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        msg_type: Flag,
        payload: Vec<Vec<u8>>,
    ) {
        let msg = self.own_message(net, msg_type, payload);
        if msg_type == Flag::BROADCAST {
            self.seen.insert(msg.id(), msg.time());
        }
        if let Some(frame) = self.frame_for(conn, &msg) {
            // Only user messages are kept for `resend` (py2p keeps any whisper, which makes
            // every peer hold on to its handshake's peer list).
            let user = matches!(
                msg.payload().first().map(Vec::as_slice),
                Some([0x00] | [0x02])
            );
            if (msg_type == Flag::BROADCAST || msg_type == Flag::WHISPER) && user {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.last_sent = Some(LastSent {
                        msg_type: msg_type.0,
                        payload: msg.payload().into(),
                        time: msg.time(),
                    });
                }
            }
            net.send(conn, frame.into());
        }
    }

    /// Sends one message to every routed peer but `except`, encoding it once per compression
    /// and sharing each encoding among the peers that use it (no copy per peer).
    fn send_all(
        &mut self,
        net: &mut dyn Net,
        msg: &py2p_wire::Message,
        except: &[ConnId],
    ) -> usize {
        let mut frames: Vec<(Option<Compression>, Frame)> = Vec::new();
        let mut targets: Vec<ConnId> = self
            .routing
            .values()
            .copied()
            .filter(|c| !except.contains(c))
            .collect();
        targets.sort_unstable();
        targets.dedup();
        for &conn in &targets {
            let Some(peer) = self.peers.get(&conn) else {
                continue;
            };
            let method = peer.compression.first().copied();
            let frame = match frames.iter().find(|(m, _)| *m == method) {
                Some((_, f)) => f.clone(),
                None if targets.len() == 1 => msg.encode(method).into(),
                None => {
                    let f = Frame::shared(msg.encode(method));
                    frames.push((method, f.clone()));
                    f
                }
            };
            net.send(conn, frame);
        }
        targets.len()
    }

    /// A broadcast of ours to every peer.
    pub(crate) fn broadcast(&mut self, net: &mut dyn Net, payload: Vec<Vec<u8>>) {
        let msg = self.own_message(net, Flag::BROADCAST, payload);
        self.seen.insert(msg.id(), msg.time());
        let last = LastSent {
            msg_type: Flag::BROADCAST.0,
            payload: msg.payload().into(),
            time: msg.time(),
        };
        for conn in self.routing.values() {
            if let Some(p) = self.peers.get_mut(conn) {
                p.last_sent = Some(last.clone());
            }
        }
        self.send_all(net, &msg, &[]);
    }

    /// A whisper to `target`: directly when routed, else through request/response.
    pub(crate) fn whisper(&mut self, net: &mut dyn Net, target: String, packets: Vec<Vec<u8>>) {
        self.whisper_with(net, target, Flag::WHISPER.0, packets);
    }

    /// A whisper with the user's `sub_flag`.
    pub(crate) fn whisper_with(
        &mut self,
        net: &mut dyn Net,
        target: String,
        sub_flag: u8,
        packets: Vec<Vec<u8>>,
    ) {
        let mut payload = Vec::with_capacity(packets.len() + 1);
        payload.push(vec![sub_flag]);
        payload.extend(packets);
        if let Some(&conn) = self.routing.get(&target) {
            self.send_to(net, conn, Flag::WHISPER, payload);
            return;
        }
        // A dial to the target already under way takes the whisper along.
        if let Some(dial) = self
            .dials
            .values_mut()
            .find(|d| d.expected_id.as_deref() == Some(target.as_str()))
        {
            dial.deferred.push(payload);
            return;
        }
        // A request for this target just sent: the whisper waits with the others.
        let now_i = net.now();
        if let Some(pending) = self.requests.values_mut().find(|r| {
            r.target == target
                && now_i.duration_since(r.created) < std::time::Duration::from_secs(2)
        }) {
            pending.messages.push(payload);
            return;
        }
        // py2p hashes the target id and the time; peers only echo the request id, so ours also
        // hashes our own id and a counter: two requests (from two nodes, or one node twice in a
        // second) never share an id and are never dropped as one broadcast seen twice.
        let now = net.unix_time();
        self.request_counter += 1;
        let digest = Sha384::new()
            .chain_update(target.as_bytes())
            .chain_update(base58::U64Text::new(now).as_bytes())
            .chain_update(self.id.as_bytes())
            .chain_update(self.request_counter.to_be_bytes())
            .finalize();
        let request_id = base58::encode_be_bytes(&digest);
        if self.routing.is_empty() {
            warn!(
                "whisper to {target}: no peers to ask for a route; it waits {}s for one",
                self.config.request_timeout.as_secs()
            );
        } else {
            debug!("whisper to {target}: not connected, asking peers (request {request_id})");
        }
        self.requests.insert(
            request_id.clone(),
            PendingRequest {
                target: target.clone(),
                messages: vec![payload],
                created: net.now(),
            },
        );
        self.broadcast(
            net,
            vec![
                vec![Flag::REQUEST.0],
                request_id.into_bytes(),
                target.into_bytes(),
            ],
        );
    }

    fn handshake_payload(&self) -> Vec<Vec<u8>> {
        vec![
            vec![Flag::HANDSHAKE.0],
            self.id.as_bytes().to_vec(),
            self.protocol_id.as_bytes().to_vec(),
            peer::addr_json(&self.out_addr.0, self.out_addr.1).into_bytes(),
            compression::to_json(&self.config.compressions).into_bytes(),
        ]
    }

    /// The `peers` list for the peer on `conn`: at most `max_peer_list` entries (py2p sends
    /// all, which costs a node with a thousand peers 44 MB of lists as they join; a joiner
    /// dials only `max_outgoing` of them). Sorted, then a window starting at a place that
    /// depends on the connection, so that different joiners hear of different peers and a
    /// simulated network still replays exactly from its seed.
    fn peer_list(&self, conn: ConnId) -> String {
        let mut entries: Vec<(&str, &(String, u16))> = self
            .routing
            .iter()
            .filter_map(|(id, c)| Some((id.as_str(), self.peers.get(c)?.addr.as_ref()?)))
            .collect();
        entries.sort_unstable();
        let n = entries.len();
        let take = n.min(self.config.max_peer_list);
        let start = if n > take {
            (conn.0 as usize).wrapping_mul(7919) % n
        } else {
            0
        };
        peer::peer_list_json((0..take).filter_map(|i| entries.get((start + i) % n).copied()))
    }

    fn request_peers(&mut self, net: &mut dyn Net) {
        let mut conns: Vec<ConnId> = self.routing.values().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.send_to(
                net,
                conn,
                Flag::WHISPER,
                vec![vec![Flag::REQUEST.0], b"*".to_vec()],
            );
        }
    }

    // ----- dialling -----

    fn outgoing_count(&self) -> usize {
        self.dials.len()
            + self
                .peers
                .values()
                .filter(|p| p.outgoing && p.superseded.is_none())
                .count()
    }

    fn is_self_addr(&self, host: &str, port: u16) -> bool {
        port == self.out_addr.1
            && (host == self.out_addr.0 || (is_loopback(host) && is_loopback(&self.out_addr.0)))
    }

    pub(crate) fn dial(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        deferred: Vec<Vec<Vec<u8>>>,
    ) -> Result<ConnId, String> {
        match net.dial(addr) {
            Ok(conn) => {
                self.dials.insert(
                    conn,
                    Dial {
                        addr,
                        expected_id,
                        deferred,
                    },
                );
                Ok(conn)
            }
            Err(e) => {
                warn!("cannot dial {addr}: {e}");
                self.note_error(format!("cannot dial {addr}: {e}"));
                Err(e.to_string())
            }
        }
    }

    /// Dials an address a peer advertised (`then` says whom we expect and what to send),
    /// looking a host name up on the resolver's thread rather than here.
    fn dial_advertised(
        &mut self,
        net: &mut dyn Net,
        host: &str,
        port: u16,
        then: Then,
        purpose: Purpose,
    ) {
        let handle = self.shared.handle.get().cloned();
        let sink = move || -> Option<Sink> {
            let handle = handle?;
            Some(Box::new(move |lookup| {
                handle.send(Command::Resolved((lookup, purpose))).is_ok()
            }))
        };
        match self.resolver.resolve(host, port, then, sink) {
            Resolution::Now(addr, then) => self.dial_resolved(net, addr, then, purpose),
            Resolution::Later => debug!("looking up {host}:{port} ({purpose:?})"),
            Resolution::Refused(then) => warn!(
                "cannot look up {host}:{port} now ({} lookups waiting; {purpose:?}){}",
                self.resolver.pending(),
                dropped_note(&then)
            ),
        }
    }

    /// Dials an address found for [`MeshCore::dial_advertised`], unless the peer was reached
    /// meanwhile (then deferred whispers go over that connection).
    fn dial_resolved(&mut self, net: &mut dyn Net, addr: SocketAddr, then: Then, purpose: Purpose) {
        if let Some(id) = &then.expected_id {
            if let Some(&conn) = self.routing.get(id) {
                for payload in then.deferred {
                    self.send_to(net, conn, Flag::WHISPER, payload);
                }
                return;
            }
            if then.deferred.is_empty() && self.knows(id) {
                return;
            }
        }
        if purpose == Purpose::PeersList
            && (self.outgoing_count() >= self.config.max_outgoing || self.dialling(addr))
        {
            return;
        }
        match &then.expected_id {
            Some(id) => debug!("dialling {id} at {addr} ({purpose:?})"),
            None => debug!("dialling {addr} ({purpose:?})"),
        }
        let _ = self.dial(net, addr, then.expected_id, then.deferred);
    }

    /// Whether a connection we dialled to `addr` is still on its way (not yet answered with a
    /// handshake): a peers list naming that address must not make a second one (the user's
    /// `connect` has no id to match it by).
    fn dialling(&self, addr: SocketAddr) -> bool {
        self.dials.values().any(|d| d.addr == addr)
            || self
                .peers
                .values()
                .any(|p| p.outgoing && p.id.is_none() && p.tcp_addr == addr)
    }

    fn knows(&self, id: &str) -> bool {
        self.routing.contains_key(id)
            || self
                .dials
                .values()
                .any(|d| d.expected_id.as_deref() == Some(id))
    }

    // ----- incoming -----

    fn handle_decode_error(&mut self, net: &mut dyn Net, conn: ConnId, e: WireError) {
        self.counters.decode_errors += 1;
        self.counters.hit(Path::Undecodable);
        let max = self.config.max_decode_errors;
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.decode_errors += 1;
        let text = format!("{}: undecodable frame: {e}", peer.label());
        warn!("{text}");
        self.shared.note_error(text);
        let fatal = matches!(
            e,
            WireError::DecompressedTooLarge { .. } | WireError::TooManyPackets { .. }
        );
        if fatal || peer.decode_errors > max {
            warn!(
                "{}: closing after {} undecodable frame(s)",
                peer.label(),
                peer.decode_errors
            );
            net.close(conn);
            return;
        }
        // py2p's recovery: ask the peer to stop compressing and to send its last message again.
        self.send_to(
            net,
            conn,
            Flag::RENEGOTIATE,
            vec![vec![Flag::COMPRESSION.0], b"[]".to_vec()],
        );
        self.send_to(net, conn, Flag::RENEGOTIATE, vec![vec![Flag::RESEND.0]]);
    }

    fn handle_renegotiate(&mut self, net: &mut dyn Net, conn: ConnId, payload: &[Vec<u8>]) {
        let ours = self.config.compressions.clone();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        let flag = payload.first().and_then(|f| Flag::from_packet(f));
        self.counters.hit(match flag {
            Some(Flag::COMPRESSION) => Path::RenegotiateCompression,
            Some(Flag::RESEND) => Path::RenegotiateResend,
            _ => Path::RenegotiateOther,
        });
        match flag {
            Some(Flag::COMPRESSION) => {
                let list = payload
                    .get(1)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                let theirs = match compression::from_json(&list) {
                    Ok(t) => t,
                    Err(e) => {
                        warn!("{}: bad renegotiate list: {e}", peer.label());
                        return;
                    }
                };
                let respond = peer.theirs != theirs;
                self.peers_dirty = true;
                peer.compression = compression::negotiate(&ours, &theirs);
                peer.theirs = theirs;
                debug!("{}: compression now {:?}", peer.label(), peer.compression);
                if respond {
                    let json = compression::to_json(&peer.compression);
                    self.send_to(
                        net,
                        conn,
                        Flag::RENEGOTIATE,
                        vec![vec![Flag::COMPRESSION.0], json.into_bytes()],
                    );
                }
            }
            Some(Flag::RESEND) => {
                let Some(last) = peer.last_sent.clone() else {
                    return;
                };
                // The same message again: same time, same id (py2p stamps it anew, and then
                // every peer that had it already delivers it a second time).
                debug!("{}: resending the last message", peer.label());
                let msg = py2p_wire::Message::new(
                    vec![last.msg_type],
                    self.id.as_bytes().to_vec(),
                    last.payload.to_vec(),
                    last.time,
                );
                if let Some(frame) = self.frame_for(conn, &msg) {
                    net.send(conn, frame.into());
                }
            }
            _ => debug!("{}: unknown renegotiate message", peer.label()),
        }
    }

    fn handle_handshake(&mut self, net: &mut dyn Net, conn: ConnId, payload: &[Vec<u8>]) {
        // The handlers' handle names the peer: made again after this.
        self.conn_handles.remove(&conn);
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let label = peer.label();
        let [_, id, protocol_id, addr, methods] = payload else {
            return;
        };
        if protocol_id.as_slice() != self.protocol_id.as_bytes() {
            self.counters.refused_subnet += 1;
            let theirs = String::from_utf8_lossy(protocol_id).into_owned();
            warn!("{label}: peer runs another protocol ({theirs}); closing");
            self.note_error(format!("{label}: peer runs another protocol ({theirs})"));
            self.finish_connect(conn, Err(ConnectError::ProtocolMismatch { theirs }));
            self.counters.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        }
        let Ok(id) = String::from_utf8(id.clone()) else {
            warn!("{label}: handshake id is not text; closing");
            self.counters.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        };
        if id == self.id {
            debug!("{label}: connected to ourselves; closing");
            self.finish_connect(conn, Err(ConnectError::SelfConnection));
            self.counters.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        }
        let known = self.peers.get(&conn).and_then(|p| p.id.clone());
        match known {
            Some(old) if old != id => {
                // One connection, one node: a peer that changes its id is not believed (each
                // new id would otherwise stay in the routing table for good).
                warn!("{label}: handshake with a new id {id}; closing");
                self.counters.hit(Path::RefusedHandshake);
                net.close(conn);
                return;
            }
            Some(_) => {
                // A repeated handshake may update the compression list; it gets no new peers
                // list (a cheap message must not buy an expensive answer).
                if let Ok(theirs) = compression::from_json(&String::from_utf8_lossy(methods)) {
                    let ours = self.config.compressions.clone();
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.compression = compression::negotiate(&ours, &theirs);
                        p.theirs = theirs;
                    }
                }
                debug!("{label}: repeated handshake");
                self.counters.hit(Path::RepeatedHandshake);
                return;
            }
            None => {}
        }
        let addr = serde_json::from_slice(addr)
            .ok()
            .and_then(|v| peer::parse_addr(&v));
        let theirs = compression::from_json(&String::from_utf8_lossy(methods));
        let (Some(addr), Ok(theirs)) = (addr, theirs) else {
            warn!("{label}: malformed handshake (address or compression list); closing");
            self.counters.hit(Path::RefusedHandshake);
            net.close(conn);
            return;
        };
        let mut replaced = false;
        if let Some(&other) = self.routing.get(&id).filter(|&&other| other != conn) {
            let this_outgoing = self.peers.get(&conn).is_some_and(|p| p.outgoing);
            let other_outgoing = self.peers.get(&other).is_some_and(|p| p.outgoing);
            if !this_outgoing && !other_outgoing {
                // Both dialled by the peer (it dialled one address under two ids, say): the
                // peer decides which one stays, since the two ends may see the handshakes in
                // different orders and each keep another one (then both close theirs and the
                // link is down until a redial). This end routes the newer and keeps the
                // older open, to fall back on (see `on_close`) when the peer closes one.
                debug!("second connection from peer {id}: {conn} routed, {other} kept as a spare");
                replaced = true;
            } else {
                // Both ends keep the connection dialled by the node with the larger id.
                let keep_outgoing = id_cmp(&self.id, &id) == std::cmp::Ordering::Greater;
                let keep_this = this_outgoing == keep_outgoing || other_outgoing != keep_outgoing;
                let kill = if keep_this { other } else { conn };
                info!(
                    "connection conflict with peer {id}: keeping {}, closing {kill}",
                    if keep_this { conn } else { other }
                );
                // Not closed yet: frames may be on their way over it, and the peer closes
                // its end once it sees both handshakes (on_tick closes it otherwise).
                let now = net.now();
                if let Some(p) = self.peers.get_mut(&kill) {
                    p.superseded = Some(now);
                }
                replaced = keep_this;
            }
        }
        let ours = self.config.compressions.clone();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.id = Some(id.clone());
        peer.addr = Some(addr.clone());
        peer.compression = compression::negotiate(&ours, &theirs);
        peer.theirs = theirs;
        if peer.superseded.is_some() {
            // Frames still arriving on it are read as the peer's; nothing more is sent.
            self.counters.hit(Path::RefusedHandshake);
            self.finish_connect(conn, Ok(id));
            return;
        }
        info!(
            "{}: handshake complete (advertises {}:{}, compression {:?})",
            peer.label(),
            addr.0,
            addr.1,
            peer.compression.first()
        );
        self.counters.hit(Path::Handshake);
        self.lost.remove(&id);
        let newly_routed = self.routing.insert(id.clone(), conn).is_none() && !replaced;
        let list = self.peer_list(conn);
        self.send_to(
            net,
            conn,
            Flag::WHISPER,
            vec![vec![Flag::PEERS.0], list.into_bytes()],
        );
        if let Some(sync) = self.sync.take() {
            sync.send_all_keys(self, net, conn);
            self.sync = Some(sync);
        }
        // `peers()` shows the peer before anyone hears of it.
        self.publish_peers();
        self.finish_connect(conn, Ok(id.clone()));
        if newly_routed {
            self.with_chord(|chord, core| chord.on_peer_up(core, net, &id));
            self.shared.push_event(PeerEvent::Connected { id, addr });
        }
    }

    fn handle_peers(&mut self, net: &mut dyn Net, conn: ConnId, payload: &[Vec<u8>]) {
        self.counters.hit(Path::Peers);
        let Some(list) = payload.get(1).and_then(|p| peer::parse_peer_list(p)) else {
            debug!("{conn}: malformed peers list");
            return;
        };
        for ((host, port), id) in list {
            if self.outgoing_count() >= self.config.max_outgoing {
                break;
            }
            if id == self.id || self.knows(&id) || self.is_self_addr(&host, port) {
                continue;
            }
            let then = Then {
                expected_id: Some(id),
                deferred: Vec::new(),
            };
            self.dial_advertised(net, &host, port, then, Purpose::PeersList);
        }
    }

    fn handle_request(&mut self, net: &mut dyn Net, conn: ConnId, payload: &[Vec<u8>]) {
        match payload {
            [_, star] if star.as_slice() == b"*" => {
                self.counters.hit(Path::RequestPeers);
                let list = self.peer_list(conn);
                self.send_to(
                    net,
                    conn,
                    Flag::WHISPER,
                    vec![vec![Flag::PEERS.0], list.into_bytes()],
                );
            }
            [_, request_id, target, ..] => {
                self.counters.hit(Path::RequestRoute);
                let Ok(target) = std::str::from_utf8(target) else {
                    return;
                };
                let Some(addr) = self
                    .routing
                    .get(target)
                    .and_then(|c| self.peers.get(c))
                    .and_then(|p| p.addr.clone())
                else {
                    return;
                };
                let answer = serde_json::Value::Array(vec![
                    serde_json::Value::Array(vec![addr.0.into(), addr.1.into()]),
                    target.into(),
                ]);
                self.send_to(
                    net,
                    conn,
                    Flag::BROADCAST,
                    vec![
                        vec![Flag::RESPONSE.0],
                        request_id.clone(),
                        answer.to_string().into_bytes(),
                    ],
                );
            }
            _ => {}
        }
    }

    fn handle_response(&mut self, net: &mut dyn Net, payload: &[Vec<u8>]) {
        self.counters.hit(Path::Response);
        let [_, request_id, answer, ..] = payload else {
            return;
        };
        let Ok(request_id) = std::str::from_utf8(request_id) else {
            return;
        };
        let Some(pending) = self.requests.remove(request_id) else {
            return;
        };
        self.counters.hit(Path::ResponseMatched);
        let parsed: Option<((String, u16), String)> =
            serde_json::from_slice::<serde_json::Value>(answer)
                .ok()
                .and_then(|v| {
                    let pair = v.as_array()?;
                    Some((
                        peer::parse_addr(pair.first()?)?,
                        pair.get(1)?.as_str()?.to_owned(),
                    ))
                });
        let Some(((host, port), id)) = parsed else {
            warn!("malformed response to request {request_id}");
            return;
        };
        if id != pending.target {
            warn!(
                "response to request {request_id} names {id}, not {}",
                pending.target
            );
            return;
        }
        if let Some(&conn) = self.routing.get(&id) {
            for payload in pending.messages {
                self.send_to(net, conn, Flag::WHISPER, payload);
            }
            return;
        }
        let then = Then {
            expected_id: Some(id),
            deferred: pending.messages,
        };
        self.dial_advertised(net, &host, port, then, Purpose::Response);
    }

    /// The handle a handler gets on the connection `conn`.
    fn connection(&self, conn: ConnId) -> Connection {
        let peer = self.peers.get(&conn);
        Connection {
            conn,
            peer_id: peer.and_then(|p| p.id.clone()),
            addr: peer.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.tcp_addr),
            out_addr: peer.and_then(|p| p.addr.clone()),
            outgoing: peer.is_some_and(|p| p.outgoing),
            limits: self.limits,
            sender_id_len: self.id.len(),
            handle: self.shared.handle.get().cloned(),
        }
    }

    fn deliver(&mut self, conn: ConnId, msg: py2p_wire::Message) {
        // How it travelled: a broadcast went through the waterfall (and was de-duplicated);
        // anything else came to this node alone. A broadcast sub-flag in a message sent to
        // this node alone does not make it a broadcast: a peer could otherwise hand the user
        // a copy of a broadcast it already has.
        let kind = if Flag::from_packet(msg.msg_type()) == Some(Flag::BROADCAST) {
            MessageKind::Broadcast
        } else {
            MessageKind::Whisper
        };
        // Users' messages, their own sub-flags included, reach `recv`; the protocol's
        // (a `store` on a node without a table, say) reach only the handlers, as in py2p.
        let queued = msg.payload().first().is_some_and(|p| is_user_sub_flag(p));
        let message = Message { wire: msg, kind };
        if !self.handlers.is_empty() {
            // While the handlers run, `status()` is answered from the published copy.
            self.publish_status(std::time::Duration::from_millis(1));
            if !self.conn_handles.contains_key(&conn) {
                let handle = self.connection(conn);
                self.conn_handles.insert(conn, handle);
            }
            let Some(connection) = self.conn_handles.get(&conn) else {
                return;
            };
            self.shared
                .in_handler
                .store(true, std::sync::atomic::Ordering::Release);
            let mut taken = false;
            for handler in self.handlers.iter_mut() {
                match catch_unwind(AssertUnwindSafe(|| handler(&message, connection))) {
                    Ok(true) => {
                        taken = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) => {
                        self.counters.handler_panics += 1;
                        let text = format!(
                            "a message handler panicked on message {} from {}",
                            message.id(),
                            message.sender()
                        );
                        error!("{text}; the node goes on");
                        self.shared.note_error(text);
                    }
                }
            }
            self.shared
                .in_handler
                .store(false, std::sync::atomic::Ordering::Release);
            if taken {
                return;
            }
        }
        if queued {
            self.counters.hit(Path::Delivered);
            self.counters.received += 1;
            let bytes = message.wire.body_len();
            // Readers are woken once at the end of the loop's turn (`on_backlog`).
            self.shared.inbox.push_sized_later(message, bytes);
        } else {
            self.counters.hit(Path::Unknown);
            debug!(
                "ignoring message with sub-flag {:?} from {}",
                message.payload().first(),
                message.sender()
            );
        }
    }

    /// Dials peers lost without our doing again, backing off, for `reconnect_for`: after a
    /// partition heals, the two sides find each other again (py2p only asks its remaining
    /// peers for theirs, which cannot bridge a cut).
    fn redial_lost(&mut self, net: &mut dyn Net, now: Instant) {
        let give_up = self.config.reconnect_for;
        let mut due: Vec<String> = Vec::new();
        let connected_addrs: Vec<(String, u16)> =
            self.peers.values().filter_map(|p| p.addr.clone()).collect();
        // Found again (a handshake under its id): nothing more to do.
        let found: Vec<String> = self
            .lost
            .keys()
            .filter(|id| self.routing.contains_key(*id))
            .cloned()
            .collect();
        for id in found {
            self.lost.remove(&id);
        }
        self.lost.retain(|id, l| {
            let keep = now.duration_since(l.since) <= give_up && !connected_addrs.contains(&l.addr);
            if keep && l.next_try <= now {
                due.push(id.clone());
            }
            keep
        });
        due.sort_unstable();
        for id in due {
            // A dial under way (from a peer list, or the last try) is left to finish.
            let dialling = self
                .dials
                .values()
                .any(|d| d.expected_id.as_deref() == Some(id.as_str()));
            let Some(l) = self.lost.get_mut(&id) else {
                continue;
            };
            if dialling {
                l.next_try = now + self.config.reconnect_interval;
                continue;
            }
            l.attempts += 1;
            let backoff = self
                .config
                .reconnect_interval
                .saturating_mul(1 << l.attempts.min(4))
                .min(std::time::Duration::from_secs(60));
            l.next_try = now + backoff;
            let (host, port) = l.addr.clone();
            debug!(
                "redialling lost peer {id} at {host}:{port} (attempt {})",
                l.attempts
            );
            let then = Then {
                expected_id: Some(id),
                deferred: Vec::new(),
            };
            self.dial_advertised(net, &host, port, then, Purpose::Redial);
        }
    }

    /// Forgets the peers lost longest ago until at most `keep` remain.
    fn forget_lost_beyond(&mut self, keep: usize) {
        while self.lost.len() > keep {
            let Some(oldest) = self
                .lost
                .iter()
                .min_by(|a, b| a.1.since.cmp(&b.1.since).then_with(|| a.0.cmp(b.0)))
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            debug!("forgetting lost peer {oldest}: too many lost peers remembered");
            self.lost.remove(&oldest);
        }
    }

    /// Whether a message is older than `message_expiry` (then it is counted and dropped).
    fn too_old(&mut self, msg: &py2p_wire::Message, now: u64) -> bool {
        let old = msg
            .time()
            .saturating_add(self.config.message_expiry.as_secs())
            < now;
        if old {
            self.counters.expired += 1;
            self.counters.hit(Path::Expired);
            debug!(
                "dropping message {} from {}: {} s old",
                msg.id(),
                String::from_utf8_lossy(msg.sender()),
                now - msg.time()
            );
        }
        old
    }

    /// How many frames went each way through the handlers (see [`Path`]).
    #[cfg(feature = "internals")]
    pub fn paths(&self) -> Vec<(Path, u64)> {
        Path::ALL
            .iter()
            .map(|&p| (p, self.counters.paths.get(p as usize).copied().unwrap_or(0)))
            .collect()
    }

    fn status(&self) -> Status {
        Status {
            id: self.id.clone(),
            protocol_id: self.protocol_id.clone(),
            out_addr: self.out_addr.clone(),
            peers: self.routing.len(),
            connections: self.peers.len() + self.dials.len(),
            awaiting_handshake: self.peers.values().filter(|p| p.id.is_none()).count(),
            received: self.counters.received,
            relayed: self.counters.relayed,
            duplicates: self.counters.duplicates,
            expired: self.counters.expired,
            decode_errors: self.counters.decode_errors,
            refused_subnet: self.counters.refused_subnet,
            handler_panics: self.counters.handler_panics,
            seen_ids: self.seen.len(),
            pending_requests: self.requests.len(),
            lost_peers: self.lost.len(),
            inbox: self.shared.inbox.len(),
            errors: Vec::new(),
            errors_total: 0,
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .routing
            .iter()
            .filter_map(|(id, conn)| {
                let p = self.peers.get(conn)?;
                Some(PeerInfo {
                    id: id.clone(),
                    addr: p.addr.clone()?,
                    outgoing: p.outgoing,
                    compression: p.compression.first().copied(),
                    tls_version: p.tls_version,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

impl Service for MeshCore {
    type Command = Command;

    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
        let dial = self.dials.remove(&conn);
        let mut peer = Peer::new(conn, info.peer_addr, info.outgoing, net.now());
        peer.tls_version = info.tls_version;
        self.peers.insert(conn, peer);
        let handshake = self.handshake_payload();
        self.send_to(net, conn, Flag::WHISPER, handshake);
        if let Some(dial) = dial {
            for payload in dial.deferred {
                self.send_to(net, conn, Flag::WHISPER, payload);
            }
        }
    }

    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: Vec<u8>) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let plain = py2p_wire::PlainBody::unpack_in(
            &body,
            &peer.compression,
            &self.limits,
            &mut self.scratch,
        );
        // The waterfall brings most broadcasts several times: a copy whose id was seen is
        // dropped before the checksum and the packet copies. (A forged frame claiming a seen
        // id is dropped here too: the genuine message was delivered already.)
        if let Some(head) = plain.head() {
            if Flag::from_packet(head.msg_type) == Some(Flag::BROADCAST)
                && self.seen.contains_bytes(head.id)
            {
                self.counters.duplicates += 1;
                self.counters.hit(Path::DuplicateBroadcast);
                return;
            }
        }
        let decoded = plain.decode(&self.limits);
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => return self.handle_decode_error(net, conn, e),
        };
        if let Some(p) = self.peers.get_mut(&conn) {
            p.decode_errors = 0;
        }
        match Flag::from_packet(msg.msg_type()) {
            Some(Flag::BROADCAST) => {
                let now = net.unix_time();
                if self.too_old(&msg, now) {
                    return;
                }
                // Stamped further ahead than the expiry: a clock that is badly wrong, or a
                // lie. py2p takes these; here they would have to be remembered until their
                // time comes, so they are refused like the old ones.
                if msg.time() > now.saturating_add(self.config.message_expiry.as_secs()) {
                    self.counters.expired += 1;
                    self.counters.hit(Path::Expired);
                    warn!(
                        "dropping broadcast {} from {}: stamped {} s in the future",
                        msg.id(),
                        String::from_utf8_lossy(msg.sender()),
                        msg.time() - now
                    );
                    return;
                }
                if !self.seen.insert(msg.id(), msg.time()) {
                    self.counters.duplicates += 1;
                    self.counters.hit(Path::DuplicateBroadcast);
                    return;
                }
                self.counters.hit(Path::Broadcast);
                let origin = std::str::from_utf8(msg.sender())
                    .ok()
                    .and_then(|s| self.routing.get(s))
                    .copied();
                let except: Vec<ConnId> = std::iter::once(conn).chain(origin).collect();
                let n = self.send_all(net, &msg, &except);
                self.counters.relayed += n as u64;
            }
            Some(Flag::RENEGOTIATE) => return self.handle_renegotiate(net, conn, msg.payload()),
            _ => {}
        }
        let whisper = Flag::from_packet(msg.msg_type()) == Some(Flag::WHISPER);
        if self.chord.is_some() && crate::chord::is_chord(msg.payload()) {
            return self.with_chord(|chord, core| chord.on_message(core, net, conn, msg.payload()));
        }
        let sub = msg.payload().first().and_then(|p| Flag::from_packet(p));
        match sub {
            // Handshakes and peer lists describe the connection they arrive on: py2p sends
            // them as whispers, and a relayed broadcast copy must not pass for one.
            Some(Flag::HANDSHAKE) if msg.payload().len() == 5 && whisper => {
                self.handle_handshake(net, conn, msg.payload())
            }
            Some(Flag::PEERS) if whisper => self.handle_peers(net, conn, msg.payload()),
            Some(Flag::HANDSHAKE | Flag::PEERS) => {
                self.counters.hit(Path::IgnoredHandshakeOrPeers);
                debug!(
                    "ignoring a handshake or peers list sent as a broadcast by {}",
                    String::from_utf8_lossy(msg.sender())
                );
            }
            Some(Flag::RESPONSE) => self.handle_response(net, msg.payload()),
            Some(Flag::REQUEST) => self.handle_request(net, conn, msg.payload()),
            Some(Flag::STORE) if self.sync.is_some() => {
                self.counters.hit(Path::Store);
                if let Some(mut sync) = self.sync.take() {
                    let via = self
                        .peers
                        .get(&conn)
                        .map_or_else(|| conn.to_string(), Peer::label);
                    sync.handle_store(net.unix_time(), &msg, &via);
                    self.sync = Some(sync);
                }
            }
            _ => {
                // Broadcasts were checked above; an old whisper (held up by a partition, say)
                // is dropped by the same rule, so users never see a message past the expiry.
                if self.too_old(&msg, net.unix_time()) {
                    return;
                }
                self.deliver(conn, msg)
            }
        }
    }

    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason) {
        self.conn_handles.remove(&conn);
        self.finish_connect(conn, Err(ConnectError::from_close(reason)));
        if let Some(dial) = self.dials.remove(&conn) {
            info!(
                "dial {conn} to {} failed: {reason}{}",
                dial.expected_id.as_deref().unwrap_or("a new peer"),
                if dial.deferred.is_empty() {
                    String::new()
                } else {
                    format!("; {} whisper(s) dropped", dial.deferred.len())
                }
            );
            return;
        }
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        if peer.superseded.is_some() {
            return;
        }
        let Some(id) = peer.id.clone() else {
            debug!("{}: closed before its handshake: {reason}", peer.label());
            return;
        };
        if self.routing.get(&id) == Some(&conn) {
            // A spare connection to the same node (a second one it dialled) takes over.
            let spare = self
                .peers
                .values()
                .filter(|p| p.superseded.is_none() && p.id.as_deref() == Some(id.as_str()))
                .map(|p| p.conn)
                .min();
            if let Some(spare) = spare {
                debug!(
                    "{}: closed; {spare} to the same peer takes over",
                    peer.label()
                );
                self.routing.insert(id, spare);
                self.peers_dirty = true;
                return;
            }
            self.routing.remove(&id);
            self.publish_peers();
            if matches!(reason, CloseReason::PeerClosed | CloseReason::Io(_))
                && !self.config.reconnect_for.is_zero()
            {
                if let Some(addr) = peer.addr.clone() {
                    let now = net.now();
                    self.forget_lost_beyond(self.config.max_lost_peers.saturating_sub(1));
                    self.lost.insert(
                        id.clone(),
                        LostPeer {
                            addr,
                            since: now,
                            next_try: now + self.config.reconnect_interval,
                            attempts: 0,
                        },
                    );
                }
            }
            info!("{}: disconnected: {reason}", peer.label());
            self.with_chord(|chord, core| chord.on_peer_down(core, net, &id));
            self.shared.push_event(PeerEvent::Disconnected { id });
            // py2p asks its remaining peers for theirs after a loss.
            self.request_peers(net);
        }
    }

    fn on_command(&mut self, net: &mut dyn Net, cmd: Command) {
        match cmd {
            Command::Broadcast { packets, bytes } => {
                let mut payload = Vec::with_capacity(packets.len() + 1);
                payload.push(vec![Flag::BROADCAST.0]);
                payload.extend(packets);
                self.broadcast(net, payload);
                // The bytes are in the write queues now: senders see them at once.
                self.shared.command_done(bytes, net.total_queued());
            }
            Command::Whisper { target, packets } => self.whisper(net, target, packets),
            Command::Connect {
                addr,
                expected_id,
                reply,
            } => self.user_connect(net, addr, expected_id, reply),
            Command::SendWith {
                kind,
                sub_flag,
                packets,
                bytes,
            } => {
                let mut payload = Vec::with_capacity(packets.len() + 1);
                payload.push(vec![sub_flag]);
                payload.extend(packets);
                match kind {
                    MessageKind::Broadcast => self.broadcast(net, payload),
                    // py2p's `send(flag=whisper)`: to every peer it is connected to.
                    MessageKind::Whisper => {
                        let mut conns: Vec<ConnId> = self.routing.values().copied().collect();
                        conns.sort_unstable();
                        for conn in conns {
                            self.send_to(net, conn, Flag::WHISPER, payload.clone());
                        }
                    }
                }
                self.shared.command_done(bytes, net.total_queued());
            }
            Command::WhisperWith {
                target,
                sub_flag,
                packets,
            } => self.whisper_with(net, target, sub_flag, packets),
            Command::SendOn {
                conn,
                kind,
                payload,
            } => {
                let flag = match kind {
                    MessageKind::Broadcast => Flag::BROADCAST,
                    MessageKind::Whisper => Flag::WHISPER,
                };
                self.send_to(net, conn, flag, payload);
            }
            Command::RequestPeers => self.request_peers(net),
            Command::Disconnect { id } => {
                if let Some(&conn) = self.routing.get(&id) {
                    net.close(conn);
                }
            }
            Command::RegisterHandler(h) => self.handlers.push(h),
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Sync(cmd) => {
                if let Some(mut sync) = self.sync.take() {
                    sync.on_command(self, net, cmd);
                    self.sync = Some(sync);
                }
            }
            Command::Chord(cmd) => self.with_chord(|chord, core| chord.on_command(core, net, cmd)),
            Command::Resolved((lookup, purpose)) => match lookup.addr {
                Some(addr) => self.dial_resolved(net, addr, lookup.then, purpose),
                None => warn!(
                    "cannot resolve {}:{} ({purpose:?}){}",
                    lookup.host,
                    lookup.port,
                    dropped_note(&lookup.then)
                ),
            },
        }
    }

    fn on_tick(&mut self, net: &mut dyn Net) {
        let now = net.now();
        self.redial_lost(net, now);
        self.seen.expire(net.unix_time());
        let deadline = self.config.handshake_timeout;
        let mut stale: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.id.is_none() && now.duration_since(p.opened) > deadline)
            .map(|p| p.conn)
            .collect();
        stale.sort_unstable();
        for conn in stale {
            if let Some(p) = self.peers.get(&conn) {
                warn!("{}: no handshake within {:?}; closing", p.label(), deadline);
            }
            self.finish_connect(conn, Err(ConnectError::HandshakeTimeout));
            net.close(conn);
        }
        let grace = self.config.conflict_grace;
        let mut superseded: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.superseded.is_some_and(|t| now.duration_since(t) >= grace))
            .map(|p| p.conn)
            .collect();
        superseded.sort_unstable();
        for conn in superseded {
            debug!("{conn}: closing the connection not kept after a conflict");
            net.close(conn);
        }
        let timeout = self.config.request_timeout;
        let shared = &self.shared;
        self.requests.retain(|rid, r| {
            let keep = now.duration_since(r.created) <= timeout;
            if !keep {
                let text = format!(
                    "no route to {} within {timeout:?} (request {rid}): {} whisper(s) dropped",
                    r.target,
                    r.messages.len()
                );
                warn!("{text}");
                shared.note_error(text);
            }
            keep
        });
        self.with_chord(|chord, core| chord.on_tick(core, net));
    }

    /// At the connection limit, the oldest incoming connection still waiting for its
    /// handshake gives way: half-open connections cannot lock honest peers out.
    fn make_room(&mut self) -> Option<ConnId> {
        self.peers
            .values()
            .filter(|p| p.id.is_none() && !p.outgoing)
            .min_by_key(|p| (p.opened, p.conn))
            .map(|p| p.conn)
    }

    fn wants_input(&self) -> bool {
        let room = self.shared.inbox.has_room();
        self.shared
            .inbox
            .paused
            .store(!room, std::sync::atomic::Ordering::Release);
        room
    }

    fn on_backlog(&mut self, queued_bytes: usize) {
        self.shared.inbox.wake_waiters();
        self.shared.set_backlog(queued_bytes);
        self.publish_status(std::time::Duration::from_millis(10));
    }

    fn on_shutdown(&mut self) {
        if let Some(sync) = &self.sync {
            sync.events.close();
        }
        if let Some(chord) = &mut self.chord {
            chord.on_shutdown();
        }
        self.shared.close();
    }
}

/// What the chord table (`crate::chord`) needs of the mesh node.
impl MeshCore {
    /// Runs `f` on the chord table, if this is a chord node.
    fn with_chord(&mut self, f: impl FnOnce(&mut crate::chord::ChordTable, &mut MeshCore)) {
        if let Some(mut chord) = self.chord.take() {
            f(&mut chord, self);
            self.chord = Some(chord);
        }
    }

    /// The connection routed to the peer `id`.
    pub(crate) fn routed_conn(&self, id: &str) -> Option<ConnId> {
        self.routing.get(id).copied()
    }

    /// The id of the peer on `conn`, once its handshake is complete.
    pub(crate) fn peer_id_of(&self, conn: ConnId) -> Option<String> {
        self.peers.get(&conn)?.id.clone()
    }

    /// The peer on `conn` as log lines name it (id and address).
    pub(crate) fn peer_label_of(&self, conn: ConnId) -> String {
        self.peers
            .get(&conn)
            .map_or_else(|| conn.to_string(), Peer::label)
    }

    /// The ids of the routed peers, sorted.
    pub(crate) fn routed_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.routing.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An address from a peer's text; literal IPs need no lookup.
/// Why an advertised address is dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A peer from a peers list (counts against `max_outgoing`).
    PeersList,
    /// The target of a request/response, to deliver whispers.
    Response,
    /// A lost peer, dialled again.
    Redial,
}

/// What is lost with a request that cannot go ahead, for log lines.
fn dropped_note(then: &Then) -> String {
    match then.deferred.len() {
        0 => String::new(),
        n => format!("; {n} whisper(s) dropped"),
    }
}

#[cfg(test)]
mod waterfall_tests {
    //! The seen-check comes before the checksum: a copy of a seen broadcast costs no sha-384.

    use super::*;
    use py2p_net::{Frame, NetError};

    /// A network that only records: frames sent, nothing dialled.
    struct Quiet;

    impl Net for Quiet {
        fn send(&mut self, _conn: ConnId, _frame: Frame) {}
        fn dial(&mut self, _addr: SocketAddr) -> Result<ConnId, NetError> {
            Err(NetError::Closed)
        }
        fn close(&mut self, _conn: ConnId) {}
        fn queued(&self, _conn: ConnId) -> usize {
            0
        }
        fn total_queued(&self) -> usize {
            0
        }
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn unix_time(&self) -> u64 {
            1_700_000_000
        }
        fn shutdown(&mut self) {}
    }

    fn body(msg_type: u8, id: &str, payload: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let time = base58::encode_u64(1_700_000_000);
        let head: [&[u8]; 4] = [&[msg_type], b"sender", id.as_bytes(), time.as_bytes()];
        for p in head.into_iter().chain(payload.iter().copied()) {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn a_copy_claiming_a_seen_id_is_a_duplicate_before_its_checksum_is_checked() {
        let config = MeshConfig::builder().build();
        let shared = Arc::new(Shared::new(&config));
        let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1), shared, None);
        let mut net = Quiet;
        let conn = ConnId(7);
        let info = ConnInfo {
            peer_addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            outgoing: false,
            tls_version: None,
        };
        core.on_open(&mut net, conn, &info);
        let genuine = py2p_wire::Message::new(
            vec![Flag::BROADCAST.0],
            b"sender".to_vec(),
            vec![vec![Flag::BROADCAST.0], b"hello".to_vec()],
            1_700_000_000,
        );
        let genuine_body = genuine.encode(None).split_off(4);
        core.on_frame(&mut net, conn, genuine_body.clone());
        assert_eq!(core.counters.received, 1);
        // The same frame again, and one with the genuine id but another payload (its
        // checksum does not match): both are copies of a seen broadcast, dropped unchecked.
        core.on_frame(&mut net, conn, genuine_body);
        let forged = body(
            Flag::BROADCAST.0,
            genuine.id(),
            &[&[Flag::BROADCAST.0], b"bye"],
        );
        core.on_frame(&mut net, conn, forged.clone());
        assert_eq!(
            (
                core.counters.received,
                core.counters.duplicates,
                core.counters.decode_errors
            ),
            (1, 2, 0)
        );
        // An unseen id with a bad checksum is still a decode error.
        let unseen = body(
            Flag::BROADCAST.0,
            &base58::encode_be_bytes(&[7u8; 48]),
            &[&[Flag::BROADCAST.0], b"bye"],
        );
        core.on_frame(&mut net, conn, unseen);
        assert_eq!(core.counters.decode_errors, 1);
        // A whisper is never taken for a seen broadcast: it is checked and refused.
        let whisper = body(Flag::WHISPER.0, genuine.id(), &[&[Flag::WHISPER.0], b"bye"]);
        core.on_frame(&mut net, conn, whisper);
        assert_eq!(
            (core.counters.duplicates, core.counters.decode_errors),
            (2, 2)
        );
    }
}
