//! The inputs from the connections: one opened, a frame, one closed, time passing. Each is
//! handed to the concern that handles it.

use log::{debug, info};
use py2p_net::{CloseReason, ConnId, ConnInfo, Net};
use py2p_wire::{compression, Compression, Flag, Limits, WireError};

use super::effect::{Effect, Tables};
use super::out::Out;
use super::parked::PARK_BODY_MAX;
use super::path::Path;
use super::state::{MeshCore, SCRATCH_KEEP};
use super::waterfall::Received;
use crate::error::ConnectError;
use crate::mesh::peer::Peer;
use crate::mesh::seen::{key_bytes, Key, Seen};

/// How far [`MeshCore::take_frame`] took a frame.
pub(crate) enum Taken<'a> {
    /// Handled: dropped as a copy of a seen broadcast, or from a connection we do not know.
    Done,
    /// A broadcast parked for its id check, or a copy to drop after the ones parked before
    /// it (see `checks.rs`).
    Parked,
    /// Decoded (or not), for [`MeshCore::handle_ready`] once the parked ones are finished.
    Ready {
        /// The message, or why it did not decode.
        decoded: Result<py2p_wire::Message, WireError>,
        /// A broadcast's body as it arrived, for its relay.
        received: Option<Received<'a>>,
    },
}

/// How much of a snappy frame is decompressed to read its head first: the type, sender, id
/// and time packets of a broadcast between ids of 66 characters (sha-384 in base-58) take 155
/// bytes. A longer head is read by the full decompression, as any frame.
const HEAD_PEEK: usize = 168;

/// How many broadcasts that are no copies a peer's frames are peeked at for, after a copy
/// of a seen broadcast came from it. Between two nodes nothing is a copy, and peeking
/// costs a second decompression of the head; in a waterfall most frames are copies.
const PEEK_CREDIT: u8 = 16;

/// What the head of a snappy frame says before the rest is decompressed.
enum Peek {
    /// A broadcast whose id (its key) is in the seen set.
    Copy(Key),
    /// A broadcast not seen yet.
    Fresh,
    /// No broadcast, or a head longer than [`HEAD_PEEK`], or no valid snappy start.
    Unknown,
}

/// Decompresses the first [`HEAD_PEEK`] bytes of the snappy `body` into `scratch` and asks
/// `seen` about the broadcast id in them.
fn peek(body: &[u8], scratch: &mut Vec<u8>, limits: &Limits, seen: &Seen) -> Peek {
    if !compression::snappy_prefix_into(body, HEAD_PEEK, scratch) {
        return Peek::Unknown;
    }
    let head = py2p_wire::PlainBody::unpack(scratch, &[], limits);
    match head.head() {
        Some(head) if Flag::from_packet(head.msg_type) == Some(Flag::BROADCAST) => {
            let id = key_bytes(head.id);
            if seen.contains_key(id) {
                Peek::Copy(id)
            } else {
                Peek::Fresh
            }
        }
        _ => Peek::Unknown,
    }
}

impl MeshCore {
    /// A connection is open (dialled or accepted): our handshake goes out, then the
    /// whispers that waited for the dial.
    pub(crate) fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
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

