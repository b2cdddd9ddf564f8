//! The payload packets of a [`Message`](crate::Message), read in place from its one body
//! buffer.

use std::fmt;
use std::ops::Index;

use crate::HEADER_LEN;

/// How many payload packets a message knows the position of without walking the packets
/// before them (the rest are found from the last of these).
pub(super) const INLINE: usize = 6;

/// The packet whose `len32` header starts at `at` in `frame`, and where the next one starts.
pub(super) fn packet_at(frame: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = frame.get(at..)?.first_chunk::<HEADER_LEN>()?;
    let start = at + HEADER_LEN;
    let end = start.checked_add(u32::from_be_bytes(*header) as usize)?;
    Some((frame.get(start..end)?, end))
}

/// The payload packets of a message (the first is normally the sub-flag): a view into the
/// message's body, used like a slice of packets.
///
/// ```
/// use py2p_wire::Message;
/// let msg = Message::new(b"\x00".to_vec(), b"me".to_vec(), vec![b"\x00".to_vec(), b"hi".to_vec()], 9);
/// let payload = msg.payload();
/// assert_eq!(payload.len(), 2);
/// assert_eq!(payload.first(), Some(&b"\x00"[..]));
/// assert_eq!(payload[1], *b"hi");
/// assert_eq!(payload.skip(1).iter().collect::<Vec<_>>(), [b"hi"]);
/// assert_eq!(payload, [b"\x00".to_vec(), b"hi".to_vec()]);
/// if let Some([flag, text]) = payload.as_array() {
///     assert_eq!((flag, text), (&b"\x00"[..], &b"hi"[..]));
/// }
/// ```
#[derive(Clone, Copy)]
pub struct Payload<'a> {
    /// The message's plain frame.
    frame: &'a [u8],
    /// Where the header of the first packet of the view starts (the frame's end if none).
    at: usize,
    /// How many packets.
    len: usize,
    /// Where the headers of the view's first packets start (at most [`INLINE`] of them).
    starts: &'a [usize],
}

impl<'a> Payload<'a> {
    pub(super) fn new(frame: &'a [u8], at: usize, len: usize, starts: &'a [usize]) -> Self {
        Payload {
            frame,
            at,
            len,
            starts,
        }
    }

    /// The number of packets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no packets.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the header of packet `i < len` starts.
    fn offset_of(&self, i: usize) -> usize {
        if let Some(&at) = self.starts.get(i) {
            return at;
        }
        // Past the known positions: walk from the last one.
        let (mut at, known) = match self.starts.last() {
            Some(&last) => (last, self.starts.len() - 1),
            None => (self.at, 0),
        };
        for _ in known..i {
            match packet_at(self.frame, at) {
                Some((_, next)) => at = next,
                None => return self.frame.len(),
            }
        }
        at
    }

    /// Packet `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i >= self.len {
            return None;
        }
        packet_at(self.frame, self.offset_of(i)).map(|(p, _)| p)
    }

    /// The first packet (normally the sub-flag).
    pub fn first(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    /// The last packet.
    pub fn last(&self) -> Option<&'a [u8]> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// The packets after the first `n` (none when there are no more than `n`).
    pub fn skip(&self, n: usize) -> Payload<'a> {
        let n = n.min(self.len);
        let at = if n == self.len {
            self.frame.len()
        } else {
            self.offset_of(n)
        };
        Payload {
            frame: self.frame,
            at,
            len: self.len - n,
            starts: self.starts.get(n..).unwrap_or_default(),
        }
    }

    /// The packets in order.
    pub fn iter(&self) -> PayloadIter<'a> {
        PayloadIter {
            frame: self.frame,
            at: self.at,
            left: self.len,
        }
    }

    /// The packets as exactly `N` slices, or `None` when there are not exactly `N` (for
    /// matching a payload against a pattern of packets).
    pub fn as_array<const N: usize>(&self) -> Option<[&'a [u8]; N]> {
        if self.len != N {
            return None;
        }
        let mut out: [&[u8]; N] = [&[]; N];
        for (slot, packet) in out.iter_mut().zip(self.iter()) {
            *slot = packet;
        }
        Some(out)
    }

    /// Copies the packets out.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

/// The packets of a [`Payload`], in order.
#[derive(Debug, Clone)]
pub struct PayloadIter<'a> {
    frame: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.left = self.left.checked_sub(1)?;
        match packet_at(self.frame, self.at) {
            Some((packet, next)) => {
                self.at = next;
                Some(packet)
            }
            None => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PayloadIter<'_> {}

impl<'a> IntoIterator for Payload<'a> {
    type Item = &'a [u8];
    type IntoIter = PayloadIter<'a>;

    fn into_iter(self) -> PayloadIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Payload<'a> {
    type Item = &'a [u8];
    type IntoIter = PayloadIter<'a>;

    fn into_iter(self) -> PayloadIter<'a> {
        self.iter()
    }
}

impl Index<usize> for Payload<'_> {
    type Output = [u8];

    /// Packet `i`.
    ///
    /// # Panics
    ///
    /// When there is no packet `i`, as a slice does; [`Payload::get`] does not panic.
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(packet) => packet,
            None => out_of_range(i, self.len),
        }
    }
}

// Indexing past the end is the caller's bug, reported as a slice reports it.
#[allow(clippy::panic)]
#[cold]
fn out_of_range(i: usize, len: usize) -> ! {
    panic!("packet index {i} out of range for a payload of {len} packets")
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Payload<'_> {
    fn eq(&self, other: &Payload<'_>) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Payload<'_> {}

impl<T: AsRef<[u8]>> PartialEq<[T]> for Payload<'_> {
    fn eq(&self, other: &[T]) -> bool {
        self.len == other.len() && self.iter().eq(other.iter().map(AsRef::as_ref))
    }
}

impl<T: AsRef<[u8]>, const N: usize> PartialEq<[T; N]> for Payload<'_> {
    fn eq(&self, other: &[T; N]) -> bool {
        *self == *other.as_slice()
    }
}

impl<T: AsRef<[u8]>> PartialEq<Vec<T>> for Payload<'_> {
    fn eq(&self, other: &Vec<T>) -> bool {
        *self == *other.as_slice()
    }
}

impl<T: AsRef<[u8]>> PartialEq<&[T]> for Payload<'_> {
    fn eq(&self, other: &&[T]) -> bool {
        *self == **other
    }
}

impl<T: AsRef<[u8]>> PartialEq<&Vec<T>> for Payload<'_> {
    fn eq(&self, other: &&Vec<T>) -> bool {
        *self == *other.as_slice()
    }
}
