//! Chord keys: the five hash slots of a user key, their base-58 spelling, and the ring
//! distance (py2p's `get_hashes` and `distance`).

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// Bytes of a slot key: the widest hash, sha-512.
const KEY_BYTES: usize = 64;
/// Bytes of a position on the ring (ids and distances are taken modulo 2**384).
pub(crate) const RING_BYTES: usize = 48;
/// The longest base-58 text of a key below 2**512 (88 digits); longer text is refused
/// before it is decoded.
const MAX_KEY_TEXT: usize = 88;

/// A position on the ring, big-endian, modulo 2**384.
pub(crate) type Ring = [u8; RING_BYTES];

/// One of the five hash tables of a chord network, named as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// sha-1, shifted 224 bits left.
    Sha1,
    /// sha-224, shifted 160 bits left.
    Sha224,
    /// sha-256, shifted 128 bits left.
    Sha256,
    /// sha-384.
    Sha384,
    /// sha-512 (512 bits: only its low 384 bits place it on the ring).
    Sha512,
}

impl Method {
    /// The five methods, in py2p's order.
    pub const ALL: [Method; 5] = [
        Method::Sha1,
        Method::Sha224,
        Method::Sha256,
        Method::Sha384,
        Method::Sha512,
    ];

    /// The name on the wire (`sha1`, ..., `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Sha1 => "sha1",
            Method::Sha224 => "sha224",
            Method::Sha256 => "sha256",
            Method::Sha384 => "sha384",
            Method::Sha512 => "sha512",
        }
    }

    /// The method a wire name names.
    pub fn from_name(name: &[u8]) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().as_bytes() == name)
    }

    /// Index in [`Method::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// (digest bytes, shift in bytes) of this method's keys.
    fn layout(self) -> (usize, usize) {
        match self {
            Method::Sha1 => (20, 28),
            Method::Sha224 => (28, 20),
            Method::Sha256 => (32, 16),
            Method::Sha384 => (48, 0),
            Method::Sha512 => (64, 0),
        }
    }

    /// The slot key of `key` in this table.
    pub fn hash(self, key: &[u8]) -> Key {
        let digest: Vec<u8> = match self {
            Method::Sha1 => Sha1::digest(key).to_vec(),
            Method::Sha224 => Sha224::digest(key).to_vec(),
            Method::Sha256 => Sha256::digest(key).to_vec(),
            Method::Sha384 => Sha384::digest(key).to_vec(),
            Method::Sha512 => Sha512::digest(key).to_vec(),
        };
        let (len, shift) = self.layout();
        let mut out = [0u8; KEY_BYTES];
        let end = KEY_BYTES - shift;
        if let Some(dst) = out.get_mut(end - len..end) {
            dst.copy_from_slice(&digest);
        }
        Key(out)
    }

    /// Whether `key` could be a key of this table (its bits where the shifted digest
    /// can be): a peer's key out of range is refused.
    fn in_range(self, key: &Key) -> bool {
        let (len, shift) = self.layout();
        let end = KEY_BYTES - shift;
        let high = key.0.get(..end - len).unwrap_or_default();
        let low = key.0.get(end..).unwrap_or_default();
        high.iter().chain(low).all(|&b| b == 0)
    }
}

/// The five slot keys of a user key, in py2p's order.
pub fn hashes(key: &[u8]) -> [(Method, Key); 5] {
    Method::ALL.map(|m| (m, m.hash(key)))
}

/// A slot key: an integer below 2**512 (py2p's `int` from a shifted digest).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub(crate) [u8; KEY_BYTES]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.to_base58())
    }
}

/// Why a key from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// Longer than any key in range.
    TooLong(usize),
    /// Not base-58.
    NotBase58,
    /// Not a possible key of its table.
    OutOfRange,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::TooLong(n) => write!(f, "key text of {n} bytes (at most {MAX_KEY_TEXT})"),
            KeyError::NotBase58 => f.write_str("key is not base-58"),
            KeyError::OutOfRange => f.write_str("key out of its table's range"),
        }
    }
}

impl Key {
    /// py2p's base-58 spelling of the integer.
    pub fn to_base58(&self) -> String {
        py2p_wire::base58::encode_be_bytes(&self.0)
    }

    /// A key of table `method` from its base-58 text, checked against the table's range.
    pub(crate) fn from_base58(method: Method, text: &[u8]) -> Result<Key, KeyError> {
        if text.len() > MAX_KEY_TEXT {
            return Err(KeyError::TooLong(text.len()));
        }
        let bytes =
            py2p_wire::base58::decode_be_bytes_raw(text).map_err(|_| KeyError::NotBase58)?;
        if bytes.len() > KEY_BYTES {
            return Err(KeyError::OutOfRange);
        }
        let mut out = [0u8; KEY_BYTES];
        if let Some(dst) = out.get_mut(KEY_BYTES - bytes.len()..) {
            dst.copy_from_slice(&bytes);
        }
        let key = Key(out);
        if method.in_range(&key) {
            Ok(key)
        } else {
            Err(KeyError::OutOfRange)
        }
    }

    /// Its place on the ring: the low 384 bits.
    pub(crate) fn ring(&self) -> Ring {
        let mut out = [0u8; RING_BYTES];
        if let Some(src) = self.0.get(KEY_BYTES - RING_BYTES..) {
            out.copy_from_slice(src);
        }
        out
    }
}

