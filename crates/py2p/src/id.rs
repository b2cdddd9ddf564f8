//! Node ids, py2p's way: base-58 of sha-384 over the advertised address, the protocol id and
//! a random salt.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use py2p_wire::base58;
use sha2::{Digest, Sha384};

/// A random UUID4 in text form, as py2p salts its ids (`uuid.uuid4()`).
pub(crate) fn uuid4() -> String {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        // RandomState is seeded from the OS's randomness for every instance.
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The id py2p would give a node advertising `(host, port)` on `protocol_id`.
///
/// `str(out_addr)` in py2p is Python's tuple text, such as `('127.0.0.1', 4444)`.
pub fn node_id(host: &str, port: u16, protocol_id: &str, salt: &str) -> String {
    let mut h = Sha384::new();
    h.update(format!("('{host}', {port})").as_bytes());
    h.update(protocol_id.as_bytes());
    h.update(salt.as_bytes());
    base58::encode_be_bytes(&h.finalize())
}

/// Compares two ids as py2p does, as base-58 integers (ids carry no leading zeros, and the
/// alphabet is in ASCII order, so the longer id is larger and equal lengths compare as text).
pub(crate) fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('1');
    let b = b.trim_start_matches('1');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn uuid_shape_and_randomness() {
        let a = uuid4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid4());
    }

    #[test]
    fn ids_compare_as_integers() {
        assert_eq!(id_cmp("z", "21"), Ordering::Less);
        assert_eq!(id_cmp("21", "z"), Ordering::Greater);
        assert_eq!(id_cmp("A", "9"), Ordering::Greater);
        assert_eq!(id_cmp("a", "Z"), Ordering::Greater);
        assert_eq!(id_cmp("abc", "abc"), Ordering::Equal);
        for (x, y) in [(5u64, 900u64), (58, 57), (3364, 3363), (1 << 40, 1 << 41)] {
            let (sx, sy) = (base58::encode_u64(x), base58::encode_u64(y));
            assert_eq!(id_cmp(&sx, &sy), x.cmp(&y));
        }
    }

    #[test]
    fn node_id_is_py2p_shaped() {
        let id = node_id(
            "127.0.0.1",
            4444,
            "BoSaUBJGxg8qdzPFKBaUV8TkZXkVvVGepwLCXeqouCPS",
            &uuid4(),
        );
        assert!((60..=66).contains(&id.len()), "{id}");
        assert!(base58::decode_be_bytes(&id).is_ok());
    }
}
