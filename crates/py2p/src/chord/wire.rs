//! The chord messages on the wire (payloads after the whisper or broadcast flag):
//!
//! | message | payload |
//! |---|---|
//! | meta | `[0x05, "0"]` joined, `[0x05, "1"]` leeching |
//! | notify | `[0x06, key]`; delete: py2p's `[0x06, key, "del"]`, ours `[0x06, key, "del", "1"]` |
//! | store | `[0x0B, method, base58(slot key), value]` (empty value: delete) |
//! | retrieve | `[0x0C, method, base58(slot key)]` |
//! | retrieved | `[0x0D, method, base58(slot key), value]` (empty: missing) |
//! | backup (ours) | `["chord-backup", method, base58(slot key), value]` (empty: drop) |
//!
//! The backup is not py2p's: a holder sends a copy of each slot to its ring predecessor,
//! which holds the slot when the holder is gone. py2p ignores a message whose first packet
//! is no flag it knows, so it may go to any chord peer.

use std::fmt;

use py2p_wire::Flag;

use super::key::{Key, KeyError, Method};

/// A chord message from a peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChordMsg<'a> {
    Meta {
        joined: bool,
    },
    Notify {
        key: &'a [u8],
        delete: bool,
    },
    Store {
        method: Method,
        key: Key,
        value: &'a [u8],
    },
    Retrieve {
        method: Method,
        key: Key,
    },
    Retrieved {
        method: Method,
        key: Key,
        value: &'a [u8],
    },
    Backup {
        method: Method,
        key: Key,
        value: &'a [u8],
    },
}

/// The first packet of a backup message.
pub(crate) const BACKUP: &[u8] = b"chord-backup";

/// Why a chord message was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Wrong number of packets for its sub-flag.
    Packets { flag: &'static str, count: usize },
    /// A meta that is neither "0" nor "1".
    Meta,
    /// A table name that is not one of the five.
    Method(String),
    /// A bad slot key.
    Key(KeyError),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Packets { flag, count } => write!(f, "{flag} with {count} packets"),
            Malformed::Meta => f.write_str("meta that is neither \"0\" nor \"1\""),
            Malformed::Method(m) => write!(f, "unknown hash table {m:?}"),
            Malformed::Key(e) => write!(f, "{e}"),
        }
    }
}

/// [`is_chord_packets`] of a whole payload.
#[cfg(test)]
pub(crate) fn is_chord(payload: &[Vec<u8>]) -> bool {
    is_chord_packets(payload.first().map(Vec::as_slice), payload.len())
}

/// Whether a payload of `len` packets whose first is `first` is chord's to handle: meta (a
/// two-packet handshake), notify, store, retrieve and retrieved. Everything else is the
/// mesh's.
pub(crate) fn is_chord_packets(first: Option<&[u8]>, len: usize) -> bool {
    if first == Some(BACKUP) {
        return true;
    }
    match first.and_then(Flag::from_packet) {
        Some(Flag::HANDSHAKE) => len == 2,
        Some(Flag::NOTIFY | Flag::STORE | Flag::RETRIEVE | Flag::RETRIEVED) => true,
        _ => false,
    }
}

fn method(name: &[u8]) -> Result<Method, Malformed> {
    Method::from_name(name).ok_or_else(|| {
        let shown: String = String::from_utf8_lossy(name).chars().take(32).collect();
        Malformed::Method(shown)
    })
}

fn slot(name: &[u8], key: &[u8]) -> Result<(Method, Key), Malformed> {
    let m = method(name)?;
    let k = Key::from_base58(m, key).map_err(Malformed::Key)?;
    Ok((m, k))
}

/// Parses a chord payload (one [`is_chord_packets`] accepts).
pub(crate) fn parse(payload: &[Vec<u8>]) -> Result<ChordMsg<'_>, Malformed> {
    if let Some((first, rest)) = payload.split_first() {
        if first.as_slice() == BACKUP {
            let [m, k, value] = rest else {
                return Err(Malformed::Packets {
                    flag: "backup",
                    count: payload.len(),
                });
            };
            let (method, key) = slot(m, k)?;
            return Ok(ChordMsg::Backup { method, key, value });
        }
    }
    let flag = payload.first().and_then(|p| Flag::from_packet(p));
    let bad = |flag: &'static str| Malformed::Packets {
        flag,
        count: payload.len(),
    };
    match (flag, payload) {
        (Some(Flag::HANDSHAKE), [_, meta]) => match meta.as_slice() {
            b"0" => Ok(ChordMsg::Meta { joined: true }),
            b"1" => Ok(ChordMsg::Meta { joined: false }),
            _ => Err(Malformed::Meta),
        },
        (Some(Flag::NOTIFY), [_, key]) => Ok(ChordMsg::Notify { key, delete: false }),
        (Some(Flag::NOTIFY), [_, key, del, ..]) if del.as_slice() == b"del" => {
            Ok(ChordMsg::Notify { key, delete: true })
        }
        (Some(Flag::NOTIFY), [_, key, ..]) => Ok(ChordMsg::Notify { key, delete: false }),
        (Some(Flag::STORE), [_, m, k, value]) => {
            let (method, key) = slot(m, k)?;
            Ok(ChordMsg::Store { method, key, value })
        }
        (Some(Flag::RETRIEVE), [_, m, k]) => {
            let (method, key) = slot(m, k)?;
            Ok(ChordMsg::Retrieve { method, key })
        }
        (Some(Flag::RETRIEVED), [_, m, k, value]) => {
            let (method, key) = slot(m, k)?;
            Ok(ChordMsg::Retrieved { method, key, value })
        }
        (Some(Flag::NOTIFY), _) => Err(bad("notify")),
        (Some(Flag::STORE), _) => Err(bad("store")),
        (Some(Flag::RETRIEVE), _) => Err(bad("retrieve")),
        (Some(Flag::RETRIEVED), _) => Err(bad("retrieved")),
        _ => Err(bad("meta")),
    }
}