    /// A frame from `conn`, taken as far as it goes alone: a copy of a seen broadcast is
    /// dropped; a short broadcast is decoded without its id check and parked, to be checked
    /// with the next ones (`checks.rs`); any other frame is decoded, and is handled
    /// ([`MeshCore::handle_ready`]) once the parked broadcasts before it are finished.
    pub(crate) fn take_frame<'a>(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        body: &'a [u8],
    ) -> Taken<'a> {
        self.parked.forget_closed();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return Taken::Done;
        };
        // The waterfall brings most broadcasts several times. From a peer that sends snappy,
        // the head alone is decompressed first while copies of seen broadcasts have been
        // arriving from it (`peek_credit`): a copy is dropped without decompressing the
        // rest (its payload). Else the whole body is decompressed at once, and its head
        // checked the same way; the head is the same bytes whenever the whole body
        // decompresses as snappy, and when it does not, the head is peeked at then, as it
        // was before: which frames are dropped does not depend on the credit.
        let snappy = peer.compression.first() == Some(&Compression::Snappy);
        let peek_first = snappy && peer.peek_credit > 0;
        // Whether the seen set was asked already: the head below is the same bytes (and
        // were it not, `relay`'s insert still refuses a seen id).
        let mut peeked = false;
        if peek_first {
            match peek(body, &mut self.scratch, &self.limits, &self.seen) {
                Peek::Copy(id) => {
                    peer.peek_credit = PEEK_CREDIT;
                    return self.drop_copy_in_turn(net, conn, id);
                }
                Peek::Fresh => peeked = true,
                Peek::Unknown => {}
            }
        }
        let mut plain = py2p_wire::PlainBody::unpack_in(
            body,
            &peer.compression,
            &self.limits,
            &mut self.scratch,
        );
        if snappy && !peek_first && plain.method() != Some(Compression::Snappy) {
            // Not a whole snappy block: what the peek finds in its start decides, as it did
            // before (rare: a broken or oversize frame).
            drop(plain);
            match peek(body, &mut self.scratch, &self.limits, &self.seen) {
                Peek::Copy(id) => {
                    peer.peek_credit = PEEK_CREDIT;
                    return self.drop_copy_in_turn(net, conn, id);
                }
                Peek::Fresh => peeked = true,
                Peek::Unknown => {}
            }
            plain = py2p_wire::PlainBody::unpack_in(
                body,
                &peer.compression,
                &self.limits,
                &mut self.scratch,
            );
        }
        // The waterfall brings most broadcasts several times: a copy whose id was seen is
        // dropped before the checksum and the packet copies. (A forged frame claiming a seen
        // id is dropped here too: the genuine message was delivered already.) Behind
        // parked broadcasts it is dropped in its turn (`drop_copy_in_turn`).
        let mut received = None;
        let mut park = None;
        if let Some(head) = plain.head() {
            if Flag::from_packet(head.msg_type) == Some(Flag::BROADCAST) {
                let id = key_bytes(head.id);
                if !peeked && self.seen.contains_key(id) {
                    peer.peek_credit = PEEK_CREDIT;
                    return self.drop_copy_in_turn(net, conn, id);
                }
                peer.peek_credit = peer.peek_credit.saturating_sub(1);
                received = Received::of(body, plain.method(), &head);
                if plain.as_bytes().len() <= PARK_BODY_MAX {
                    park = Some(id);
                }
            }
        }
        if let Some(key) = park {
            let decoded = plain.decode_unchecked(&self.limits);
            self.trim_scratch();
            return match decoded {
                Ok(msg) => {
                    self.park(conn, key, msg, received);
                    Taken::Parked
                }
                Err(e) => Taken::Ready {
                    decoded: Err(e),
                    received: None,
                },
            };
        }
        let decoded = plain.decode(&self.limits);
        self.trim_scratch();
        Taken::Ready { decoded, received }
    }

    /// The decompression buffer is given back when a frame grew it past [`SCRATCH_KEEP`].
    fn trim_scratch(&mut self) {
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
    }

    /// A frame from `conn` that [`MeshCore::take_frame`] decoded (`decoded`) and did not
    /// park, handled after the broadcasts parked before it. `tables` says which tables the
    /// node has.
    pub(crate) fn handle_ready(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        decoded: Result<py2p_wire::Message, WireError>,
        received: Option<Received<'_>>,
        tables: Tables,
    ) {
        if self.parked.closed(conn) {
            // Its connection was closed for a broadcast parked before it.
            return;
        }
        match decoded {
            Ok(msg) => self.handle_message(net, conn, msg, received, tables),
            Err(e) => {
                self.handle_decode_error(net, conn, e);
            }
        }
    }

    /// A message from `conn` whose id checked: relayed if a broadcast, then handled.
    pub(super) fn handle_message(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        msg: py2p_wire::Message,
        received: Option<Received<'_>>,
        tables: Tables,
    ) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.decode_errors = 0;
        }
        match Flag::from_packet(msg.msg_type()) {
            Some(Flag::BROADCAST) if !self.relay(net, conn, &msg, received) => return,
            Some(Flag::RENEGOTIATE) => return self.handle_renegotiate(net, conn, msg.payload()),
            _ => {}
        }
        let whisper = Flag::from_packet(msg.msg_type()) == Some(Flag::WHISPER);
        let chord = tables.chord
            && crate::chord::is_chord_packets(msg.payload().first(), msg.payload().len());
        let sub = msg.payload().first().and_then(Flag::from_packet);
        if chord {
            self.effects.push_back(Effect::Chord { conn, msg });
            return;
        }
        match sub {
            // Handshakes and peer lists describe the connection they arrive on: py2p sends
            // them as whispers, and a relayed broadcast copy must not pass for one.
            Some(Flag::HANDSHAKE) if msg.payload().len() == 5 && whisper => {
                self.handle_handshake(net, conn, msg.payload())
            }
            Some(Flag::PEERS) if whisper => self.handle_peers(net, conn, msg.payload()),
            Some(Flag::HANDSHAKE | Flag::PEERS) => {
                self.hit(Path::IgnoredHandshakeOrPeers);
                debug!(
                    "ignoring a handshake or peers list sent as a broadcast by {}",
                    String::from_utf8_lossy(msg.sender())
                );
            }
            Some(Flag::RESPONSE) => self.handle_response(net, msg.payload()),
            Some(Flag::REQUEST) => self.handle_request(net, conn, msg.payload()),
            Some(Flag::STORE) if tables.sync => {
                self.hit(Path::Store);
                self.effects.push_back(Effect::Store { conn, msg });
            }
            _ => {
                // Broadcasts were checked above; an old whisper (held up by a partition, say)
                // is dropped by the same rule, so users never see a message past the expiry.
                if self.too_old(&msg, net.unix_time()) {
                    return;
                }
                self.effects.push_back(Effect::Deliver { conn, msg });
            }
        }
    }

    /// `conn` closed, for `reason`.
    pub(crate) fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason) {
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
            if matches!(reason, CloseReason::PeerClosed | CloseReason::Io(_)) {
                if let Some(addr) = peer.addr.clone() {
                    let closed = matches!(reason, CloseReason::PeerClosed);
                    self.remember_lost(&id, addr, closed, net.now());
                }
            }
            info!("{}: disconnected: {reason}", peer.label());
            // The node tells the tables, then calls `after_peer_down` (which asks the
            // remaining peers for theirs).
            self.effects.push_back(Effect::PeerDown { id });
        }
    }

    /// Time passed: redials, expiries, timeouts.
    pub(crate) fn on_tick(&mut self, net: &mut dyn Net) {
        let now = net.now();
        self.redial_lost(net, now);
        self.seen.expire(net.unix_time());
        self.close_stale(net, now);
        self.expire_requests(now);
    }

    /// At the connection limit, the oldest incoming connection still waiting for its
    /// handshake gives way: half-open connections cannot lock honest peers out.
    pub(crate) fn make_room(&mut self) -> Option<ConnId> {
        self.peers
            .values()
            .filter(|p| p.id.is_none() && !p.outgoing)
            .min_by_key(|p| (p.opened, p.conn))
            .map(|p| p.conn)
    }
}
