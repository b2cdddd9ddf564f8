//! sha-384 of many inputs in one call: the batch form of [`Sha384`](super::Sha384).
//!
//! A node hashes every message it sends (the id) and every one it receives (the check), and
//! most are a few hundred bytes. Hashed one at a time, each is a serial chain of 80 rounds
//! per 128-byte block; hashed side by side, several short inputs share one pass of wide
//! instructions. [`sha384_each`] is the entry point callers batch through: on x86-64 with
//! AVX2 it hashes inputs under [`OPENSSL_FROM`](super::OPENSSL_FROM) bytes four at a time
//! (`lanes.rs`); elsewhere, and for longer inputs, one after the other with
//! [`Sha384::for_len`](super::Sha384::for_len)'s choice of implementation.

use super::single::{Sha384, SHA384_LEN};

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
    let inputs = inputs.into_iter();
    // A lone input takes the plain path at once (the lanes would hash it alone too, after
    // setting up four).
    #[cfg(target_arch = "x86_64")]
    if inputs.size_hint().1.is_none_or(|most| most > 1) && lanes_available() {
        // SAFETY: `sha384_each_avx2` only needs the CPU to have AVX2, which
        // `lanes_available` has just checked at run time.
        #[allow(unsafe_code)]
        unsafe {
            super::lanes::sha384_each_avx2(inputs, out);
        }
        return;
    }
    one_at_a_time(inputs, out);
}

/// Whether [`sha384_each`] hashes short inputs four at a time: on x86-64 when the CPU has
/// AVX2 (std caches the answer).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn lanes_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`sha384_each`] one input after the other: the path without AVX2.
pub(crate) fn one_at_a_time<'p, I, P>(inputs: I, out: &mut Vec<[u8; SHA384_LEN]>)
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
    use crate::digest::single::OPENSSL_FROM;
    use proptest::prelude::*;
    use sha2::Digest;

    /// The digests both paths give, checked against `sha2` on the joined pieces.
    fn check(inputs: &[Vec<&[u8]>]) {
        let want: Vec<[u8; SHA384_LEN]> = inputs
            .iter()
            .map(|pieces| sha2::Sha384::digest(pieces.concat()).into())
            .collect();
        let mut out = vec![[7u8; SHA384_LEN]];
        sha384_each(inputs.iter().map(|p| p.iter().copied()), &mut out);
        assert_eq!(
            out.first(),
            Some(&[7u8; SHA384_LEN]),
            "what was in out stays"
        );
        assert_eq!(&out[1..], &want[..], "sha384_each");
        let mut out = Vec::new();
        one_at_a_time(inputs.iter().map(|p| p.iter().copied()), &mut out);
        assert_eq!(out, want, "one at a time");
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        py2p_testkit::Rng::new(seed).bytes(len)
    }

    /// `data` cut at `cuts` (positions taken modulo its length + 1), empty pieces included.
    fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for to in at.into_iter().chain([data.len()]) {
            pieces.push(&data[from..to]);
            from = to;
        }
        pieces
    }

    proptest! {
        #[test]
        fn each_digest_is_the_digest_of_the_joined_pieces(
            inputs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..1100),
                 proptest::collection::vec(any::<usize>(), 0..5)),
                0..20,
            )
        ) {
            let pieces: Vec<Vec<&[u8]>> =
                inputs.iter().map(|(data, cuts)| split(data, cuts)).collect();
            check(&pieces);
        }
    }

    /// The lengths where SHA padding changes its number of blocks (the `0x80` and the
    /// 16-byte length fit in the last block up to 111 bytes into it), each in a lane beside
    /// others of other lengths, so lanes end at different blocks and take new inputs midway;
    /// plus the lengths around the lanes' bound.
    #[test]
    fn the_padding_edges_in_every_lane() {
        let lens = [
            0,
            1,
            111,
            112,
            127,
            128,
            239,
            240,
            255,
            256,
            OPENSSL_FROM - 1,
            OPENSSL_FROM,
            1100,
        ];
        let data: Vec<Vec<u8>> = lens.iter().map(|&n| bytes(n, n as u64)).collect();
        for shift in 0..lens.len() {
            for cut in [0, 1, 64, 127] {
                let mut inputs: Vec<Vec<&[u8]>> =
                    data.iter().map(|d| split(d, &[cut, cut + 128])).collect();
                inputs.rotate_left(shift);
                check(&inputs);
                inputs.reverse();
                check(&inputs);
                // Each length four times in a row: four lanes of one length.
                let fours: Vec<Vec<&[u8]>> = inputs
                    .iter()
                    .flat_map(|i| std::iter::repeat_n(i.clone(), 4))
                    .collect();
                check(&fours);
            }
        }
    }

    /// FIPS 180-2, appendix D.1 and D.2: sha-384 of "abc" and of the 112-byte message,
    /// through every lane and alone.
    #[test]
    fn known_answers() {
        let abc = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                   8086072ba1e7cc2358baeca134c825a7";
        let long_text: &[u8] = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn\
                                 hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
        let long = "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712\
                    fcc7c71a557e2db966c3e9fa91746039";
        let hex = |d: &[u8; SHA384_LEN]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for n in 1..=9 {
            let inputs: Vec<[&[u8]; 2]> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        [&b"ab"[..], b"c"]
                    } else {
                        [long_text, b""]
                    }
                })
                .collect();
            let mut out = Vec::new();
            sha384_each(inputs, &mut out);
            for (i, d) in out.iter().enumerate() {
                assert_eq!(
                    hex(d),
                    if i % 2 == 0 { abc } else { long },
                    "{n} inputs, #{i}"
                );
            }
        }
    }

    /// With AVX2, short inputs go through the lanes (two blocks for four inputs of 200
    /// bytes), a lone one and a long one do not; without, nothing does.
    #[test]
    fn the_lanes_are_the_path_taken_when_the_cpu_has_avx2() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(lanes_available(), std::is_x86_feature_detected!("avx2"));
        let short = bytes(200, 1);
        let long = bytes(OPENSSL_FROM, 2);
        let lane_blocks = || {
            #[cfg(target_arch = "x86_64")]
            {
                crate::digest::lanes::tests::BLOCKS.with(std::cell::Cell::get)
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                0
            }
        };
        let blocks = |inputs: Vec<[&[u8]; 1]>| {
            let before = lane_blocks();
            sha384_each(inputs, &mut Vec::new());
            lane_blocks() - before
        };
        let lanes = lanes_available();
        assert_eq!(blocks(vec![[&short]; 4]), if lanes { 2 } else { 0 });
        assert_eq!(blocks(vec![[&short]; 2]), if lanes { 2 } else { 0 });
        assert_eq!(blocks(vec![[&short]]), 0);
        assert_eq!(blocks(vec![[&long]; 4]), 0);
        assert_eq!(blocks(vec![[&long], [&short], [&long]]), 0);
    }
}
