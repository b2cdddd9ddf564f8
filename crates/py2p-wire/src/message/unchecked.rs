//! A message decoded without its id check, for a receiver that checks the ids of several
//! messages together ([`sha384_each`](crate::digest::sha384_each)).

use std::iter::{once, Chain, Once};

use super::payload::INLINE;
use super::{frame_len, Message, Packets, PayloadIter, PlainBody};
use crate::digest::{Sha384, SHA384_LEN};
use crate::{base58, Limits, WireError, HEADER_LEN};

/// A message whose packets and time are read and whose id is not checked yet: what
/// [`PlainBody::decode`](crate::PlainBody::decode) does, stopped before the sha-384.
///
/// [`Unchecked::digest_input`] is what the id is the digest of; [`Unchecked::check`] takes
/// that digest, computed elsewhere (several messages' together), and gives the message, or
/// the error [`PlainBody::decode`](crate::PlainBody::decode) gives.
///
/// ```
/// use py2p_wire::{digest::sha384_each, Limits, Message, PlainBody};
/// let msg = Message::new(b"\x00".to_vec(), b"me".to_vec(), vec![b"\x00".to_vec(), b"hi".to_vec()], 7);
/// let limits = Limits::default();
/// let frame = msg.encode(None);
/// let unchecked = PlainBody::unpack(&frame[4..], &[], &limits).decode_unchecked(&limits)?;
/// assert_eq!(unchecked.claimed_id(), msg.id().as_bytes());
/// let mut digests = Vec::new();
/// sha384_each([unchecked.digest_input()], &mut digests);
/// assert_eq!(unchecked.check(&digests[0])?, msg);
/// # Ok::<(), py2p_wire::WireError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Unchecked {
    /// The body as it arrived, in a message (its id packet is the claimed id).
    pub(super) msg: Message,
    /// The time's canonical text, when the text that arrived is not it: the digest is over
    /// the canonical text, and the message travels on with it.
    pub(super) canonical: Option<base58::U64Text>,
    /// The error to report instead of a checksum mismatch (see `PlainBody::decode`); boxed,
    /// as it is rare and the message is moved a few times on the way.
    pub(super) too_large: Option<Box<WireError>>,
}

/// The pieces the id is the sha-384 of: the payload packets, then the time's text.
pub type DigestInput<'a> = Chain<PayloadIter<'a>, Once<&'a [u8]>>;

impl Unchecked {
    /// The id packet as it arrived (base-58 text if the message is genuine).
    pub fn claimed_id(&self) -> &[u8] {
        self.msg.id_bytes()
    }

    /// The message as it arrived, id unchecked: its type, sender, payload and time can be
    /// read (and its size known) before the check.
    pub fn message(&self) -> &Message {
        &self.msg
    }

    /// What the id must be the sha-384 of: the payload packets and the time's canonical
    /// text, as pieces (nothing is copied to join them).
    pub fn digest_input(&self) -> DigestInput<'_> {
        let time = match &self.canonical {
            Some(text) => text.as_bytes(),
            None => self.msg.packet(3),
        };
        self.msg.payload().iter().chain(once(time))
    }

    /// The sha-384 of [`Unchecked::digest_input`], computed here.
    pub fn digest(&self) -> [u8; SHA384_LEN] {
        let input = self.digest_input();
        let len = input.clone().map(<[u8]>::len).sum();
        let mut h = Sha384::for_len(len);
        for piece in input {
            h.update(piece);
        }
        h.finish()
    }

    /// Finishes the decode with `digest`, the sha-384 of [`Unchecked::digest_input`]: the
    /// message when the claimed id is its base-58, else the error
    /// [`PlainBody::decode`](crate::PlainBody::decode) gives.
    pub fn check(self, digest: &[u8; SHA384_LEN]) -> Result<Message, WireError> {
        let id = self.msg.id_bytes();
        // Checking the id by decoding it is much cheaper than encoding the digest.
        if !base58::is_encoding_of(id, digest) {
            return Err(match self.too_large {
                Some(e) => *e,
                None => WireError::ChecksumMismatch {
                    declared: String::from_utf8_lossy(id).into_owned(),
                    computed: base58::encode_be_bytes(digest),
                },
            });
        }
        if self.canonical.is_none() {
            return Ok(self.msg);
        }
        // Non-canonical time text (leading '1's): the message travels on with the
        // canonical one, as py2p re-encodes it. Rare, so the packets are gathered again.
        let payload: Vec<&[u8]> = self.msg.payload().iter().collect();
        Ok(Message::from_packets(
            self.msg.msg_type(),
            self.msg.sender(),
            &payload,
            self.msg.time(),
        ))
    }
}

