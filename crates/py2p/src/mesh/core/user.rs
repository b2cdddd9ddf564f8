//! What the user asks of the mesh: messages of the user's, on the wire the way py2p sends
//! them. (Waiting, handlers and the tables are the node's.)

use py2p_net::{ConnId, Net};
use py2p_wire::base58::U64Text;
use py2p_wire::digest::{sha384_each, SHA384_LEN};
use py2p_wire::{Flag, Message};

use super::state::MeshCore;
use crate::mesh::peer::LastSent;
use crate::message::MessageKind;

/// Every byte value, for a sub-flag packet that lives as long as the user's packets.
// Evaluated at compile time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing)]
static BYTES: [u8; 256] = {
    let mut bytes = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

/// The sub-flag packet `sub_flag`, then `packets`: a user message's payload.
fn with_sub_flag<'p>(
    sub_flag: u8,
    packets: impl Iterator<Item = &'p [u8]> + Clone,
) -> impl Iterator<Item = &'p [u8]> + Clone {
    let flag = usize::from(sub_flag);
    std::iter::once(BYTES.get(flag..=flag).unwrap_or_default()).chain(packets)
}

/// A user's broadcast waiting to be sent with others ([`MeshCore::broadcast_users`]).
pub(crate) trait UserBroadcast {
    /// Its sub-flag (the first payload packet).
    fn sub_flag(&self) -> u8;
    /// When it was sent (Unix seconds): the node's clock when the user's command was taken.
    fn time(&self) -> u64;
    /// The user's packets, after the sub-flag.
    fn packets(&self) -> impl Iterator<Item = &[u8]> + Clone;
}

/// What [`MeshCore::broadcast_users`] keeps from batch to batch: the time texts and the
/// digests (no allocation per batch).
#[derive(Debug, Default)]
pub(crate) struct IdBatch {
    texts: Vec<U64Text>,
    digests: Vec<[u8; SHA384_LEN]>,
    /// The batch's ids as the seen set keys them (their first [`SEEN_PREFIX`] bytes) and
    /// their times, remembered together once the batch is sent.
    seen: Vec<([u8; SEEN_PREFIX], u64)>,
}

/// How much of an id the seen set keys it by (`seen::key_bytes`: its first 16 bytes, zeros
/// after a shorter one).
const SEEN_PREFIX: usize = 16;

impl MeshCore {
    /// The user's message `packets` with `sub_flag` first (py2p's `send(*packets, flag=kind,
    /// type=sub_flag)`): a broadcast through the waterfall, or a whisper to every peer this
    /// node is connected to (no further).
    pub(crate) fn send_packets(
        &mut self,
        net: &mut dyn Net,
        kind: MessageKind,
        sub_flag: u8,
        packets: Vec<Vec<u8>>,
    ) {
        let flag = [sub_flag];
        match kind {
            MessageKind::Broadcast => {
                self.broadcast_user(net, sub_flag, packets.iter().map(Vec::as_slice));
            }
            MessageKind::Whisper => {
                let mut payload = Vec::with_capacity(packets.len() + 1);
                payload.push(flag.to_vec());
                payload.extend(packets);
                let mut conns: Vec<ConnId> = self.routing.values().copied().collect();
                conns.sort_unstable();
                for conn in conns {
                    self.send_to(net, conn, Flag::WHISPER, payload.clone());
                }
            }
        }
    }

