//! py2p's base-58: an *integer* encoding.
//!
//! py2p writes a number most significant digit first in the alphabet
//! `123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz`, and writes zero as `"1"`.
//! Byte strings are encoded as the big-endian integer they spell, so leading zero bytes are
//! *not* kept as leading `1`s the way Bitcoin's Base58 keeps them: a byte-oriented library
//! gives a different id for about one sha-384 digest in 256.
//!
//! ```
//! use py2p_wire::base58;
//! assert_eq!(base58::encode_u64(0), "1");
//! assert_eq!(base58::encode_u64(58), "21");
//! assert_eq!(base58::decode_u64("21").unwrap(), 58);
//! // Leading zero bytes vanish: this is the integer 1.
//! assert_eq!(base58::encode_be_bytes(&[0, 0, 1]), "2");
//! assert!(base58::decode_u64("0OIl").is_err());
//! ```

use crate::WireError;

/// py2p's alphabet, in digit order.
pub const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// 58^5, the largest power of 58 below 2^32: the radix of one limb step.
const RADIX5: u64 = 58 * 58 * 58 * 58 * 58;

/// Maps an ASCII byte to its digit value, or 0xFF for bytes outside the alphabet.
// Evaluated at compile time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing)]
const DECODE_TABLE: [u8; 256] = {
    let mut table = [0xFF_u8; 256];
    let mut i = 0;
    while i < 58 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn digit(ch: u8) -> u8 {
    // Indexing a 256-entry table with a u8 can never go out of bounds.
    #[allow(clippy::indexing_slicing)]
    DECODE_TABLE[ch as usize]
}

/// The character of digit `d < 58`.
fn alphabet(d: u64) -> u8 {
    usize::try_from(d)
        .ok()
        .and_then(|d| ALPHABET.get(d))
        .copied()
        .unwrap_or(ALPHABET[0])
}

/// Encodes an integer as py2p does (`to_base_58`).
pub fn encode_u64(n: u64) -> String {
    U64Text::new(n).as_str().to_owned()
}

/// The base-58 text of a `u64`, on the stack (at most 11 digits): what
/// [`encode_u64`] returns, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct U64Text {
    digits: [u8; 11],
    start: usize,
}

impl U64Text {
    /// Encodes `n` (zero is `"1"`).
    pub fn new(mut n: u64) -> U64Text {
        let mut digits = [ALPHABET[0]; 11];
        let mut start = digits.len();
        loop {
            start -= 1;
            if let Some(slot) = digits.get_mut(start) {
                *slot = alphabet(n % 58);
            }
            n /= 58;
            if n == 0 || start == 0 {
                return U64Text { digits, start };
            }
        }
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.start..).unwrap_or_default()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Every byte is from the ASCII alphabet, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// Decodes py2p base-58 text into an integer (`from_base_58`).
///
/// The empty text decodes to 0, as in py2p. Characters outside the alphabet are an error, and
/// so is a value that does not fit 64 bits.
pub fn decode_u64(text: &str) -> Result<u64, WireError> {
    let mut n: u64 = 0;
    for (position, ch) in text.chars().enumerate() {
        let d = char_digit(ch, position)?;
        n = n
            .checked_mul(58)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(WireError::Base58Overflow)?;
    }
    Ok(n)
}

fn char_digit(ch: char, position: usize) -> Result<u8, WireError> {
    let d = if ch.is_ascii() { digit(ch as u8) } else { 0xFF };
    if d == 0xFF {
        Err(WireError::InvalidBase58 {
            character: ch,
            position,
        })
    } else {
        Ok(d)
    }
}

/// Decodes base-58 text given as raw bytes (as it arrives in a packet).
pub fn decode_u64_bytes(text: &[u8]) -> Result<u64, WireError> {
    let mut n: u64 = 0;
    for (position, &b) in text.iter().enumerate() {
        let d = byte_digit(text, position, b)?;
        n = n
            .checked_mul(58)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(WireError::Base58Overflow)?;
    }
    Ok(n)
}

/// Whether base-58 text that decodes to a `u64` ([`decode_u64_bytes`]) is the canonical
/// spelling of its value, the text of [`U64Text::new`]: zero is `"1"`, and no other value's
/// text starts with `1` (the zero digit). Empty text decodes to zero but is not its text.
///
/// ```
/// use py2p_wire::base58::is_canonical_u64;
/// assert!(is_canonical_u64(b"1") && is_canonical_u64(b"2z"));
/// assert!(!is_canonical_u64(b"12") && !is_canonical_u64(b""));
/// ```
pub fn is_canonical_u64(text: &[u8]) -> bool {
    match text {
        [] => false,
        [b'1'] => true,
        [b'1', ..] => false,
        _ => true,
    }
}

fn byte_digit(text: &[u8], position: usize, b: u8) -> Result<u8, WireError> {
    let d = digit(b);
    if d == 0xFF {
        // Report the character as the peer meant it where the bytes are UTF-8.
        let character = String::from_utf8_lossy(text.get(position..).unwrap_or_default())
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        Err(WireError::InvalidBase58 {
            character,
            position,
        })
    } else {
        Ok(d)
    }
}

/// Encodes the big-endian integer spelled by `bytes` (leading zero bytes carry no digits).
///
/// This is how py2p turns a sha-384 or sha-256 digest into an id.
pub fn encode_be_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    encode_be_bytes_into(bytes, &mut out);
    out
}

