//! Sending and the waterfall: our own messages, frames per compression, broadcasts to
//! every routed peer, and the expiry rule.

use log::{debug, warn};
use py2p_net::{ConnId, Frame, Net};
use py2p_wire::{base58, Compression, Flag, Head, HEADER_LEN};

use super::held::HeldRelays;
use super::out::Out;
use super::parked::KeptBody;
use super::path::Path;
use super::state::MeshCore;
use crate::mesh::peer::LastSent;
use crate::mesh::seen::{key_bytes, Key};

impl MeshCore {
    /// A message from this node, stamped now.
    pub(crate) fn own_message(
        &self,
        net: &dyn Net,
        msg_type: Flag,
        payload: Vec<Vec<u8>>,
    ) -> py2p_wire::Message {
        py2p_wire::Message::from_packets(
            &[msg_type.0],
            self.id.as_bytes(),
            &payload,
            net.unix_time(),
        )
    }

    pub(super) fn frame_for(&self, conn: ConnId, msg: &py2p_wire::Message) -> Option<Vec<u8>> {
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
            self.seen.insert(msg.id_bytes(), msg.time());
        }
        if let Some(frame) = self.frame_for(conn, &msg) {
            // Only user messages are kept for `resend` (py2p keeps any whisper, which makes
            // every peer hold on to its handshake's peer list).
            let user = matches!(msg.payload().first(), Some([0x00] | [0x02]));
            if (msg_type == Flag::BROADCAST || msg_type == Flag::WHISPER) && user {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.last_sent = Some(LastSent::new(msg));
                }
            }
            net.send(conn, frame.into());
        }
    }

    /// Sends one message to every routed peer but `except`, encoding it once per compression
    /// and sharing each encoding among the peers that use it (no copy per peer). A relayed
    /// message's `received` body goes on unchanged to the peers that use its method. To
    /// [`To::Held`], the frames wait in the held relays (see `held.rs`) for the end of the turn.
    pub(super) fn send_all(
        &mut self,
        mut to: To<'_>,
        msg: &py2p_wire::Message,
        except: &[ConnId],
        received: Option<Received<'_>>,
    ) -> usize {
        // The usual cases, without the kept lists: taking them out and putting them back
        // stalled on their cache line (6 % of the two-node broadcast's samples, on two
        // instructions), and a relay on a node with no other peer has nothing to send.
        let mut routed = self.routing.values().filter(|c| !except.contains(c));
        let Some(&first) = routed.next() else {
            return 0;
        };
        if received.is_none() && routed.all(|&c| c == first) {
            if let To::Net(net) = &mut to {
                if self.send_one(&mut **net, msg, first) {
                    return 1;
                }
            }
        }
        // Both lists are kept between calls: no allocation per message.
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        targets.extend(
            self.routing
                .values()
                .copied()
                .filter(|c| !except.contains(c)),
        );
        targets.sort_unstable();
        targets.dedup();
        for &conn in &targets {
            let Some(peer) = self.peers.get(&conn) else {
                continue;
            };
            let method = peer.compression.first().copied();
            let frame = match frames.iter().find(|(m, _)| *m == method) {
                Some((_, f)) => f.clone(),
                None => {
                    let relayed = received.as_ref().and_then(|r| r.frame_for(method));
                    // One peer, sent now: encoded straight into its write queue (a burst of
                    // small frames shares one buffer there), no buffer of its own.
                    if let (None, 1, To::Net(net), Some(room)) =
                        (&relayed, targets.len(), &mut to, msg.encoded_room(method))
                    {
                        net.send_encoded(conn, room, &mut |out| msg.encode_into(method, out));
                        continue;
                    }
                    let bytes = match relayed {
                        Some(frame) => frame,
                        None => msg.encode(method),
                    };
                    if targets.len() == 1 {
                        bytes.into()
                    } else {
                        let f = Frame::shared(bytes);
                        frames.push((method, f.clone()));
                        f
                    }
                }
            };
            match &mut to {
                To::Net(net) => net.send(conn, frame),
                To::Held(held) => held.push(conn, frame),
            }
        }
        let n = targets.len();
        self.targets = targets;
        frames.clear();
        self.frames = frames;
        n
    }

    /// `send_all`'s usual case: a message of ours sent now to its one target, `conn`,
    /// encoded straight into its write queue. Whether that was done (`false`: the peer's
    /// method cannot be encoded in place, and nothing was sent).
    fn send_one(&mut self, net: &mut dyn Net, msg: &py2p_wire::Message, conn: ConnId) -> bool {
        let Some(peer) = self.peers.get(&conn) else {
            // `send_all` skips a routed connection with no peer record (and counts it).
            return true;
        };
        let method = peer.compression.first().copied();
        let Some(room) = msg.encoded_room(method) else {
            return false;
        };
        net.send_encoded(conn, room, &mut |out| msg.encode_into(method, out));
        true
    }

    /// A broadcast of ours to every peer.
    pub(crate) fn broadcast(&mut self, net: &mut dyn Net, payload: Vec<Vec<u8>>) {
        let msg = self.own_message(net, Flag::BROADCAST, payload);
        self.broadcast_message(net, msg);
    }

    /// A broadcast of ours, already made, to every peer.
    pub(crate) fn broadcast_message(&mut self, net: &mut dyn Net, msg: py2p_wire::Message) {
        self.broadcast_last_sent(net, LastSent::new(msg));
    }

    /// [`MeshCore::broadcast_message`] for a message already shared for `resend`.
    pub(crate) fn broadcast_last_sent(&mut self, net: &mut dyn Net, msg: LastSent) {
        self.seen.insert(msg.id_bytes(), msg.time());
        self.send_last_sent(net, msg);
    }

    /// [`MeshCore::broadcast_last_sent`] but the seen set: the caller remembers the id.
    pub(super) fn send_last_sent(&mut self, net: &mut dyn Net, msg: LastSent) {
        self.send_all(To::Net(net), &msg, &[], None);
        // The last routed peer gets `msg` itself: with one peer, no count of the `Arc` goes
        // up and down per message (each a locked instruction, which waits for the stores
        // before it, the frame just written among them: it stalled the loop).
        let mut msg = Some(msg);
        let mut routed = self.routing.values().peekable();
        while let Some(conn) = routed.next() {
            if let Some(p) = self.peers.get_mut(conn) {
                p.last_sent = match routed.peek() {
                    Some(_) => msg.clone(),
                    None => msg.take(),
                };
            }
        }
    }

    /// Takes the routed peers' last messages (a broadcast is about to replace them): the
    /// one returned is its only holder when they all held the same one and nothing else does.
    pub(super) fn take_last_sent(&mut self) -> Option<LastSent> {
        let mut last = None;
        for conn in self.routing.values() {
            if let Some(m) = self.peers.get_mut(conn).and_then(|p| p.last_sent.take()) {
                last = Some(m);
            }
        }
        last
    }

    /// A copy of a seen broadcast (its id's key: `id`) came from `conn`: it is counted and
    /// dropped, and as `conn` has the broadcast, our relay of it, if still held, does not go
    /// to `conn`.
    pub(super) fn drop_copy(&mut self, net: &mut Out<'_>, conn: ConnId, id: Key) {
        self.counters.duplicates += 1;
        if net.held().withdraw(conn, id) {
            self.counters.relayed = self.counters.relayed.saturating_sub(1);
        }
        self.hit(Path::DuplicateBroadcast);
    }

    /// Whether a message is older than `message_expiry` (then it is counted and dropped).
    pub(super) fn too_old(&mut self, msg: &py2p_wire::Message, now: u64) -> bool {
        let old = msg
            .time()
            .saturating_add(self.config.message_expiry.as_secs())
            < now;
        if old {
            self.counters.expired += 1;
            self.hit(Path::Expired);
            debug!(
                "dropping message {} from {}: {} s old",
                msg.id(),
                String::from_utf8_lossy(msg.sender()),
                now - msg.time()
            );
        }
        old
    }

    /// A broadcast from `conn`: dropped when too old, stamped too far ahead or seen, else
    /// relayed to every routed peer but the one it came from and its sender. Whether it goes
    /// on to the handlers.
    pub(super) fn relay(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        msg: &py2p_wire::Message,
        received: Option<Received<'_>>,
    ) -> bool {
        let now = net.unix_time();
        if self.too_old(msg, now) {
            return false;
        }
        // Stamped further ahead than the expiry: a clock that is badly wrong, or a
        // lie. py2p takes these; here they would have to be remembered until their
        // time comes, so they are refused like the old ones.
        if msg.time() > now.saturating_add(self.config.message_expiry.as_secs()) {
            self.counters.expired += 1;
            self.hit(Path::Expired);
            warn!(
                "dropping broadcast {} from {}: stamped {} s in the future",
                msg.id(),
                String::from_utf8_lossy(msg.sender()),
                msg.time() - now
            );
            return false;
        }
        if !self.seen.insert(msg.id_bytes(), msg.time()) {
            self.drop_copy(net, conn, key_bytes(msg.id_bytes()));
            return false;
        }
        self.hit(Path::Broadcast);
        // The sender's connection is looked up (a SipHash of its id) only when a routed
        // peer other than `conn` could be sent to at all.
        let others = self.routing.values().any(|&c| c != conn);
        let origin = others
            .then(|| std::str::from_utf8(msg.sender()).ok())
            .flatten()
            .and_then(|s| self.routing.get(s))
            .copied();
        let except = [conn, origin.unwrap_or(conn)];
        let held = net.held();
        held.begin(msg.id_bytes());
        let n = self.send_all(To::Held(&mut *held), msg, &except, received);
        held.finish();
        self.counters.relayed += n as u64;
        true
    }
}

