//! Four sha-384s side by side: SHA-512's compression on AVX2, one input per 64-bit lane.
//!
//! One sha-384 is a serial chain of 80 rounds per 128-byte block, which leaves most of a
//! core's vector units idle. Here each 256-bit register holds the same variable of four
//! independent computations, so one pass of the rounds compresses a block of each of four
//! inputs (on the AMD EPYC this was measured on: about 2.3× `sha2`'s one-at-a-time
//! throughput per block; the codec bench's `digest` group).
//!
//! [`sha384_each_avx2`] streams the inputs through the four lanes: each lane copies its
//! input's pieces into a 128-byte block with SHA padding ([`Lane::next_block`]), and a lane
//! whose input has ended hands its digest over and takes the next input at once, so inputs
//! of different lengths do not wait for one another. Inputs of [`OPENSSL_FROM`] bytes and
//! more, and an input that would run alone in the lanes, are hashed one at a time by
//! [`Sha384`].
//!
//! Only the register-to-register intrinsics are used (building the message words with
//! `u64::from_be_bytes`): they are safe inside a `#[target_feature(enable = "avx2")]`
//! function; the one `unsafe` is the caller's, which checks the CPU first.

use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_extract_epi64, _mm256_or_si256,
    _mm256_set1_epi64x, _mm256_set_epi64x, _mm256_setr_epi8, _mm256_shuffle_epi8,
    _mm256_slli_epi64, _mm256_srli_epi64, _mm256_xor_si256,
};

use super::single::{Sha384, OPENSSL_FROM, SHA384_LEN};

/// SHA-512's block size in bytes.
const BLOCK: usize = 128;

/// Where the 128-bit message length starts in the last block.
const LENGTH_AT: usize = BLOCK - 16;

/// sha-384's initial state (FIPS 180-4, 5.3.4).
const H0: [u64; 8] = [
    0xcbbb_9d5d_c105_9ed8,
    0x629a_292a_367c_d507,
    0x9159_015a_3070_dd17,
    0x152f_ecd8_f70e_5939,
    0x6733_2667_ffc0_0b31,
    0x8eb4_4a87_6858_1511,
    0xdb0c_2e0d_64f9_8fa7,
    0x47b5_481d_befa_4fa4,
];

/// SHA-512's round constants (FIPS 180-4, 4.2.3), 16 per row: one row per pass of the
/// 16-word message schedule.
const K: [[u64; 16]; 5] = [
    [
        0x428a2f98d728ae22,
        0x7137449123ef65cd,
        0xb5c0fbcfec4d3b2f,
        0xe9b5dba58189dbbc,
        0x3956c25bf348b538,
        0x59f111f1b605d019,
        0x923f82a4af194f9b,
        0xab1c5ed5da6d8118,
        0xd807aa98a3030242,
        0x12835b0145706fbe,
        0x243185be4ee4b28c,
        0x550c7dc3d5ffb4e2,
        0x72be5d74f27b896f,
        0x80deb1fe3b1696b1,
        0x9bdc06a725c71235,
        0xc19bf174cf692694,
    ],
    [
        0xe49b69c19ef14ad2,
        0xefbe4786384f25e3,
        0x0fc19dc68b8cd5b5,
        0x240ca1cc77ac9c65,
        0x2de92c6f592b0275,
        0x4a7484aa6ea6e483,
        0x5cb0a9dcbd41fbd4,
        0x76f988da831153b5,
        0x983e5152ee66dfab,
        0xa831c66d2db43210,
        0xb00327c898fb213f,
        0xbf597fc7beef0ee4,
        0xc6e00bf33da88fc2,
        0xd5a79147930aa725,
        0x06ca6351e003826f,
        0x142929670a0e6e70,
    ],
    [
        0x27b70a8546d22ffc,
        0x2e1b21385c26c926,
        0x4d2c6dfc5ac42aed,
        0x53380d139d95b3df,
        0x650a73548baf63de,
        0x766a0abb3c77b2a8,
        0x81c2c92e47edaee6,
        0x92722c851482353b,
        0xa2bfe8a14cf10364,
        0xa81a664bbc423001,
        0xc24b8b70d0f89791,
        0xc76c51a30654be30,
        0xd192e819d6ef5218,
        0xd69906245565a910,
        0xf40e35855771202a,
        0x106aa07032bbd1b8,
    ],
    [
        0x19a4c116b8d2d0c8,
        0x1e376c085141ab53,
        0x2748774cdf8eeb99,
        0x34b0bcb5e19b48a8,
        0x391c0cb3c5c95a63,
        0x4ed8aa4ae3418acb,
        0x5b9cca4f7763e373,
        0x682e6ff3d6b2b8a3,
        0x748f82ee5defb2fc,
        0x78a5636f43172f60,
        0x84c87814a1f0ab72,
        0x8cc702081a6439ec,
        0x90befffa23631e28,
        0xa4506cebde82bde9,
        0xbef9a3f7b2c67915,
        0xc67178f2e372532b,
    ],
    [
        0xca273eceea26619c,
        0xd186b8c721c0c207,
        0xeada7dd6cde0eb1e,
        0xf57d4f7fee6ed178,
        0x06f067aa72176fba,
        0x0a637dc5a2c898a6,
        0x113f9804bef90dae,
        0x1b710b35131c471b,
        0x28db77f523047d84,
        0x32caab7b40c72493,
        0x3c9ebe0a15c9bebc,
        0x431d67c49c100d4c,
        0x4cc5d4becb3e42b6,
        0x597f299cfc657e2a,
        0x5fcb6fab3ad6faec,
        0x6c44198c4a475817,
    ],
];

