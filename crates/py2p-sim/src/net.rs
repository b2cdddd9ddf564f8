//! The simulated socket a node's [`Endpoint`](py2p_net::Endpoint) writes to: bytes go into
//! the peer's pipe while the kernels' buffers have room, as a non-blocking socket takes them.

use std::io::{self, Write};

use py2p_net::ConnId;

use super::link::Segment;
use super::network::Network;

/// The sending side of one end, for [`Endpoint::write_to`](py2p_net::Endpoint::write_to).
pub(super) struct Wire<'a> {
    pub network: &'a mut Network,
    pub conn: ConnId,
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let network = &mut *self.network;
        let Some(end) = network.ends.get(&self.conn) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let node = end.node;
        let (Some(peer), false) = (end.peer, end.finished) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ));
        };
        let in_flight = network.ends.get(&peer).map_or(0, |p| p.inbound.bytes);
        let room = network.config.socket_buffer.saturating_sub(in_flight);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if network.config.break_rate > 0.0 && network.rng.chance(network.config.break_rate) {
            network
                .trace
                .record(network.now, "link breaks", node, self.conn.to_raw(), &[]);
            network.faults.push(network.now);
            network.reset(self.conn, "connection reset by peer");
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ));
        }
        let n = buf.len().min(room);
        let bytes = buf.get(..n).unwrap_or_default();
        // TCP keeps no frame boundaries: the reader gets the stream cut anywhere.
        let pieces = if network.config.fragment && n > 1 {
            1 + network.rng.below(3) as usize
        } else {
            1
        };
        let mut cuts: Vec<usize> = (1..pieces).map(|_| 1 + network.rng.index(n - 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut start = 0;
        for cut in cuts.into_iter().chain(std::iter::once(n)) {
            if let Some(piece) = bytes.get(start..cut) {
                network.push_segment(peer, Segment::Data(piece.to_vec()));
            }
            start = cut;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
