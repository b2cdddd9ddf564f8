//! The connection a message came on, as handlers see it, and why a `connect` failed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use py2p_net::ConnId;
use py2p_wire::Flag;

use crate::message::MessageKind;
use crate::Error;

/// The connection a message arrived on (py2p's `mesh_connection` as a handler's second
/// argument): who is at the other end, and a way to answer on it.
///
/// Its methods queue commands for the event loop and never wait, so they are safe to call
/// from a handler. The handle stays valid after the handler returns; once the connection
/// closes, sending on it does nothing.
#[derive(Clone)]
pub struct Connection {
    pub(crate) conn: ConnId,
    pub(crate) peer_id: Option<String>,
    pub(crate) addr: SocketAddr,
    pub(crate) out_addr: Option<(String, u16)>,
    pub(crate) outgoing: bool,
    pub(crate) limits: py2p_wire::Limits,
    pub(crate) sender_id_len: usize,
    /// The node's loop (absent when the node logic runs without one, in the simulator).
    pub(crate) handle: Option<Arc<dyn SendOn>>,
}

/// Where a [`Connection`]'s messages go: the event loop of the node it belongs to (which
/// implements this for its handle), so that this module needs nothing of the mesh's.
pub(crate) trait SendOn: Send + Sync {
    /// Queues `payload` as a message of type `kind` on the connection `conn`.
    fn send_on(&self, conn: ConnId, kind: MessageKind, payload: Vec<Vec<u8>>) -> Result<(), Error>;
}

impl Connection {
    /// The peer's node id, once its handshake arrived.
    pub fn peer_id(&self) -> Option<&str> {
        self.peer_id.as_deref()
    }

    /// The address at the other end of the TCP connection.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the peer advertises (its `out_addr`), once its handshake arrived.
    pub fn out_addr(&self) -> Option<(&str, u16)> {
        self.out_addr.as_ref().map(|(h, p)| (h.as_str(), *p))
    }

    /// Whether this node dialled the connection.
    pub fn outgoing(&self) -> bool {
        self.outgoing
    }

    /// Sends `packets` on this connection as a message of type `kind` with `sub_flag` as its
    /// first packet (py2p's `conn.send(flag, type, *packets)`). A broadcast sent this way is
    /// relayed by the peer to the rest of the network. Fails at once when the message is over
    /// the configured limits or the sub-flag is one the protocol reserves.
    pub fn send<P: AsRef<[u8]>>(
        &self,
        kind: MessageKind,
        sub_flag: u8,
        packets: &[P],
    ) -> Result<(), Error> {
        check_sub_flag(sub_flag)?;
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        check_size(&self.limits, self.sender_id_len, &packets)?;
        let mut payload = Vec::with_capacity(packets.len() + 1);
        payload.push(vec![sub_flag]);
        payload.extend(packets);
        self.handle
            .as_ref()
            .ok_or(Error::Closed)?
            .send_on(self.conn, kind, payload)
    }

    /// Sends `packets` back on this connection as a whisper with the whisper sub-flag: what
    /// the peer at the other end receives as a plain whisper. (To answer the *sender* of a
    /// relayed broadcast, who may be further away, use [`MeshSocket::reply`](crate::MeshSocket::reply).)
    pub fn reply<P: AsRef<[u8]>>(&self, packets: &[P]) -> Result<(), Error> {
        self.send(MessageKind::Whisper, Flag::WHISPER.0, packets)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("conn", &self.conn)
            .field("peer_id", &self.peer_id)
            .field("addr", &self.addr)
            .field("outgoing", &self.outgoing)
            .finish()
    }
}

/// Whether a user may send `sub_flag`: any byte but those py2p's protocol gives a meaning
/// (renegotiate, ping/pong, handshake, notify, peers, request, resend, response, store,
/// retrieve, retrieved), which a peer would act on instead of delivering.
pub(crate) fn check_sub_flag(sub_flag: u8) -> Result<(), Error> {
    if matches!(sub_flag, 0x01 | 0x03..=0x0D) {
        return Err(Error::ReservedSubFlag(sub_flag));
    }
    Ok(())
}

