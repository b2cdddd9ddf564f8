//! sha-384 of many inputs in one call: the batch form of [`Sha384`](super::Sha384).
//!
//! A node hashes every message it sends (the id) and every one it receives (the check), and
//! most are a few hundred bytes. Hashed one at a time, each is a serial chain of 80 rounds
//! per 128-byte block; hashed side by side, several short inputs share one pass of wide
//! instructions. [`sha384_each`] is the entry point callers batch through; today it hashes
//! one input after the other, with [`Sha384::for_len`](super::Sha384::for_len)'s choice of
//! implementation.

use super::{Sha384, SHA384_LEN};

/// Appends to `out` the sha-384 of each input, in order. An input is the concatenation of
/// its pieces (a message's payload packets and its time text, say), so nothing is copied to
/// join them.
///
/// ```
/// use py2p_wire::digest::{sha384, sha384_each};
/// let inputs: [[&[u8]; 2]; 2] = [[b"hello ", b"world"], [b"", b"abc"]];
/// let mut out = Vec::new();
/// sha384_each(inputs, &mut out);
/// assert_eq!(out, [sha384(b"hello world"), sha384(b"abc")]);
/// ```
pub fn sha384_each<'p, I, P>(inputs: I, out: &mut Vec<[u8; SHA384_LEN]>)
where
    I: IntoIterator<Item = P>,
    P: IntoIterator<Item = &'p [u8]>,
    P::IntoIter: Clone,
{
    for input in inputs {
        let pieces = input.into_iter();
        let len = pieces.clone().map(<[u8]>::len).sum();
        let mut h = Sha384::for_len(len);
        for piece in pieces {
            h.update(piece);
        }
        out.push(h.finish());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha384;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn each_digest_is_the_digest_of_the_joined_pieces(
            inputs in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4),
                0..10,
            )
        ) {
            let mut out = vec![[0u8; SHA384_LEN]];
            sha384_each(inputs.iter().map(|pieces| pieces.iter().map(Vec::as_slice)), &mut out);
            prop_assert_eq!(out.len(), inputs.len() + 1);
            for (pieces, digest) in inputs.iter().zip(&out[1..]) {
                prop_assert_eq!(*digest, sha384(&pieces.concat()));
            }
        }
    }
}