/// Where [`MeshCore::send_all`] puts its frames.
pub(super) enum To<'a> {
    /// Sent now.
    Net(&'a mut dyn Net),
    /// Held for the rest of the turn (a relay: see `held.rs`).
    Held(&'a mut HeldRelays),
}

/// A broadcast's frame body as it arrived, with the method that decompressed it (`None`:
/// read as it stands), for relaying it without encoding it again.
///
/// Only bodies that are the message's own encoding are kept ([`Received::of`]): plain, or
/// snappy (whose raw format any valid decoder reads the same way, to the same bytes, with the
/// whole input used); and a time packet in its one canonical spelling. The plain bytes are
/// then exactly the packets [`py2p_wire::Message::encode`] would write (type, sender, id,
/// time and payload, each after its length), so a peer that reads our frames with that method
/// gets the same message, id checked as before. Other methods' streams may carry what one
/// decoder takes and another refuses (trailing bytes, a second member): those are encoded
/// again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received<'a> {
    method: Option<Compression>,
    body: &'a [u8],
    /// Whether the time packet arrived in its one canonical spelling.
    canonical_time: bool,
}

impl<'a> Received<'a> {
    /// The body of a frame whose plain head is `head`, decompressed by `method`; `None` when
    /// it must be encoded again to be relayed.
    pub(crate) fn of(
        body: &'a [u8],
        method: Option<Compression>,
        head: &Head<'_>,
    ) -> Option<Received<'a>> {
        let relayable = matches!(method, None | Some(Compression::Snappy));
        relayable.then_some(Received {
            method,
            body,
            canonical_time: base58::is_canonical_u64(head.time_58),
        })
    }

    /// This body kept past the frame's callback (its broadcast parked for the id check),
    /// when a relay could use it: it is compressed (a plain body is the message's own frame,
    /// which `send_all` sends as it is) and `relayed()` (a routed peer could be sent to).
    pub(super) fn keep(self, relayed: impl FnOnce() -> bool) -> Option<KeptBody> {
        (self.method.is_some() && relayed()).then(|| KeptBody {
            method: self.method,
            canonical_time: self.canonical_time,
            body: self.body.to_vec(),
        })
    }

    /// A body kept while its broadcast waited for its id check, for the relay.
    pub(super) fn of_kept(kept: &'a KeptBody) -> Received<'a> {
        Received {
            method: kept.method,
            body: &kept.body,
            canonical_time: kept.canonical_time,
        }
    }

    /// The whole frame (length and body) for a peer we send to with `method`, if that is the
    /// method the body came in and the body spells the message's time (which decoded) in its
    /// one canonical way.
    fn frame_for(&self, method: Option<Compression>) -> Option<Vec<u8>> {
        if method != self.method || !self.canonical_time {
            return None;
        }
        let len = u32::try_from(self.body.len()).ok()?;
        let mut frame = Vec::with_capacity(HEADER_LEN + self.body.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(self.body);
        Some(frame)
    }
}