/// The fewest inputs worth hashing in the lanes: a lone input is hashed by [`Sha384`],
/// which runs one block in about half the time the four lanes take.
const MIN_LANES: usize = 2;

/// One input on its way through a lane: the pieces not yet copied and where the padding
/// stands.
struct Lane<'p, I> {
    /// Index of this input's digest in the output.
    slot: usize,
    /// The pieces after `piece`.
    pieces: I,
    /// What is left of the piece being copied.
    piece: &'p [u8],
    /// Bytes of input copied so far.
    copied: u64,
    /// Whether the `0x80` byte that ends the input has been written.
    ended: bool,
    /// Whether no block has been taken yet.
    fresh: bool,
}

impl<'p, I: Iterator<Item = &'p [u8]>> Lane<'p, I> {
    fn new(slot: usize, pieces: I) -> Self {
        Lane {
            slot,
            pieces,
            piece: &[],
            copied: 0,
            ended: false,
            fresh: true,
        }
    }

    /// Writes the next block of the padded input (the input, `0x80`, zeros, the input's
    /// length in bits as 128-bit big-endian) into `block`; true when it is the last.
    ///
    /// The padding follows the bytes the pieces actually yield, not a length computed
    /// before, so the digest is that of what was copied whatever the iterator does.
    fn next_block(&mut self, block: &mut [u8; BLOCK]) -> bool {
        self.fresh = false;
        let mut filled = 0;
        while !self.ended && filled < BLOCK {
            if self.piece.is_empty() {
                match self.pieces.next() {
                    Some(piece) => {
                        self.piece = piece;
                        continue;
                    }
                    None => break,
                }
            }
            let take = self.piece.len().min(BLOCK - filled);
            let (head, tail) = self.piece.split_at(take);
            if let Some(to) = block.get_mut(filled..filled + take) {
                to.copy_from_slice(head);
            }
            self.piece = tail;
            filled += take;
        }
        self.copied += filled as u64;
        if filled < BLOCK && !self.ended {
            if let Some(to) = block.get_mut(filled) {
                *to = 0x80;
            }
            filled += 1;
            self.ended = true;
        }
        if !self.ended || filled > LENGTH_AT {
            if let Some(rest) = block.get_mut(filled..) {
                rest.fill(0);
            }
            return false;
        }
        let (padding, length) = block.split_at_mut(LENGTH_AT);
        if let Some(rest) = padding.get_mut(filled..) {
            rest.fill(0);
        }
        let bits = u128::from(self.copied) * 8;
        length.copy_from_slice(&bits.to_be_bytes());
        true
    }
}