/// Whether `sub_flag` (the first packet) is one users send; others are the protocol's.
pub(crate) fn is_user_sub_flag(packet: &[u8]) -> bool {
    match packet {
        [] => false,
        [b] => check_sub_flag(*b).is_ok(),
        _ => true,
    }
}

/// Checks a message of ours against the limits its receivers apply (`Limits`, the same
/// defaults everywhere): a message over them would be dropped by every peer, so it is
/// refused here, where the sender learns of it. `packets` are the user's packets; the
/// sub-flag and the four header packets are added.
pub(crate) fn check_size(
    limits: &py2p_wire::Limits,
    sender_id_len: usize,
    packets: &[impl AsRef<[u8]>],
) -> Result<(), Error> {
    // Header packets: type (1 byte), sender, id (at most 66 base-58 digits of a sha-384),
    // time (at most 11 digits); every packet has a 4-byte length.
    let count = packets.len() + 1 + 4;
    if count > limits.max_packets {
        return Err(Error::TooLarge {
            what: "packets",
            size: count,
            limit: limits.max_packets,
        });
    }
    let body = 5 * 4
        + 1
        + 1
        + sender_id_len
        + 66
        + 11
        + packets.iter().map(|p| 4 + p.as_ref().len()).sum::<usize>();
    let (limit, what) = if limits.max_decompressed_len < limits.max_frame_len {
        (limits.max_decompressed_len, "max_decompressed_len")
    } else {
        (limits.max_frame_len, "max_frame_len")
    };
    if body > limit {
        return Err(Error::TooLarge {
            what,
            size: body,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConnectError;
    use py2p_net::CloseReason;
    use std::io;

    #[test]
    fn os_codes_in_the_loops_text_become_kinds() {
        // What the event loop keeps of a refused dial on Linux (ECONNREFUSED is 111).
        let text = io::Error::from_raw_os_error(111).to_string();
        assert_eq!(
            ConnectError::from_close(&CloseReason::ConnectFailed(text)),
            ConnectError::Refused
        );
        assert_eq!(
            ConnectError::from_close(&CloseReason::ConnectFailed("timed out".into())),
            ConnectError::TimedOut
        );
        assert!(matches!(
            ConnectError::from_close(&CloseReason::PeerClosed),
            ConnectError::Closed(_)
        ));
    }

    #[test]
    fn sizes_over_the_limits_are_refused_with_the_limit_named() {
        let limits = py2p_wire::Limits::default();
        let big = vec![vec![0u8; 17 << 20]];
        match check_size(&limits, 60, &big) {
            Err(Error::TooLarge { what, size, limit }) => {
                assert_eq!(limit, 16 << 20);
                assert!(size > 17 << 20, "{size}");
                assert!(what.starts_with("max_"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        assert!(check_size(&limits, 60, &[vec![0u8; 1 << 20]]).is_ok());
        let many = vec![Vec::new(); limits.max_packets];
        assert!(matches!(
            check_size(&limits, 60, &many),
            Err(Error::TooLarge {
                what: "packets",
                ..
            })
        ));
    }

    #[test]
    fn reserved_sub_flags_are_refused() {
        assert!(check_sub_flag(0x00).is_ok());
        assert!(check_sub_flag(0x02).is_ok());
        assert!(check_sub_flag(0x20).is_ok());
        for b in [0x01, 0x05, 0x07, 0x08, 0x0A, 0x0B, 0x0D] {
            assert!(matches!(check_sub_flag(b), Err(Error::ReservedSubFlag(x)) if x == b));
        }
        assert!(is_user_sub_flag(b"custom"));
        assert!(!is_user_sub_flag(b""));
    }
}