impl PlainBody<'_> {
    /// [`PlainBody::decode`] without the id check, which [`Unchecked::check`] finishes with
    /// a digest computed elsewhere (several messages' together). The errors are
    /// `decode`'s: those found here, and a mismatch found by the check.
    pub fn decode_unchecked(self, limits: &Limits) -> Result<Unchecked, WireError> {
        // py2p reads the body as it stands when no method decompresses it. A body that one
        // method recognises as its own and would inflate past the limit is reported as such
        // if it is not a plain body either (its id check included); a plain body that
        // merely parses as the start of a stream (snappy's length, an .lzma header) is
        // judged as a plain body.
        match Unchecked::read_plain(&self.plain, limits) {
            Ok(mut unchecked) => {
                unchecked.too_large = self.too_large.map(Box::new);
                Ok(unchecked)
            }
            Err(e) => Err(self.too_large.unwrap_or(e)),
        }
    }
}

impl Unchecked {
    /// Reads an uncompressed body's packets and time, and copies the body once, into the
    /// message's frame; the id is not checked ([`Unchecked::check`] does).
    fn read_plain(body: &[u8], limits: &Limits) -> Result<Unchecked, WireError> {
        let mut packets = Packets {
            rest: body,
            index: 0,
        };
        let mut head = [(0, 0); 4];
        let mut texts: [&[u8]; 4] = [&[]; 4];
        for (found, (slot, text)) in head.iter_mut().zip(texts.iter_mut()).enumerate() {
            let at = body.len() - packets.rest.len();
            *text = match packets.next() {
                Some(packet) => packet?,
                None => return Err(WireError::TooFewPackets { found }),
            };
            let start = HEADER_LEN + at + HEADER_LEN;
            *slot = (start, start + text.len());
        }
        let [_, _, _, time_58] = texts;
        let payload_at = body.len() - packets.rest.len();
        let mut starts = [0; INLINE];
        let mut payload_len = 0;
        loop {
            let at = body.len() - packets.rest.len();
            let Some(packet) = packets.next() else { break };
            if payload_len + 4 >= limits.max_packets {
                return Err(WireError::TooManyPackets {
                    max: limits.max_packets,
                });
            }
            packet?;
            if let Some(slot) = starts.get_mut(payload_len) {
                *slot = HEADER_LEN + at;
            }
            payload_len += 1;
        }
        let time = base58::decode_u64_bytes(time_58)?;
        // py2p hashes the time's canonical text, whatever text arrived: made again only when
        // the text that arrived is not canonical.
        let canonical = (!base58::is_canonical_u64(time_58)).then(|| base58::U64Text::new(time));
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(&frame_len(body.len()));
        frame.extend_from_slice(body);
        let msg = Message {
            frame,
            time,
            head,
            payload_at: HEADER_LEN + payload_at,
            payload_len,
            starts,
        };
        Ok(Unchecked {
            msg,
            canonical,
            too_large: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha384_each;
    use crate::Compression;
    use proptest::prelude::*;

    /// `Message::decode_plain` as it was before the unchecked decode: the packets hashed as
    /// they are read, then the id check, then the copy.
    fn decode_as_before(body: &[u8], limits: &Limits) -> Result<Message, WireError> {
        let mut packets = Packets {
            rest: body,
            index: 0,
        };
        let mut head = [(0, 0); 4];
        let mut texts: [&[u8]; 4] = [&[]; 4];
        for (found, (slot, text)) in head.iter_mut().zip(texts.iter_mut()).enumerate() {
            let at = body.len() - packets.rest.len();
            *text = match packets.next() {
                Some(packet) => packet?,
                None => return Err(WireError::TooFewPackets { found }),
            };
            let start = HEADER_LEN + at + HEADER_LEN;
            *slot = (start, start + text.len());
        }
        let [_, _, id, time_58] = texts;
        let payload_at = body.len() - packets.rest.len();
        // The hint only picks the hash implementation; the packets' headers count too.
        let mut hasher = Sha384::for_len(packets.rest.len());
        let mut starts = [0; INLINE];
        let mut payload_len = 0;
        loop {
            let at = body.len() - packets.rest.len();
            let Some(packet) = packets.next() else { break };
            if payload_len + 4 >= limits.max_packets {
                return Err(WireError::TooManyPackets {
                    max: limits.max_packets,
                });
            }
            hasher.update(packet?);
            if let Some(slot) = starts.get_mut(payload_len) {
                *slot = HEADER_LEN + at;
            }
            payload_len += 1;
        }
        let time = base58::decode_u64_bytes(time_58)?;
        // py2p hashes the time's canonical text, whatever text arrived: made again only when
        // the text that arrived is not canonical.
        let remade;
        let canonical = if base58::is_canonical_u64(time_58) {
            time_58
        } else {
            remade = base58::U64Text::new(time);
            remade.as_bytes()
        };
        hasher.update(canonical);
        let digest = hasher.finish();
        // Checking the id by decoding it is much cheaper than encoding the digest.
        if !base58::is_encoding_of(id, &digest) {
            return Err(WireError::ChecksumMismatch {
                declared: String::from_utf8_lossy(id).into_owned(),
                computed: base58::encode_be_bytes(&digest),
            });
        }
        if time_58 != canonical {
            // Non-canonical time text (leading '1's): the message travels on with the
            // canonical one, as py2p re-encodes it. Rare, so the packets are gathered again.
            let [msg_type, sender, ..] = texts;
            let payload: Vec<&[u8]> = Packets {
                rest: body.get(payload_at..).unwrap_or_default(),
                index: 0,
            }
            .filter_map(Result::ok)
            .collect();
            return Ok(Message::from_packets(msg_type, sender, &payload, time));
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(&frame_len(body.len()));
        frame.extend_from_slice(body);
        Ok(Message {
            frame,
            time,
            head,
            payload_at: HEADER_LEN + payload_at,
            payload_len,
            starts,
        })
    }

    /// `PlainBody::decode` as it was before the unchecked decode.
    fn decode_body_as_before(
        body: &[u8],
        methods: &[Compression],
        limits: &Limits,
    ) -> Result<Message, WireError> {
        let plain = PlainBody::unpack(body, methods, limits);
        match (decode_as_before(&plain.plain, limits), plain.too_large) {
            (Err(_), Some(e)) => Err(e),
            (result, _) => result,
        }
    }

    /// The unchecked decode of each body, finished with digests made together.
    fn decode_together(
        bodies: &[Vec<u8>],
        methods: &[Compression],
        limits: &Limits,
    ) -> Vec<Result<Message, WireError>> {
        let unchecked: Vec<Result<Unchecked, WireError>> = bodies
            .iter()
            .map(|b| PlainBody::unpack(b, methods, limits).decode_unchecked(limits))
            .collect();
        let mut digests = Vec::new();
        sha384_each(
            unchecked.iter().flatten().map(Unchecked::digest_input),
            &mut digests,
        );
        let mut digests = digests.iter();
        unchecked
            .into_iter()
            .map(|u| {
                let u = u?;
                let digest = *digests.next().expect("a digest per unchecked message");
                assert_eq!(digest, u.digest());
                u.check(&digest)
            })
            .collect()
    }

    /// A body whose time packet is `time` spelled with `ones` leading zero digits.
    fn padded_time_body(msg: &Message, ones: usize, id: &[u8]) -> Vec<u8> {
        let time = format!("{}{}", "1".repeat(ones), msg.time_58());
        let mut body = Vec::new();
        let head: [&[u8]; 4] = [msg.msg_type(), msg.sender(), id, time.as_bytes()];
        for p in head.into_iter().chain(msg.payload().iter()) {
            body.extend_from_slice(&(p.len() as u32).to_be_bytes());
            body.extend_from_slice(p);
        }
        body
    }

    #[test]
    fn a_time_with_leading_ones_is_hashed_and_travels_canonical() {
        let msg = Message::new(
            vec![0],
            b"s".to_vec(),
            vec![vec![0], b"x".to_vec()],
            1 << 40,
        );
        let limits = Limits::default();
        let good = padded_time_body(&msg, 2, msg.id().as_bytes());
        let forged = padded_time_body(&msg, 2, &msg.id().as_bytes()[1..]);
        let got = decode_together(&[good.clone(), forged.clone()], &[], &limits);
        assert_eq!(got[0], Ok(msg.clone()));
        assert_eq!(got[0].as_ref().map(Message::time_58), Ok(msg.time_58()));
        assert!(matches!(got[1], Err(WireError::ChecksumMismatch { .. })));
        for (body, result) in [good, forged].iter().zip(&got) {
            assert_eq!(&decode_body_as_before(body, &[], &limits), result);
        }
    }

    proptest! {
        /// Decoded unchecked and finished with digests made together, every body gives
        /// what `PlainBody::decode` gives: the message, or the same error (a forged id, a
        /// cut or flipped byte, an oversize compressed body, a time with leading '1's).
        #[test]
        fn checked_together_is_decoded_one_by_one(
            messages in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5),
                    any::<u64>(),
                    0usize..4,
                    any::<usize>(),
                    any::<u8>(),
                ),
                0..20,
            ),
            method in proptest::option::of(proptest::sample::select(Compression::ALL.to_vec())),
            small in any::<bool>(),
        ) {
            let limits = Limits {
                max_decompressed_len: if small { 200 } else { Limits::default().max_decompressed_len },
                max_packets: 6,
                ..Limits::default()
            };
            let methods: Vec<Compression> = method.into_iter().collect();
            let bodies: Vec<Vec<u8>> = messages
                .iter()
                .map(|(payload, time, how, at, byte)| {
                    let msg = Message::new(vec![0], b"sender".to_vec(), payload.clone(), *time);
                    let mut plain = match how {
                        // A time with leading '1's.
                        3 => padded_time_body(&msg, 1 + at % 3, msg.id().as_bytes()),
                        _ => msg.encode(None).split_off(4),
                    };
                    match how {
                        // One byte changed (a forged id, a broken header, another payload).
                        1 if !plain.is_empty() => {
                            let at = at % plain.len();
                            plain[at] ^= byte | 1;
                        }
                        // Cut short.
                        2 => plain.truncate(at % (plain.len() + 1)),
                        _ => {}
                    }
                    match method {
                        Some(m) => m.compress(&plain),
                        None => plain,
                    }
                })
                .collect();
            let together = decode_together(&bodies, &methods, &limits);
            for (body, got) in bodies.iter().zip(together) {
                let before = decode_body_as_before(body, &methods, &limits);
                prop_assert_eq!(&got, &before);
                prop_assert_eq!(&PlainBody::unpack(body, &methods, &limits).decode(&limits), &before);
            }
        }
    }
}