/// Appends the encoding of [`encode_be_bytes`] to `out`, reusing its allocation.
pub fn encode_be_bytes_into(bytes: &[u8], out: &mut String) {
    // Skip leading zeros: integer semantics.
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = bytes.get(start..).unwrap_or_default();
    if bytes.is_empty() {
        out.push('1');
        return;
    }
    // Digests (up to 64 bytes) are converted on the stack; longer inputs on the heap.
    let mut text = [0u8; SMALL_TEXT];
    if let Some(digits) = encode_small(bytes, &mut text) {
        push_ascii(digits, out);
    } else {
        push_by_division(bytes, out);
    }
}

/// Appends the digits of the non-zero big-endian integer `bytes` of any length: divisions
/// of its u64 limbs by 58^10 until it is zero.
fn push_by_division(bytes: &[u8], out: &mut String) {
    let mut limbs = vec![0u64; bytes.len().div_ceil(8)];
    let digits = bytes.len() * 1366 / 1000 + 2;
    let mut chunks = vec![0u64; digits / 10 + 1];
    let mut text = vec![0u8; chunks.len() * 10];
    let n = to_limbs(bytes, &mut limbs);
    let k = to_chunks(limbs.get_mut(..n).unwrap_or_default(), &mut chunks);
    push_chunks(chunks.get(..k).unwrap_or_default(), &mut text, out);
}

/// Room for the digits of up to 64 bytes (88 digits), ten at a time.
pub(crate) const SMALL_TEXT: usize = 100;

/// The base-58 digits of `bytes` (leading zero bytes carry no digits; zero is `"1"`), written
/// in `text` without touching the heap; `None` when the value has more than 64 bytes.
///
/// No division per limb and digit chunk as in the general path: the value is read in 56-bit
/// limbs, each limb times the base-58^10 digits of its weight 2^(56 i) (a table made at
/// compile time) is summed per digit position in `u128`, and one carry pass divides each
/// position once by 58^10. For a sha-384 digest: 22 multiplications and 7 divisions where
/// the division path makes about 20 serial 128-by-64-bit divisions.
pub(crate) fn encode_small<'t>(bytes: &[u8], text: &'t mut [u8; SMALL_TEXT]) -> Option<&'t [u8]> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = bytes.get(start..).unwrap_or_default();
    if bytes.is_empty() {
        let (one, _) = text.split_first_mut()?;
        *one = ALPHABET[0];
        return text.get(..1);
    }
    if bytes.len() > SMALL_BYTES {
        return None;
    }
    let limbs = small_limbs(bytes);
    let mut chunks = [0u64; SMALL_CHUNKS];
    // Sized for the common digests (sha-256, sha-384, sha-512) so that the products whose
    // table entry is zero are left out at compile time.
    if bytes.len() <= 35 {
        let (low, _) = limbs.split_first_chunk::<5>()?;
        let (out, _) = chunks.split_first_chunk_mut::<5>()?;
        *out = to_chunks_by_table(low);
    } else if bytes.len() <= 49 {
        let (low, _) = limbs.split_first_chunk::<7>()?;
        let (out, _) = chunks.split_first_chunk_mut::<7>()?;
        *out = to_chunks_by_table(low);
    } else {
        chunks = to_chunks_by_table(&limbs);
    }
    let k = chunks.iter().rposition(|&c| c != 0).map_or(1, |p| p + 1);
    Some(write_chunks(chunks.get(..k).unwrap_or_default(), text))
}