/// Like [`sha384_each`](super::sha384_each), with the short inputs hashed four at a time.
///
/// Only callable where the CPU has AVX2 (the caller checks).
#[target_feature(enable = "avx2")]
pub(super) fn sha384_each_avx2<'p, I, P>(inputs: I, out: &mut Vec<[u8; SHA384_LEN]>)
where
    I: IntoIterator<Item = P>,
    P: IntoIterator<Item = &'p [u8]>,
    P::IntoIter: Clone,
{
    let mut inputs = inputs.into_iter();
    let mut lanes: [Option<Lane<'p, P::IntoIter>>; 4] = [None, None, None, None];
    let mut state = [H0; 4];
    let mut blocks = [[0u8; BLOCK]; 4];
    let mut more = true;
    loop {
        if more {
            for (lane, state) in lanes.iter_mut().zip(&mut state) {
                if lane.is_none() {
                    *lane = next_short(&mut inputs, out);
                    if lane.is_none() {
                        more = false;
                        break;
                    }
                    *state = H0;
                }
            }
        }
        let busy = lanes.iter().flatten().count();
        if busy == 0 {
            return;
        }
        if !more && busy < MIN_LANES {
            // A lone input that has not started: one at a time is cheaper.
            if let Some(lane) = lanes
                .iter_mut()
                .find(|l| l.as_ref().is_some_and(|l| l.fresh))
            {
                if let Some(lane) = lane.take() {
                    write(out, lane.slot, one(lane.pieces));
                }
                continue;
            }
        }
        let mut last = [false; 4];
        for ((lane, block), last) in lanes.iter_mut().zip(&mut blocks).zip(&mut last) {
            if let Some(lane) = lane {
                *last = lane.next_block(block);
            }
        }
        compress4(&mut state, &blocks);
        #[cfg(test)]
        tests::BLOCKS.with(|b| b.set(b.get() + 1));
        for ((lane, state), last) in lanes.iter_mut().zip(&state).zip(last) {
            if last {
                if let Some(lane) = lane.take() {
                    write(out, lane.slot, digest(state));
                }
            }
        }
    }
}

/// The next input short enough for the lanes, with a slot for its digest in `out`; longer
/// ones met on the way are hashed at once. None when the inputs are exhausted.
fn next_short<'p, I, P>(inputs: &mut I, out: &mut Vec<[u8; SHA384_LEN]>) -> Option<Lane<'p, P>>
where
    I: Iterator,
    I::Item: IntoIterator<IntoIter = P>,
    P: Iterator<Item = &'p [u8]> + Clone,
{
    for input in inputs {
        let pieces = input.into_iter();
        let len: usize = pieces.clone().map(<[u8]>::len).sum();
        if len >= OPENSSL_FROM {
            out.push(one(pieces));
        } else {
            out.push([0; SHA384_LEN]);
            return Some(Lane::new(out.len() - 1, pieces));
        }
    }
    None
}

/// sha-384 of the concatenation of `pieces`, by [`Sha384`].
fn one<'p>(pieces: impl Iterator<Item = &'p [u8]> + Clone) -> [u8; SHA384_LEN] {
    let mut h = Sha384::for_len(pieces.clone().map(<[u8]>::len).sum());
    for piece in pieces {
        h.update(piece);
    }
    h.finish()
}

fn write(out: &mut [[u8; SHA384_LEN]], slot: usize, digest: [u8; SHA384_LEN]) {
    if let Some(to) = out.get_mut(slot) {
        *to = digest;
    }
}