/// A node's place on the ring from its id (py2p's `from_base_58(id)`, modulo 2**384);
/// `None` for an id that is not base-58 or absurdly long.
pub(crate) fn ring_of_id(id: &str) -> Option<Ring> {
    if id.len() > 2 * MAX_KEY_TEXT {
        return None;
    }
    let bytes = py2p_wire::base58::decode_be_bytes(id).ok()?;
    let mut out = [0u8; RING_BYTES];
    let take = bytes.len().min(RING_BYTES);
    let src = bytes.get(bytes.len() - take..)?;
    out.get_mut(RING_BYTES - take..)?.copy_from_slice(src);
    Some(out)
}

/// The node among `ids` that holds slot `key`: the one whose id most closely precedes the
/// key on the ring (py2p's `find`). Ids that are not base-58 hold nothing.
///
/// ```
/// use py2p::chord::{hashes, responsible};
/// let ids = ["3vFXP", "7oBRe", "Abc12"];
/// let (_, key) = hashes(b"colour")[3];
/// assert!(responsible(&key, ids).is_some());
/// ```
pub fn responsible<'a>(key: &Key, ids: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let at = key.ring();
    ids.into_iter()
        .filter_map(|id| Some((distance(&ring_of_id(id)?, &at), id)))
        .min()
        .map(|(_, id)| id)
}

/// py2p's `distance(a, b)`: `(b - a) mod 2**384`, clockwise from `a` to `b`.
pub(crate) fn distance(a: &Ring, b: &Ring) -> Ring {
    let mut out = [0u8; RING_BYTES];
    let mut borrow = 0i16;
    for i in (0..RING_BYTES).rev() {
        let x = i16::from(b.get(i).copied().unwrap_or(0))
            - i16::from(a.get(i).copied().unwrap_or(0))
            - borrow;
        let (v, br) = if x < 0 { (x + 256, 1) } else { (x, 0) };
        if let Some(o) = out.get_mut(i) {
            *o = v as u8;
        }
        borrow = br;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;

    /// Measured on py2p 0.5.607 (`get_hashes(b'test_key')` in base-58).
    const TEST_KEY: [&str; 5] = [
        "2ERv6jcU7DMSS7Sydek2NzM6VeQKoa29EySTy6YCxwSDbxwjDaheSMZBAvmtL2Txj",
        "33b3HoTQ4z3w5RjNth9APA1c2tbNNDHfE7uxBjfZNFnoqgieiTgd6X3gtvTPtyvYoH",
        "6NEMksCgdXAQNTsYtr2CDJJTboL874AhdY6BQsrKoLvsXpTV5GHYtK54nbPiNQVbqh",
        "7oBRePy3jhqS4VUfBt3r7DweVb3ZniqvuhUFemk7eVbnLfpiZXvVVP8JZTFv38vhH3",
        "3BS44Bo6GurANxSqnAfaxp1Y9nVcKLKuf5zRe4qoJjHySC9C8h68hjc1N5wNFSikqDCwtsFubtSvFSALXSAq7gHF",
    ];

    #[test]
    fn hashes_match_py2p() {
        for ((method, key), want) in hashes(b"test_key").iter().zip(TEST_KEY) {
            assert_eq!(key.to_base58(), want, "{}", method.name());
            assert_eq!(Key::from_base58(*method, want.as_bytes()), Ok(*key));
        }
    }

    #[test]
    fn keys_out_of_range_are_refused() {
        let sha512 = hashes(b"k")[4].1.to_base58();
        // A 512-bit key is fine for sha512, out of range for the 384-bit tables.
        assert!(Key::from_base58(Method::Sha512, sha512.as_bytes()).is_ok());
        for m in &Method::ALL[..4] {
            assert_eq!(
                Key::from_base58(*m, sha512.as_bytes()),
                Err(KeyError::OutOfRange)
            );
        }
        // Low bits set where a shifted sha1 has zeros.
        assert_eq!(
            Key::from_base58(Method::Sha1, b"2"),
            Err(KeyError::OutOfRange)
        );
        assert_eq!(
            Key::from_base58(Method::Sha384, b"0OIl"),
            Err(KeyError::NotBase58)
        );
        let long = "z".repeat(89);
        assert_eq!(
            Key::from_base58(Method::Sha512, long.as_bytes()),
            Err(KeyError::TooLong(89))
        );
    }

    #[test]
    fn distance_is_modular_subtraction() {
        let m = BigUint::from(1u8) << 384u32;
        let samples = [b"a".as_slice(), b"b", b"test_key", b"zzz"];
        for a in samples {
            for b in samples {
                let ra = Method::Sha384.hash(a).ring();
                let rb = Method::Sha512.hash(b).ring();
                let (ia, ib) = (BigUint::from_bytes_be(&ra), BigUint::from_bytes_be(&rb));
                let want = ((&ib + &m) - &ia) % &m;
                assert_eq!(BigUint::from_bytes_be(&distance(&ra, &rb)), want);
            }
        }
        let id = py2p_wire::base58::encode_be_bytes(&[0xff; 48]);
        assert_eq!(ring_of_id(&id), Some([0xff; 48]));
        assert_eq!(ring_of_id("not base58 0"), None);
    }
}