/// The largest value [`encode_small`] converts, in bytes.
const SMALL_BYTES: usize = 64;
/// Bits in one limb of [`encode_small`]'s conversion: ten limbs times the largest table
/// entry stay below 2^118, so every sum fits `u128` and every quotient by 58^10 fits `u64`.
const LIMB_BITS: u32 = 56;
/// Limbs of a value of up to 64 bytes.
const SMALL_LIMBS: usize = (SMALL_BYTES * 8).div_ceil(LIMB_BITS as usize);
/// Base-58^10 digits of a value below 2^512.
const SMALL_CHUNKS: usize = 9;

/// The base-58^10 digits of 2^(56 i), least significant first, for each limb position `i`.
// Evaluated at compile time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing)]
const LIMB_WEIGHTS: [[u64; SMALL_CHUNKS]; SMALL_LIMBS] = {
    let mut table = [[0u64; SMALL_CHUNKS]; SMALL_LIMBS];
    let mut weight = [0u64; SMALL_CHUNKS];
    weight[0] = 1;
    let mut i = 0;
    while i < SMALL_LIMBS {
        table[i] = weight;
        let mut carry: u128 = 0;
        let mut j = 0;
        while j < SMALL_CHUNKS {
            let cur = ((weight[j] as u128) << LIMB_BITS) + carry;
            weight[j] = (cur % RADIX10 as u128) as u64;
            carry = cur / RADIX10 as u128;
            j += 1;
        }
        i += 1;
    }
    table
};

/// The 56-bit limbs of `bytes` (at most 64), least significant first.
fn small_limbs(bytes: &[u8]) -> [u64; SMALL_LIMBS] {
    // Right-aligned after at least one zero byte: each limb is read as the 8 bytes that
    // end at its last byte, the one in front masked off.
    let mut padded = [0u8; SMALL_BYTES + 8];
    if let Some(tail) = padded
        .len()
        .checked_sub(bytes.len())
        .and_then(|at| padded.get_mut(at..))
    {
        tail.copy_from_slice(bytes);
    }
    let mut limbs = [0u64; SMALL_LIMBS];
    let mut end = padded.len();
    for limb in &mut limbs {
        let window = end.checked_sub(8).and_then(|s| padded.get(s..end));
        *limb = window
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, |w| u64::from_be_bytes(w) & ((1 << LIMB_BITS) - 1));
        end = end.saturating_sub(7);
    }
    limbs
}

/// The base-58^10 digits (least significant first) of the value whose 56-bit limbs are
/// `limbs`; `C` must be enough digits for `L` limbs.
#[inline(always)]
fn to_chunks_by_table<const L: usize, const C: usize>(limbs: &[u64; L]) -> [u64; C] {
    let mut acc = [0u128; C];
    for (&limb, weights) in limbs.iter().zip(LIMB_WEIGHTS.iter()) {
        for (a, &w) in acc.iter_mut().zip(weights) {
            // Below 2^56 * 58^10 each, at most ten of them: no overflow.
            *a += u128::from(limb) * u128::from(w);
        }
    }
    let mut chunks = [0u64; C];
    let mut carry = 0u128;
    for (c, a) in chunks.iter_mut().zip(acc) {
        let t = a + carry;
        // t < 2^118, so the quotient fits 64 bits: one hardware division.
        carry = t / u128::from(RADIX10);
        *c = (t - carry * u128::from(RADIX10)) as u64;
    }
    chunks
}

