//! What the user asks of the mesh: messages of the user's, on the wire the way py2p sends
//! them. (Waiting, handlers and the tables are the node's.)

use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

use super::state::MeshCore;
use crate::message::MessageKind;

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
                // Straight into the message's frame: no payload `Vec` in between.
                let payload = std::iter::once(&flag[..]).chain(packets.iter().map(Vec::as_slice));
                let msg = py2p_wire::Message::from_packet_iter(
                    &[Flag::BROADCAST.0],
                    self.id.as_bytes(),
                    payload,
                    net.unix_time(),
                );
                self.broadcast_message(net, msg)
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

    /// The user's broadcast of one borrowed packet with the broadcast sub-flag:
    /// `send_packets(net, Broadcast, BROADCAST, vec![packet])` without the packet's `Vec`.
    pub(crate) fn broadcast_packet(&mut self, net: &mut dyn Net, packet: &[u8]) {
        let flag = [Flag::BROADCAST.0];
        let msg = py2p_wire::Message::from_packet_iter(
            &flag,
            self.id.as_bytes(),
            [&flag[..], packet],
            net.unix_time(),
        );
        self.broadcast_message(net, msg)
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