/// `[0x05, "0"|"1"]`.
pub(crate) fn meta(joined: bool) -> Vec<Vec<u8>> {
    vec![
        vec![Flag::HANDSHAKE.0],
        if joined { b"0".to_vec() } else { b"1".to_vec() },
    ]
}

/// `[0x06, key]`.
pub(crate) fn notify(key: &[u8]) -> Vec<Vec<u8>> {
    vec![vec![Flag::NOTIFY.0], key.to_vec()]
}

/// Our delete notice, `[0x06, key, "del", "1"]`: py2p's own three-packet form makes py2p's
/// handler raise and drop the sender; with four packets py2p only adds the key to its
/// (never shrinking) key set, and our nodes remove it.
pub(crate) fn notify_delete(key: &[u8]) -> Vec<Vec<u8>> {
    vec![
        vec![Flag::NOTIFY.0],
        key.to_vec(),
        b"del".to_vec(),
        b"1".to_vec(),
    ]
}

/// `[0x0B, method, base58(key), value]`.
pub(crate) fn store(method: Method, key: &Key, value: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        vec![Flag::STORE.0],
        method.name().as_bytes().to_vec(),
        key.to_base58().into_bytes(),
        value,
    ]
}

/// `["chord-backup", method, base58(key), value]`.
pub(crate) fn backup(method: Method, key: &Key, value: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        BACKUP.to_vec(),
        method.name().as_bytes().to_vec(),
        key.to_base58().into_bytes(),
        value,
    ]
}

/// `[0x0C, method, base58(key)]`.
pub(crate) fn retrieve(method: Method, key: &Key) -> Vec<Vec<u8>> {
    vec![
        vec![Flag::RETRIEVE.0],
        method.name().as_bytes().to_vec(),
        key.to_base58().into_bytes(),
    ]
}

/// `[0x0D, method, base58(key), value]`.
pub(crate) fn retrieved(method: Method, key: &Key, value: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        vec![Flag::RETRIEVED.0],
        method.name().as_bytes().to_vec(),
        key.to_base58().into_bytes(),
        value,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let key = Method::Sha256.hash(b"k");
        assert_eq!(parse(&meta(true)), Ok(ChordMsg::Meta { joined: true }));
        assert_eq!(parse(&meta(false)), Ok(ChordMsg::Meta { joined: false }));
        assert_eq!(
            parse(&notify(b"k")),
            Ok(ChordMsg::Notify {
                key: b"k",
                delete: false
            })
        );
        assert_eq!(
            parse(&notify_delete(b"k")),
            Ok(ChordMsg::Notify {
                key: b"k",
                delete: true
            })
        );
        // py2p's own delete form.
        let py = vec![vec![0x06], b"k".to_vec(), b"del".to_vec()];
        assert_eq!(
            parse(&py),
            Ok(ChordMsg::Notify {
                key: b"k",
                delete: true
            })
        );
        assert_eq!(
            parse(&store(Method::Sha256, &key, b"v".to_vec())),
            Ok(ChordMsg::Store {
                method: Method::Sha256,
                key,
                value: b"v"
            })
        );
        assert_eq!(
            parse(&retrieve(Method::Sha256, &key)),
            Ok(ChordMsg::Retrieve {
                method: Method::Sha256,
                key
            })
        );
        assert_eq!(
            parse(&retrieved(Method::Sha256, &key, Vec::new())),
            Ok(ChordMsg::Retrieved {
                method: Method::Sha256,
                key,
                value: b""
            })
        );
        assert_eq!(
            parse(&backup(Method::Sha256, &key, b"v".to_vec())),
            Ok(ChordMsg::Backup {
                method: Method::Sha256,
                key,
                value: b"v"
            })
        );
        assert!(is_chord(&backup(Method::Sha256, &key, Vec::new())));
        assert!(is_chord(&meta(true)));
        assert!(!is_chord(&[vec![0x05], vec![], vec![], vec![], vec![]]));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let key = Method::Sha256.hash(b"k").to_base58().into_bytes();
        assert_eq!(parse(&[vec![0x05], b"2".to_vec()]), Err(Malformed::Meta));
        assert_eq!(
            parse(&[vec![0x0C], b"md5".to_vec(), key.clone()]),
            Err(Malformed::Method("md5".into()))
        );
        assert!(matches!(
            parse(&[vec![0x0C], b"sha1".to_vec(), key.clone()]),
            Err(Malformed::Key(KeyError::OutOfRange))
        ));
        assert_eq!(
            parse(&[vec![0x0B], b"sha256".to_vec(), key]),
            Err(Malformed::Packets {
                flag: "store",
                count: 3
            })
        );
        assert_eq!(
            parse(&[vec![0x06]]),
            Err(Malformed::Packets {
                flag: "notify",
                count: 1
            })
        );
    }
}