fn push_ascii(digits: &[u8], out: &mut String) {
    // Every byte is from the ASCII alphabet, so this cannot fail.
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// 58^10, the largest power of 58 below 2^64: the radix of one division pass.
const RADIX10: u64 = RADIX5 * RADIX5;

/// Big-endian bytes into big-endian u64 limbs (the first limb takes the odd bytes).
fn to_limbs(bytes: &[u8], limbs: &mut [u64]) -> usize {
    let head = bytes.len() % 8;
    let (first, rest) = bytes.split_at(head);
    let mut n = 0;
    let mut put = |v: u64| {
        if let Some(slot) = limbs.get_mut(n) {
            *slot = v;
            n += 1;
        }
    };
    if !first.is_empty() {
        put(first.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
    }
    for chunk in rest.chunks_exact(8) {
        put(chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
    }
    n
}

/// Divides the number by 58^10 until it is zero, writing the remainders (ten digits each)
/// least significant first; returns how many.
///
/// Each step divides 128 bits by a 64-bit constant with a remainder below it, which the
/// target does in one hardware division: about half the cost of twice as many 58^5 steps.
fn to_chunks(limbs: &mut [u64], chunks: &mut [u64]) -> usize {
    let mut lead = 0;
    let mut k = 0;
    while lead < limbs.len() {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut().skip(lead) {
            let cur = (u128::from(rem) << 64) | u128::from(*limb);
            // rem < 58^10, so the quotient fits 64 bits.
            *limb = (cur / u128::from(RADIX10)) as u64;
            rem = (cur % u128::from(RADIX10)) as u64;
        }
        if let Some(slot) = chunks.get_mut(k) {
            *slot = rem;
            k += 1;
        }
        while limbs.get(lead) == Some(&0) {
            lead += 1;
        }
    }
    k
}

/// The two digits of every value below 58^2, as text.
// Evaluated at compile time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing)]
static PAIRS: [[u8; 2]; 58 * 58] = {
    let mut pairs = [[0u8; 2]; 58 * 58];
    let mut i = 0;
    while i < 58 * 58 {
        pairs[i] = [ALPHABET[i / 58], ALPHABET[i % 58]];
        i += 1;
    }
    pairs
};

/// The two digits of `p < 58^2`.
fn pair(p: u64) -> [u8; 2] {
    usize::try_from(p)
        .ok()
        .and_then(|p| PAIRS.get(p))
        .copied()
        .unwrap_or([ALPHABET[0]; 2])
}

/// Appends the digits of `chunks` (least significant first, ten digits each) as text,
/// most significant first and without leading zero digits, using `text` as scratch.
fn push_chunks(chunks: &[u64], text: &mut [u8], out: &mut String) {
    push_ascii(write_chunks(chunks, text), out);
}

/// Writes the digits of `chunks` in `text` as [`push_chunks`] appends them, and returns them.
fn write_chunks<'t>(chunks: &[u64], text: &'t mut [u8]) -> &'t [u8] {
    const PAIR: u64 = 58 * 58;
    let len = chunks.len() * 10;
    let text = text.get_mut(..len).unwrap_or_default();
    for (slots, &c) in text.rchunks_exact_mut(10).zip(chunks) {
        // Five digit pairs (58^10 = (58^2)^5), least significant first: a division by a
        // constant (a multiplication) and a table look-up per two digits.
        let mut rest = c;
        for slot in slots.rchunks_exact_mut(2).take(4) {
            slot.copy_from_slice(&pair(rest % PAIR));
            rest /= PAIR;
        }
        if let Some(slot) = slots.get_mut(..2) {
            slot.copy_from_slice(&pair(rest));
        }
    }
    // The number is non-zero: drop the zero digits of the top chunk.
    let start = text
        .iter()
        .position(|&c| c != ALPHABET[0])
        .unwrap_or(len.saturating_sub(1));
    text.get(start..).unwrap_or_default()
}

/// Whether `text` is the canonical encoding of the big-endian integer `bytes`, i.e. whether
/// `encode_be_bytes(bytes) == text`, found by decoding `text` (multiplications only), which
/// is several times cheaper than encoding `bytes` (divisions).
pub(crate) fn is_encoding_of(text: &[u8], bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = bytes.get(start..).unwrap_or_default();
    if bytes.is_empty() {
        return text == b"1";
    }
    if bytes.len() > 64 {
        // Beyond digest sizes the stack limbs below would not hold the value.
        return encode_be_bytes(bytes).as_bytes() == text;
    }
    // Canonical text has no leading zero digit, and cannot be longer than the value needs.
    if text.first().is_none_or(|&c| c == ALPHABET[0]) || text.len() > bytes.len() * 138 / 100 + 1 {
        return false;
    }
    // Little-endian u64 limbs, built ten digits at a time (58^10 < 2^64): the first chunk
    // takes the odd digits, so that every other is ten digits (a loop the compiler
    // unrolls) and multiplies the limbs by the constant 58^10, one 64x64->128
    // multiplication per limb.
    let head = match text.len() % 10 {
        0 => 10,
        odd => odd,
    };
    let Some((first, rest)) = text.split_at_checked(head) else {
        return false;
    };
    let Some(top) = digits_value(first) else {
        return false;
    };
    // At most 89 digits (64 bytes): below 58^90 < 2^528, nine limbs.
    let mut limbs = [0u64; 9];
    let mut used = 0usize;
    if let Some(slot) = limbs.first_mut() {
        *slot = top;
        used = 1;
    }
    // `rest` is a whole number of ten-digit chunks.
    for chunk in rest.as_chunks::<10>().0 {
        let Some(add) = digits_value(chunk) else {
            return false;
        };
        // limb * 58^10 + carry < 2^128 for any limb and a carry below 2^64.
        let mut carry = add;
        for limb in limbs.get_mut(..used).unwrap_or_default() {
            let cur = u128::from(*limb) * u128::from(RADIX10) + u128::from(carry);
            *limb = cur as u64;
            carry = (cur >> 64) as u64;
        }
        if carry > 0 {
            match limbs.get_mut(used) {
                Some(slot) => *slot = carry,
                None => return false,
            }
            used += 1;
        }
    }
    // The bytes as the same limbs: whole 8-byte words from the end, then the odd top
    // bytes (a value without leading zero bytes, and a top limb that is not zero).
    let (odd, whole) = bytes.split_at(bytes.len() % 8);
    let whole = whole.as_chunks::<8>().0;
    let limbs = limbs.get(..used).unwrap_or_default();
    let Some((low, high)) = limbs.split_at_checked(whole.len()) else {
        return false;
    };
    let low_equal = low
        .iter()
        .zip(whole.iter().rev())
        .all(|(&limb, word)| limb == u64::from_be_bytes(*word));
    low_equal
        && match high {
            [] => odd.is_empty(),
            [top] => {
                !odd.is_empty()
                    && *top == odd.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            _ => false,
        }
}

/// The value of up to ten base-58 digits, or `None` if one is outside the alphabet. The
/// digits are checked together: a table entry is below 58, or 0xFF.
fn digits_value<'a>(digits: impl IntoIterator<Item = &'a u8>) -> Option<u64> {
    let mut value = 0u64;
    let mut bad = 0u8;
    for &c in digits {
        let d = digit(c);
        bad |= d;
        // Wrapping: the value of a text with an invalid digit is thrown away below.
        value = value.wrapping_mul(58).wrapping_add(u64::from(d));
    }
    (bad < 0x80).then_some(value)
}

/// Decodes base-58 text into the minimal big-endian bytes of its integer (zero is empty).
pub fn decode_be_bytes(text: &str) -> Result<Vec<u8>, WireError> {
    decode_be_bytes_raw(text.as_bytes())
}

/// Like [`decode_be_bytes`], for text given as raw bytes.
pub fn decode_be_bytes_raw(text: &[u8]) -> Result<Vec<u8>, WireError> {
    // Little-endian u32 limbs, multiplied by 58 and added to one digit at a time.
    let mut limbs: Vec<u32> = Vec::with_capacity(text.len() * 3 / 16 + 1);
    for (position, &b) in text.iter().enumerate() {
        let mut carry = u64::from(byte_digit(text, position, b)?);
        for limb in limbs.iter_mut() {
            let cur = u64::from(*limb) * 58 + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let start = out.iter().position(|&b| b != 0).unwrap_or(out.len());
    out.drain(..start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use proptest::prelude::*;

    /// The straightforward big-integer algorithm, as py2p writes it, to check the fast one.
    fn reference(n: &BigUint) -> String {
        let zero = BigUint::from(0u32);
        if *n == zero {
            return "1".into();
        }
        let mut n = n.clone();
        let mut s = Vec::new();
        let b58 = BigUint::from(58u32);
        while n > zero {
            let d = (&n % &b58).to_u32_digits().first().copied().unwrap_or(0);
            s.push(ALPHABET[d as usize]);
            n /= &b58;
        }
        s.reverse();
        String::from_utf8(s).unwrap()
    }

    /// `is_encoding_of` as it was before it took ten digits at a time with a constant
    /// multiplier (`30a0bb4`), to check the new one against.
    fn is_encoding_of_before(text: &[u8], bytes: &[u8]) -> bool {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let bytes = bytes.get(start..).unwrap_or_default();
        if bytes.is_empty() {
            return text == b"1";
        }
        if bytes.len() > 64 {
            return encode_be_bytes(bytes).as_bytes() == text;
        }
        if text.first().is_none_or(|&c| c == ALPHABET[0])
            || text.len() > bytes.len() * 138 / 100 + 1
        {
            return false;
        }
        let mut limbs = [0u64; 12];
        let mut used = 0usize;
        for chunk in text.chunks(10) {
            let mut mul: u64 = 1;
            let mut add: u64 = 0;
            for &c in chunk {
                let d = digit(c);
                if d == 0xFF {
                    return false;
                }
                mul *= 58;
                add = add * 58 + u64::from(d);
            }
            let mut carry = u128::from(add);
            for limb in limbs.iter_mut().take(used) {
                let cur = u128::from(*limb) * u128::from(mul) + carry;
                *limb = cur as u64;
                carry = cur >> 64;
            }
            if carry > 0 {
                match limbs.get_mut(used) {
                    Some(slot) => *slot = carry as u64,
                    None => return false,
                }
                used += 1;
            }
        }
        let mut expected = bytes
            .rchunks(8)
            .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
        let mut got = limbs.iter().take(used);
        loop {
            match (expected.next(), got.next()) {
                (None, None) => return true,
                (Some(e), Some(&g)) if e == g => {}
                _ => return false,
            }
        }
    }

    /// Both checks, and the definition (`encode_be_bytes(bytes) == text`), agree.
    fn check_is_encoding_of(text: &[u8], bytes: &[u8]) -> bool {
        let got = is_encoding_of(text, bytes);
        assert_eq!(
            got,
            is_encoding_of_before(text, bytes),
            "{text:?} {bytes:?}"
        );
        assert_eq!(
            got,
            encode_be_bytes(bytes).as_bytes() == text,
            "{text:?} {bytes:?}"
        );
        got
    }

    #[test]
    fn is_encoding_of_refuses_forged_and_edge_texts() {
        let digest: Vec<u8> = (0..48u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(200))
            .collect();
        let mut cases: Vec<Vec<u8>> = vec![vec![0xFF; 48], vec![0xFF; 64], vec![1], vec![0, 0, 1]];
        cases.push(digest.clone());
        // A leading zero byte (integer semantics) and every length up to 64 bytes.
        cases.push([&[0u8][..], &digest].concat());
        cases.extend((1..=64).map(|n| vec![0xA5; n]));
        // Lengths whose text is a whole number of ten-digit chunks.
        cases.extend((1..=64).filter_map(|n| {
            let b = vec![0x7F; n];
            encode_be_bytes(&b).len().is_multiple_of(10).then_some(b)
        }));
        for bytes in &cases {
            let text = encode_be_bytes(bytes).into_bytes();
            assert!(check_is_encoding_of(&text, bytes));
            for i in 0..text.len() {
                // Each digit one up and one down, and each character outside the alphabet.
                for bad in [b'0', b'O', b'I', b'l', b' ', 0x80, 0xFF, 0] {
                    let mut forged = text.clone();
                    forged[i] = bad;
                    assert!(!check_is_encoding_of(&forged, bytes));
                }
                let d = digit(text[i]);
                for other in [d.wrapping_sub(1), d + 1] {
                    if let Some(&c) = ALPHABET.get(usize::from(other)) {
                        let mut forged = text.clone();
                        forged[i] = c;
                        assert!(!check_is_encoding_of(&forged, bytes));
                    }
                }
            }
            // Longer and shorter: a leading '1', a digit more or fewer at either end.
            for forged in [
                [b"1", &text[..]].concat(),
                [&text[..], b"1"].concat(),
                [b"z", &text[..]].concat(),
                [&text[..], b"z"].concat(),
                text[1..].to_vec(),
                text[..text.len() - 1].to_vec(),
                Vec::new(),
            ] {
                assert!(!check_is_encoding_of(&forged, bytes));
            }
        }
        // The largest text the length check lets through, for the largest value: more
        // limbs than 64 bytes hold.
        let zs = vec![b'z'; 64 * 138 / 100 + 1];
        assert!(!check_is_encoding_of(&zs, &[0xFF; 64]));
        assert!(!check_is_encoding_of(b"", &[]));
        assert!(check_is_encoding_of(b"1", &[0, 0]));
        assert!(!check_is_encoding_of(b"11", &[0]));
    }

    #[test]
    fn small_values() {
        assert_eq!(encode_u64(0), "1");
        assert_eq!(encode_u64(57), "z");
        assert_eq!(encode_u64(58), "21");
        assert_eq!(encode_u64(u64::MAX), reference(&BigUint::from(u64::MAX)));
        assert_eq!(decode_u64("").unwrap(), 0);
        assert_eq!(decode_u64("1111").unwrap(), 0);
        assert_eq!(encode_be_bytes(&[]), "1");
        assert_eq!(encode_be_bytes(&[0, 0]), "1");
        assert_eq!(decode_be_bytes("1").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn chunks_are_written_exactly_at_every_boundary_and_across_the_range() {
        let mut values: Vec<u64> = (0..=10u32)
            .flat_map(|k| {
                let p = 58u64.pow(k);
                [
                    Some(p - 1),
                    Some(p),
                    Some(p + 1),
                    (2 * p).checked_sub(1),
                    p.checked_mul(57),
                ]
            })
            .flatten()
            .filter(|&v| v < RADIX10)
            .collect();
        values.extend((0..RADIX10).step_by(3_010_349_146_267));
        for v in values {
            let mut text = [0u8; 10];
            let got = write_chunks(&[v], &mut text).to_vec();
            assert_eq!(got, reference(&BigUint::from(v)).into_bytes(), "{v}");
        }
    }

    /// The general path, as a reference for [`encode_small`].
    fn by_division(bytes: &[u8]) -> String {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let mut out = String::new();
        match bytes.get(start..) {
            Some([]) | None => out.push('1'),
            Some(bytes) => push_by_division(bytes, &mut out),
        }
        out
    }

    fn small(bytes: &[u8]) -> Option<String> {
        let mut text = [0u8; SMALL_TEXT];
        encode_small(bytes, &mut text).map(|d| String::from_utf8(d.to_vec()).unwrap())
    }

    #[test]
    fn small_values_agree_with_division_at_every_length_and_edge() {
        for len in 0..=70 {
            for fill in [0u8, 1, 0x7F, 0x80, 0xFF] {
                let mut v = vec![fill; len];
                let mut cases = vec![v.clone()];
                if len > 0 {
                    v[0] = 0;
                    cases.push(v.clone());
                    v[len - 1] = 1;
                    cases.push(v.clone());
                    v[len / 2] = 0xFF;
                    cases.push(v.clone());
                }
                for bytes in cases {
                    let start = bytes.iter().position(|&b| b != 0).unwrap_or(len);
                    let want = (len - start <= SMALL_BYTES).then(|| by_division(&bytes));
                    assert_eq!(small(&bytes), want, "{bytes:?}");
                }
            }
        }
        // Each limb's weight alone, and the largest value of each table width.
        for bit in 0..512 {
            let mut bytes = [0u8; 64];
            bytes[63 - bit / 8] = 1 << (bit % 8);
            assert_eq!(small(&bytes), Some(by_division(&bytes)), "2^{bit}");
        }
        for len in [35, 36, 49, 50, 64] {
            let bytes = vec![0xFF; len];
            assert_eq!(
                small(&bytes),
                Some(reference(&BigUint::from_bytes_be(&bytes)))
            );
        }
    }

    #[test]
    fn largest_values_of_every_length() {
        for len in [1, 7, 8, 9, 47, 48, 63, 64, 65, 200] {
            let bytes = vec![0xFF; len];
            assert_eq!(
                encode_be_bytes(&bytes),
                reference(&BigUint::from_bytes_be(&bytes))
            );
            let mut one = vec![0; len];
            one[len - 1] = 1;
            assert_eq!(encode_be_bytes(&one), "2");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode_u64("12l4"),
            Err(WireError::InvalidBase58 {
                character: 'l',
                position: 2
            })
        );
        assert_eq!(
            decode_u64("2é"),
            Err(WireError::InvalidBase58 {
                character: 'é',
                position: 1
            })
        );
        assert!(matches!(
            decode_u64_bytes(b"1\xff"),
            Err(WireError::InvalidBase58 { position: 1, .. })
        ));
        assert!(decode_be_bytes("0").is_err());
        // 58^11 > 2^64.
        assert_eq!(decode_u64("zzzzzzzzzzzz"), Err(WireError::Base58Overflow));
        assert_eq!(
            decode_u64_bytes(b"zzzzzzzzzzzz"),
            Err(WireError::Base58Overflow)
        );
    }

    #[test]
    fn a_time_text_is_canonical_exactly_when_it_is_the_encoding_of_its_value() {
        let mut texts: Vec<String> = ["", "1", "11", "111", "12", "112", "2", "21", "z", "1z"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        for n in [0, 1, 57, 58, 1_700_000_000, u64::MAX] {
            let t = encode_u64(n);
            texts.push(format!("1{t}"));
            texts.push(format!("111{t}"));
            texts.push(t);
        }
        for t in texts {
            let value = decode_u64_bytes(t.as_bytes()).unwrap();
            assert_eq!(
                is_canonical_u64(t.as_bytes()),
                encode_u64(value) == t,
                "{t:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn canonical_time_matches_the_encoding(
            text in proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 0..12),
        ) {
            if let Ok(value) = decode_u64_bytes(&text) {
                prop_assert_eq!(
                    is_canonical_u64(&text),
                    encode_u64(value).as_bytes() == &text[..]
                );
            }
        }

        #[test]
        fn u64_round_trip(n: u64) {
            let s = encode_u64(n);
            prop_assert_eq!(&s, &reference(&BigUint::from(n)));
            prop_assert_eq!(decode_u64(&s).unwrap(), n);
            prop_assert_eq!(decode_u64_bytes(s.as_bytes()).unwrap(), n);
        }

        #[test]
        fn bytes_match_reference(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let s = encode_be_bytes(&bytes);
            prop_assert_eq!(&s, &reference(&BigUint::from_bytes_be(&bytes)));
            let back = decode_be_bytes(&s).unwrap();
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            prop_assert_eq!(&back[..], &bytes[start..]);
        }

        #[test]
        fn is_encoding_of_agrees_with_the_old_check_on_any_text(
            bytes in proptest::collection::vec(any::<u8>(), 0..70),
            text in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(ALPHABET.to_vec()),
                    1 => any::<u8>(),
                ],
                0..100,
            ),
        ) {
            check_is_encoding_of(&text, &bytes);
        }

        #[test]
        fn is_encoding_of_agrees_with_the_old_check_near_the_encoding(
            bytes in proptest::collection::vec(any::<u8>(), 0..70),
            at in 0usize..100,
            with in any::<u8>(),
            cut in 0usize..3,
        ) {
            let text = encode_be_bytes(&bytes).into_bytes();
            prop_assert!(check_is_encoding_of(&text, &bytes));
            let mut forged = text.clone();
            let i = at % forged.len();
            forged[i] = with;
            check_is_encoding_of(&forged, &bytes);
            forged.truncate(forged.len().saturating_sub(cut));
            check_is_encoding_of(&forged, &bytes);
            forged.insert(0, with);
            check_is_encoding_of(&forged, &bytes);
        }

        #[test]
        fn is_encoding_of_agrees_with_encode(bytes in proptest::collection::vec(any::<u8>(), 0..100), flip in 0usize..100) {
            let text = encode_be_bytes(&bytes);
            prop_assert!(is_encoding_of(text.as_bytes(), &bytes));
            // Any other text is refused: a changed digit, a leading '1', a longer or shorter one.
            let mut changed = text.clone().into_bytes();
            let i = flip % changed.len();
            changed[i] = if changed[i] == b'2' { b'3' } else { b'2' };
            prop_assert!(!is_encoding_of(&changed, &bytes));
            let (longer_front, longer_back) = (format!("1{}", text), format!("{}1", text));
            prop_assert!(!is_encoding_of(longer_front.as_bytes(), &bytes));
            prop_assert!(!is_encoding_of(longer_back.as_bytes(), &bytes));
            prop_assert!(!is_encoding_of(&text.as_bytes()[1..], &bytes) || text.len() == 1 && bytes.iter().all(|&b| b == 0));
        }

        #[test]
        fn small_agrees_with_division(
            bytes in proptest::collection::vec(any::<u8>(), 0..=64),
            zeros in 0usize..12,
            ones in proptest::collection::vec(any::<bool>(), 64),
        ) {
            // Leading zero bytes and runs of 0xFF (carries through every limb) included.
            let mut bytes = bytes;
            for (b, &one) in bytes.iter_mut().zip(&ones) {
                if one && zeros % 3 == 0 {
                    *b = 0xFF;
                }
            }
            for b in bytes.iter_mut().take(zeros) {
                *b = 0;
            }
            prop_assert_eq!(small(&bytes), Some(by_division(&bytes)));
        }

        #[test]
        fn decode_never_panics(s in ".{0,40}") {
            let _ = decode_u64(&s);
            let _ = decode_be_bytes(&s);
        }
    }
}