/// The digest of a finished state: its first six words, big-endian.
fn digest(state: &[u64; 8]) -> [u8; SHA384_LEN] {
    let mut out = [0; SHA384_LEN];
    for (to, word) in out.chunks_exact_mut(8).zip(state) {
        to.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// `x` rotated right by `n` bits in each lane.
macro_rules! rotr {
    ($x:expr, $n:literal) => {{
        let x = $x;
        _mm256_or_si256(
            _mm256_srli_epi64::<$n>(x),
            _mm256_slli_epi64::<{ 64 - $n }>(x),
        )
    }};
}

/// Adds its arguments lane by lane.
macro_rules! add {
    ($x:expr, $($y:expr),+) => { add!(@ $x $(, $y)+) };
    (@ $x:expr) => { $x };
    (@ $x:expr, $y:expr $(, $z:expr)*) => { add!(@ _mm256_add_epi64($x, $y) $(, $z)*) };
}

/// XORs its arguments lane by lane.
macro_rules! xor {
    ($x:expr, $($y:expr),+) => { xor!(@ $x $(, $y)+) };
    (@ $x:expr) => { $x };
    (@ $x:expr, $y:expr $(, $z:expr)*) => { xor!(@ _mm256_xor_si256($x, $y) $(, $z)*) };
}

/// One block of each lane through SHA-512's compression: `state[lane]` is that lane's
/// state (`H0` before its first block), `blocks[lane]` its next block.
#[target_feature(enable = "avx2")]
fn compress4(state: &mut [[u64; 8]; 4], blocks: &[[u8; BLOCK]; 4]) {
    // Byte shuffle that rotates each 64-bit lane right by 8 bits.
    let rotr8 = _mm256_setr_epi8(
        1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11,
        12, 13, 14, 15, 8,
    );
    let mut w = message_words(blocks);
    let v = |i: usize| {
        let word = |lane: &[u64; 8]| lane.get(i).copied().unwrap_or(0) as i64;
        _mm256_set_epi64x(
            word(&state[3]),
            word(&state[2]),
            word(&state[1]),
            word(&state[0]),
        )
    };
    let start = [v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)];
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = start;
    // b ^ c of the coming round: the last round's a ^ b (for maj).
    let mut bc = _mm256_xor_si256(b, c);

    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident,
         $k:ident, $i:literal) => {
            let s1 = xor!(rotr!($e, 14), rotr!($e, 18), rotr!($e, 41));
            let ch = xor!(_mm256_and_si256(xor!($f, $g), $e), $g);
            // Sums ordered so that what depends on this round's `e` comes last: the chain
            // from `e` to the next `e` is Σ1, one add to t1, one to d.
            let t1 = add!(add!($h, w[$i], _mm256_set1_epi64x($k[$i] as i64)), ch, s1);
            let s0 = xor!(rotr!($a, 28), rotr!($a, 34), rotr!($a, 39));
            let ab = _mm256_xor_si256($a, $b);
            let maj = _mm256_xor_si256($b, _mm256_and_si256(ab, bc));
            bc = ab;
            $d = add!($d, t1);
            $h = add!(t1, add!(s0, maj));
        };
    }
    // The next 16 words of the schedule, in place: W[t] = σ1(W[t-2]) + W[t-7] +
    // σ0(W[t-15]) + W[t-16], indices mod 16.
    macro_rules! schedule {
        ($i:literal) => {
            let x = w[($i + 1) & 15];
            let s0 = xor!(
                rotr!(x, 1),
                _mm256_shuffle_epi8(x, rotr8),
                _mm256_srli_epi64::<7>(x)
            );
            let y = w[($i + 14) & 15];
            let s1 = xor!(rotr!(y, 19), rotr!(y, 61), _mm256_srli_epi64::<6>(y));
            w[$i] = add!(w[$i], s0, w[($i + 9) & 15], s1);
        };
    }

    for (pass, k) in K.iter().enumerate() {
        if pass > 0 {
            schedule!(0);
            schedule!(1);
            schedule!(2);
            schedule!(3);
            schedule!(4);
            schedule!(5);
            schedule!(6);
            schedule!(7);
            schedule!(8);
            schedule!(9);
            schedule!(10);
            schedule!(11);
            schedule!(12);
            schedule!(13);
            schedule!(14);
            schedule!(15);
        }
        round!(a, b, c, d, e, f, g, h, k, 0);
        round!(h, a, b, c, d, e, f, g, k, 1);
        round!(g, h, a, b, c, d, e, f, k, 2);
        round!(f, g, h, a, b, c, d, e, k, 3);
        round!(e, f, g, h, a, b, c, d, k, 4);
        round!(d, e, f, g, h, a, b, c, k, 5);
        round!(c, d, e, f, g, h, a, b, k, 6);
        round!(b, c, d, e, f, g, h, a, k, 7);
        round!(a, b, c, d, e, f, g, h, k, 8);
        round!(h, a, b, c, d, e, f, g, k, 9);
        round!(g, h, a, b, c, d, e, f, k, 10);
        round!(f, g, h, a, b, c, d, e, k, 11);
        round!(e, f, g, h, a, b, c, d, k, 12);
        round!(d, e, f, g, h, a, b, c, k, 13);
        round!(c, d, e, f, g, h, a, b, k, 14);
        round!(b, c, d, e, f, g, h, a, k, 15);
    }

    let end = [a, b, c, d, e, f, g, h];
    for ((word, start), end) in (0..8).zip(start).zip(end) {
        let sum = _mm256_add_epi64(start, end);
        let lanes = [
            _mm256_extract_epi64::<0>(sum),
            _mm256_extract_epi64::<1>(sum),
            _mm256_extract_epi64::<2>(sum),
            _mm256_extract_epi64::<3>(sum),
        ];
        for (lane, value) in state.iter_mut().zip(lanes) {
            if let Some(to) = lane.get_mut(word) {
                *to = value as u64;
            }
        }
    }
}