    /// The user's broadcast of `packets` with `sub_flag` first, straight into the message's
    /// frame: no payload `Vec` in between.
    pub(crate) fn broadcast_user<'p>(
        &mut self,
        net: &mut dyn Net,
        sub_flag: u8,
        packets: impl Iterator<Item = &'p [u8]> + Clone,
    ) {
        let time = net.unix_time();
        self.broadcast_stamped(net, sub_flag, packets, time, None, None);
    }

    /// The user's broadcasts in `batch`, in order, their ids hashed together (one
    /// [`sha384_each`] call: several short inputs share its passes); then each is made,
    /// encoded and sent as [`MeshCore::broadcast_user`] does.
    pub(crate) fn broadcast_users<B: UserBroadcast>(
        &mut self,
        net: &mut dyn Net,
        batch: &[B],
        ids: &mut IdBatch,
    ) {
        let IdBatch {
            texts,
            digests,
            seen,
        } = ids;
        texts.clear();
        // Most of a batch has the same time: its text is made once.
        let mut last: Option<(u64, U64Text)> = None;
        texts.extend(batch.iter().map(|b| match last {
            Some((time, text)) if time == b.time() => text,
            _ => {
                let text = U64Text::new(b.time());
                last = Some((b.time(), text));
                text
            }
        }));
        digests.clear();
        sha384_each(
            batch.iter().zip(texts.iter()).map(|(b, text)| {
                py2p_wire::Message::id_pieces(with_sub_flag(b.sub_flag(), b.packets()), text)
            }),
            digests,
        );
        seen.clear();
        for ((b, text), digest) in batch.iter().zip(texts.iter()).zip(digests.iter()) {
            let id = Some((text, digest));
            self.broadcast_stamped(net, b.sub_flag(), b.packets(), b.time(), id, Some(seen));
        }
        // The ids go into the seen set together, after the sends: each insert misses the
        // cache (a set of 100k+ ids), and one after the other they overlap instead of each
        // stalling the encoding that followed it. Nothing reads the set in between.
        for (key, time) in seen.iter() {
            self.seen.insert(key, *time);
        }
    }

    /// The user's broadcast stamped `time`, with the time's text and its id's digest when
    /// they were computed beforehand. With `seen`, its id is put there for the caller to
    /// remember in the seen set, instead of remembered at once.
    fn broadcast_stamped<'p>(
        &mut self,
        net: &mut dyn Net,
        sub_flag: u8,
        packets: impl Iterator<Item = &'p [u8]> + Clone,
        time: u64,
        id: Option<(&U64Text, &[u8; SHA384_LEN])>,
        seen: Option<&mut Vec<([u8; SEEN_PREFIX], u64)>>,
    ) {
        let payload = with_sub_flag(sub_flag, packets);
        let msg_type = [Flag::BROADCAST.0];
        // The routed peers' last message is about to be replaced: when no one else holds
        // it, the new one is made in its place (no allocation for the message or its `Arc`).
        let mut last = self.take_last_sent();
        let sender = self.id.as_bytes();
        let msg = match last.as_mut().and_then(LastSent::get_mut) {
            Some(reused) => {
                let payload = payload.clone();
                match id {
                    Some((text, d)) => {
                        reused.refill_with_digest(&msg_type, sender, payload, time, text, d)
                    }
                    None => reused.refill_from_packet_iter(&msg_type, sender, payload, time),
                }
                last
            }
            None => None,
        };
        let msg = msg.unwrap_or_else(|| {
            LastSent::new(match id {
                Some((text, d)) => {
                    Message::from_packet_iter_with_digest(&msg_type, sender, payload, time, text, d)
                }
                None => Message::from_packet_iter(&msg_type, sender, payload, time),
            })
        });
        match seen {
            Some(seen) => {
                let mut key = [0u8; SEEN_PREFIX];
                for (k, &b) in key.iter_mut().zip(msg.id_bytes()) {
                    *k = b;
                }
                seen.push((key, msg.time()));
                self.send_last_sent(net, msg);
            }
            None => self.broadcast_last_sent(net, msg),
        }
    }

    /// A message on one connection (a handler's `Connection::send`).
    pub(crate) fn send_on(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        kind: MessageKind,
        payload: Vec<Vec<u8>>,
    ) {
        let flag = match kind {
            MessageKind::Broadcast => Flag::BROADCAST,
            MessageKind::Whisper => Flag::WHISPER,
        };
        self.send_to(net, conn, flag, payload);
    }

    /// Closes the connection to the peer `id`, if routed.
    pub(crate) fn disconnect(&mut self, net: &mut dyn Net, id: &str) {
        if let Some(&conn) = self.routing.get(id) {
            net.close(conn);
        }
    }
}
