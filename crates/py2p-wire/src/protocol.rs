//! Protocol descriptions and their ids.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::base58;

/// The protocol version this crate speaks: it is hashed into every protocol id.
pub const PROTOCOL_VERSION: &str = "0.5";

/// What a network runs: a subnet name and an encryption method.
///
/// Nodes refuse peers whose protocol id differs from theirs, so networks of different
/// subnets never mix.
///
/// ```
/// use py2p_wire::Protocol;
/// let mesh = Protocol::new("mesh", "Plaintext");
/// assert_eq!(mesh.id(), Protocol::new("mesh", "Plaintext").id());
/// assert_ne!(mesh.id(), Protocol::new("sync1", "Plaintext").id());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// The subnet, e.g. `"mesh"`, `"sync1"`, `"chord"`.
    pub subnet: String,
    /// The encryption method: `"Plaintext"` or `"SSL"`.
    pub encryption: String,
}

impl Protocol {
    /// A protocol of the given subnet and encryption.
    pub fn new(subnet: impl Into<String>, encryption: impl Into<String>) -> Protocol {
        Protocol {
            subnet: subnet.into(),
            encryption: encryption.into(),
        }
    }

    /// The protocol id: base-58 of sha-256 over `subnet || encryption || "0.5"`.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.subnet.as_bytes());
        h.update(self.encryption.as_bytes());
        h.update(PROTOCOL_VERSION.as_bytes());
        base58::encode_be_bytes(&h.finalize())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.subnet, self.encryption)
    }
}