/// The 16 message words of each lane's block, word `t` of lane `l` in `w[t]`'s lane `l`.
#[target_feature(enable = "avx2")]
fn message_words(blocks: &[[u8; BLOCK]; 4]) -> [__m256i; 16] {
    let [b0, b1, b2, b3] = blocks;
    let mut w = [_mm256_set1_epi64x(0); 16];
    for ((((w, x0), x1), x2), x3) in w
        .iter_mut()
        .zip(b0.as_chunks::<8>().0)
        .zip(b1.as_chunks::<8>().0)
        .zip(b2.as_chunks::<8>().0)
        .zip(b3.as_chunks::<8>().0)
    {
        *w = _mm256_set_epi64x(
            u64::from_be_bytes(*x3) as i64,
            u64::from_be_bytes(*x2) as i64,
            u64::from_be_bytes(*x1) as i64,
            u64::from_be_bytes(*x0) as i64,
        );
    }
    w
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Blocks compressed by the lanes on this thread (tests only).
        pub(in crate::digest) static BLOCKS: Cell<u64> = const { Cell::new(0) };
    }

    /// Every padding edge: each input's blocks from the lane's block writer, joined, are
    /// the input, `0x80`, zeros and its length, a multiple of 128 bytes, whatever the
    /// pieces.
    #[test]
    fn the_blocks_are_the_padded_input() {
        for len in [
            0usize, 1, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 1000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let mut want = data.clone();
            want.push(0x80);
            while want.len() % BLOCK != LENGTH_AT {
                want.push(0);
            }
            want.extend_from_slice(&(len as u128 * 8).to_be_bytes());
            for piece in [1, 5, 128, 1000] {
                let pieces: Vec<&[u8]> = data.chunks(piece).chain([&[][..]]).collect();
                let mut lane = Lane::new(0, pieces.into_iter());
                let mut got = Vec::new();
                let mut block = [0xAA; BLOCK];
                while !lane.next_block(&mut block) {
                    got.extend_from_slice(&block);
                }
                got.extend_from_slice(&block);
                assert_eq!(got, want, "len {len}, pieces of {piece}");
            }
        }
    }
}
