//! Protocol descriptions and their ids.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::{base58, WireError};

/// The protocol version this crate speaks: it is hashed into every protocol id.
pub const PROTOCOL_VERSION: &str = "0.5";

/// How a network's connections are carried: py2p 0.5 knows exactly two methods.
///
/// The py2p name ([`Encryption::py2p_name`]) is hashed into the protocol id, so nodes of
/// different encryption refuse each other.
///
/// ```
/// use py2p_wire::Encryption;
/// assert_eq!("ssl".parse::<Encryption>()?, Encryption::Ssl);
/// assert_eq!("PlainText".parse::<Encryption>()?, Encryption::Plaintext);
/// assert!("Rot13".parse::<Encryption>().is_err());
/// # Ok::<(), py2p_wire::WireError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encryption {
    /// Frames straight on TCP (py2p's `"Plaintext"`).
    #[default]
    Plaintext,
    /// Frames inside TLS (py2p's `"SSL"`): encrypted, but no peer is authenticated.
    Ssl,
}

impl Encryption {
    /// Both methods, in py2p's order.
    pub const ALL: [Encryption; 2] = [Encryption::Plaintext, Encryption::Ssl];

    /// py2p's spelling, the text hashed into the protocol id: `"Plaintext"` or `"SSL"`.
    pub fn py2p_name(self) -> &'static str {
        match self {
            Encryption::Plaintext => "Plaintext",
            Encryption::Ssl => "SSL",
        }
    }
}

impl FromStr for Encryption {
    type Err = WireError;

    /// Accepts py2p's names in any case: `plaintext` / `Plaintext`, `ssl` / `SSL`.
    fn from_str(s: &str) -> Result<Encryption, WireError> {
        Encryption::ALL
            .into_iter()
            .find(|e| e.py2p_name().eq_ignore_ascii_case(s))
            .ok_or_else(|| WireError::UnknownEncryption(s.to_owned()))
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.py2p_name())
    }
}

/// What a network runs: a subnet name and an encryption method.
///
/// Nodes refuse peers whose protocol id differs from theirs, so networks of different
/// subnets (or encryption) never mix.
///
/// ```
/// use py2p_wire::{Encryption, Protocol};
/// let mesh = Protocol::new("mesh", Encryption::Plaintext);
/// assert_eq!(mesh.id(), Protocol::parse("mesh", "plaintext")?.id());
/// assert_ne!(mesh.id(), Protocol::new("mesh", Encryption::Ssl).id());
/// assert_ne!(mesh.id(), Protocol::new("sync1", Encryption::Plaintext).id());
/// # Ok::<(), py2p_wire::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// The subnet, e.g. `"mesh"`, `"sync1"`, `"chord"`.
    pub subnet: String,
    /// The encryption method.
    pub encryption: Encryption,
}

impl Protocol {
    /// A protocol of the given subnet and encryption.
    pub fn new(subnet: impl Into<String>, encryption: Encryption) -> Protocol {
        Protocol {
            subnet: subnet.into(),
            encryption,
        }
    }

    /// A protocol from text, as py2p's `protocol(subnet, encryption)` takes it: the
    /// encryption name is matched in any case; anything but plaintext or SSL is an error.
    pub fn parse(subnet: impl Into<String>, encryption: &str) -> Result<Protocol, WireError> {
        Ok(Protocol::new(subnet, encryption.parse()?))
    }

    /// The protocol id: base-58 of sha-256 over `subnet || encryption || "0.5"`, with
    /// py2p's spelling of the encryption (`"Plaintext"`, `"SSL"`).
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.subnet.as_bytes());
        h.update(self.encryption.py2p_name().as_bytes());
        h.update(PROTOCOL_VERSION.as_bytes());
        base58::encode_be_bytes(&h.finalize())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.subnet, self.encryption)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids measured on py2p 0.5.607 (docs: ssl-chord-0.5.md, A.6).
    #[test]
    fn ids_match_py2p() {
        let table = [
            (
                "",
                Encryption::Plaintext,
                "C4ySRqcTRhQN6F9BXkjb34jymr7MMkmJi36BLSLhX4q6",
            ),
            (
                "",
                Encryption::Ssl,
                "7dHYngf8WmT6nZtbAsto6E4PY3Dtj5w3C1mbgwGxn8uD",
            ),
            (
                "mesh",
                Encryption::Plaintext,
                "BoSaUBJGxg8qdzPFKBaUV8TkZXkVvVGepwLCXeqouCPS",
            ),
            (
                "mesh",
                Encryption::Ssl,
                "HQqVMixVUFnEz7Y2bZimeSzrLyAJUGug1ezzu3UAr2s7",
            ),
            (
                "sync1",
                Encryption::Ssl,
                "8Ph1VNDGg5rNEmEmW1w6MkyfQXztFB98fojKc75uUfKG",
            ),
            (
                "sync0",
                Encryption::Ssl,
                "FzsE5bdGWVSqgXCXPUwRMMynfR5oNTYYL7t7DazLUCZr",
            ),
            (
                "1",
                Encryption::Ssl,
                "CgEadUp8JTtHHnZUBkjyCPH6bB2UN8sAREwCDHRn2Krt",
            ),
            (
                "chord",
                Encryption::Plaintext,
                "EhuZPdeQhKLbD5vmCFNNP5avM4evzSjkgczwQwWvJbN3",
            ),
            (
                "chord",
                Encryption::Ssl,
                "6tm5Ww9TfN9iE9zwaxM9dHfxymtJb1JaALcPUauzpDnn",
            ),
        ];
        for (subnet, enc, id) in table {
            assert_eq!(Protocol::new(subnet, enc).id(), id, "({subnet:?}, {enc})");
        }
    }

    #[test]
    fn names_parse_in_any_case_and_nothing_else() {
        for s in ["Plaintext", "plaintext", "PLAINTEXT", "pLaInTeXt"] {
            assert_eq!(s.parse::<Encryption>(), Ok(Encryption::Plaintext));
        }
        for s in ["SSL", "ssl", "Ssl"] {
            assert_eq!(s.parse::<Encryption>(), Ok(Encryption::Ssl));
        }
        for s in ["", "Rot13", "tls", "SSL ", "plain"] {
            let err = s.parse::<Encryption>().unwrap_err();
            let text = err.to_string();
            assert!(text.contains("Plaintext") && text.contains("SSL"), "{text}");
            assert!(Protocol::parse("mesh", s).is_err());
        }
    }
}
