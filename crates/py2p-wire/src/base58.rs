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

use num_bigint::BigUint;

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

fn alphabet(d: u64) -> u8 {
    #[allow(clippy::indexing_slicing)]
    ALPHABET[(d % 58) as usize]
}

/// Encodes an integer as py2p does (`to_base_58`).
pub fn encode_u64(mut n: u64) -> String {
    if n == 0 {
        return "1".to_owned();
    }
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    while n > 0 {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = alphabet(n % 58);
        }
        n /= 58;
    }
    digits
        .get(at..)
        .map(|d| d.iter().map(|&b| b as char).collect())
        .unwrap_or_default()
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
    if bytes.len() <= 64 {
        let mut limbs = [0u32; 16];
        let mut digits = [0u8; 96];
        let n = to_limbs(bytes, &mut limbs);
        let d = to_digits(limbs.get_mut(..n).unwrap_or_default(), &mut digits);
        push_digits(digits.get(..d).unwrap_or_default(), out);
    } else {
        let mut limbs = vec![0u32; bytes.len().div_ceil(4)];
        let mut digits = vec![0u8; bytes.len() * 138 / 100 + 6];
        let n = to_limbs(bytes, &mut limbs);
        let d = to_digits(limbs.get_mut(..n).unwrap_or_default(), &mut digits);
        push_digits(digits.get(..d).unwrap_or_default(), out);
    }
}

/// Big-endian bytes into big-endian u32 limbs (the first limb takes the odd bytes).
fn to_limbs(bytes: &[u8], limbs: &mut [u32]) -> usize {
    let head = bytes.len() % 4;
    let (first, rest) = bytes.split_at(head);
    let mut n = 0;
    let mut put = |v: u32| {
        if let Some(slot) = limbs.get_mut(n) {
            *slot = v;
            n += 1;
        }
    };
    if !first.is_empty() {
        put(first.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)));
    }
    for chunk in rest.chunks_exact(4) {
        put(chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)));
    }
    n
}

/// Divides the number by 58^5 until it is zero, writing digit values least significant
/// first; returns how many digits (without the zero padding of the last pass).
fn to_digits(limbs: &mut [u32], digits: &mut [u8]) -> usize {
    let mut lead = 0;
    let mut d = 0;
    while lead < limbs.len() {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut().skip(lead) {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / RADIX5) as u32;
            rem = cur % RADIX5;
        }
        while limbs.get(lead) == Some(&0) {
            lead += 1;
        }
        // rem < 58^5 < 2^32: five digits with 32-bit arithmetic.
        let mut r = rem as u32;
        for _ in 0..5 {
            if let Some(slot) = digits.get_mut(d) {
                *slot = (r % 58) as u8;
            }
            r /= 58;
            d += 1;
        }
    }
    // The number is non-zero: drop the zero digits the last pass padded with.
    while d > 1 && digits.get(d - 1) == Some(&0) {
        d -= 1;
    }
    d
}

/// Appends digit values (least significant first) as text, most significant first.
fn push_digits(digits: &[u8], out: &mut String) {
    let mut text = [0u8; 128];
    if digits.len() <= text.len() {
        for (slot, &v) in text.iter_mut().zip(digits.iter().rev()) {
            *slot = alphabet(u64::from(v));
        }
        // Every byte is from the ASCII alphabet, so this cannot fail.
        out.push_str(
            std::str::from_utf8(text.get(..digits.len()).unwrap_or_default()).unwrap_or_default(),
        );
    } else {
        out.extend(digits.iter().rev().map(|&v| alphabet(u64::from(v)) as char));
    }
}

/// Whether `text` is the canonical encoding of the big-endian integer `bytes`, i.e. whether
/// `encode_be_bytes(bytes) == text`, found by decoding `text` (multiplications only), which
/// is several times cheaper than encoding `bytes` (divisions).
pub fn is_encoding_of(text: &[u8], bytes: &[u8]) -> bool {
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
    // Little-endian u32 limbs; five digits at a time (58^5 < 2^32).
    let mut limbs = [0u32; 24];
    let mut used = 0usize;
    for chunk in text.chunks(5) {
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
        let mut carry = add;
        for limb in limbs.iter_mut().take(used) {
            let cur = u64::from(*limb) * mul + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry > 0 {
            match limbs.get_mut(used) {
                Some(slot) => *slot = carry as u32,
                None => return false,
            }
            used += 1;
        }
    }
    // Compare with the bytes, least significant limb first.
    let mut expected = bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)));
    let mut got = limbs.iter().take(used);
    loop {
        match (expected.next(), got.next()) {
            (None, None) => return true,
            (Some(e), Some(&g)) if e == g => {}
            _ => return false,
        }
    }
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

/// Encodes a big integer as py2p does.
pub fn encode_biguint(n: &BigUint) -> String {
    encode_be_bytes(&n.to_bytes_be())
}

/// Decodes py2p base-58 text into a big integer.
pub fn decode_biguint(text: &str) -> Result<BigUint, WireError> {
    Ok(BigUint::from_bytes_be(&decode_be_bytes(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    proptest! {
        #[test]
        fn u64_round_trip(n: u64) {
            let s = encode_u64(n);
            prop_assert_eq!(&s, &reference(&BigUint::from(n)));
            prop_assert_eq!(decode_u64(&s).unwrap(), n);
            prop_assert_eq!(decode_u64_bytes(s.as_bytes()).unwrap(), n);
        }

        #[test]
        fn bytes_match_reference(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let s = encode_be_bytes(&bytes);
            prop_assert_eq!(&s, &reference(&BigUint::from_bytes_be(&bytes)));
            let back = decode_be_bytes(&s).unwrap();
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            prop_assert_eq!(&back[..], &bytes[start..]);
            prop_assert_eq!(decode_biguint(&s).unwrap(), BigUint::from_bytes_be(&bytes));
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
        fn decode_never_panics(s in ".{0,40}") {
            let _ = decode_u64(&s);
            let _ = decode_be_bytes(&s);
        }
    }
}
