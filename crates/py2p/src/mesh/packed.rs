//! A user's packets in one buffer, for the hand-off from `send` to the event loop.

/// Packets in one buffer, each after its length (4 bytes, big-endian, as on the wire): one
/// allocation for [`MeshSocket::send`](crate::MeshSocket::send)'s hand-off to the event loop,
/// where a `Vec` of `Vec`s is one per packet and one for the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedPackets {
    buf: Vec<u8>,
}

impl PackedPackets {
    /// Copies `packets` into one buffer; `None` when a packet is 4 GiB or longer (no frame
    /// can carry it: the size check refuses such a message before this).
    pub fn new<P: AsRef<[u8]>>(packets: &[P]) -> Option<PackedPackets> {
        let len = packets.iter().map(|p| 4 + p.as_ref().len()).sum();
        let mut buf = Vec::with_capacity(len);
        for p in packets {
            let p = p.as_ref();
            buf.extend_from_slice(&u32::try_from(p.len()).ok()?.to_be_bytes());
            buf.extend_from_slice(p);
        }
        Some(PackedPackets { buf })
    }

    /// The packets, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let mut rest = self.buf.as_slice();
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            let packet = tail.get(..len)?;
            rest = tail.get(len..).unwrap_or_default();
            Some(packet)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_come_back_in_order_empty_ones_included() {
        let packets: [&[u8]; 4] = [b"one", b"", b"three", &[0, 0, 0, 9]];
        let packed = PackedPackets::new(&packets).unwrap();
        assert_eq!(packed.iter().collect::<Vec<_>>(), packets);
        let none: [&[u8]; 0] = [];
        assert_eq!(PackedPackets::new(&none).unwrap().iter().count(), 0);
    }
}
