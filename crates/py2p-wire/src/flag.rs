//! The protocol-defined flag bytes of py2p 0.5.

use std::fmt;

/// One flag byte of the py2p 0.5 protocol.
///
/// A flag is the first byte of a message's type packet, or the first packet of its payload
/// (a "sub-flag"). Bytes that py2p 0.5 does not name are still representable, so that traffic
/// from newer or misbehaving peers can be inspected; [`Flag::name`] tells them apart.
///
/// ```
/// use py2p_wire::Flag;
/// assert_eq!(Flag::WHISPER.0, 0x02);
/// assert_eq!(Flag::from_packet(b"\x07"), Some(Flag::PEERS));
/// assert_eq!(Flag(0x2f).name(), None);
/// assert_eq!(Flag::SNAPPY.to_string(), "snappy");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flag(pub u8);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $value:expr, $text:expr;)*) => {
        impl Flag {
            $($(#[$doc])* pub const $name: Flag = Flag($value);)*

            /// py2p's name for this flag, or `None` for a byte py2p 0.5 does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

flags! {
    /// Main flag and sub-flag: a message for every node of the network.
    BROADCAST = 0x00, "broadcast";
    /// Main flag: connection maintenance (compression list, resend).
    RENEGOTIATE = 0x01, "renegotiate";
    /// Main flag and sub-flag: a message for one node.
    WHISPER = 0x02, "whisper";
    /// Reserved, unused by py2p 0.5.
    PING = 0x03, "ping";
    /// Reserved, unused by py2p 0.5.
    PONG = 0x04, "pong";
    /// Sub-flag: the handshake (id, protocol id, address, compressions).
    HANDSHAKE = 0x05, "handshake";
    /// Sub-flag (chord): a node announces itself.
    NOTIFY = 0x06, "notify";
    /// Sub-flag: a JSON list of known peers follows.
    PEERS = 0x07, "peers";
    /// Sub-flag: a request for a peer's address, or for the peer list (`*`).
    REQUEST = 0x08, "request";
    /// Sub-flag of renegotiate: send the last message again.
    RESEND = 0x09, "resend";
    /// Sub-flag: the answer to a request.
    RESPONSE = 0x0A, "response";
    /// Sub-flag (sync, chord): store a key.
    STORE = 0x0B, "store";
    /// Sub-flag (chord): ask for a key.
    RETRIEVE = 0x0C, "retrieve";
    /// Sub-flag (chord): the answer to a retrieve.
    RETRIEVED = 0x0D, "retrieved";
    /// Compression method: bzip2.
    BZ2 = 0x10, "bz2";
    /// Compression method: gzip.
    GZIP = 0x11, "gzip";
    /// Compression method: lzma (the .xz container).
    LZMA = 0x12, "lzma";
    /// Compression method: zlib.
    ZLIB = 0x13, "zlib";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    BWTC = 0x14, "bwtc";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    CONTEXT1 = 0x15, "context1";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    DEFSUM = 0x16, "defsum";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    DMC = 0x17, "dmc";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    FENWICK = 0x18, "fenwick";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    HUFFMAN = 0x19, "huffman";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    LZJB = 0x1A, "lzjb";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    LZJBR = 0x1B, "lzjbr";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    LZP3 = 0x1C, "lzp3";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    MTF = 0x1D, "mtf";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    PPMD = 0x1E, "ppmd";
    /// Reserved compression method (compressjs), not implemented by py2p 0.5.
    SIMPLE = 0x1F, "simple";
    /// Compression method: snappy (raw block format).
    SNAPPY = 0x20, "snappy";
}

impl Flag {
    /// Sub-flag of renegotiate: the sender's compression list follows. The same byte as
    /// [`Flag::RENEGOTIATE`], so [`Flag::name`] calls it "renegotiate".
    pub const COMPRESSION: Flag = Flag(0x01);

    /// The flag a one-byte packet carries, or `None` when the packet is not exactly one byte.
    pub fn from_packet(packet: &[u8]) -> Option<Flag> {
        match packet {
            [b] => Some(Flag(*b)),
            _ => None,
        }
    }

    /// Whether py2p reserves this byte for the protocol (`0x00..0x30`).
    pub fn is_reserved(self) -> bool {
        self.0 < 0x30
    }

    /// The flag as a one-byte packet.
    pub fn as_packet(self) -> [u8; 1] {
        [self.0]
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:02x}", self.0),
        }
    }
}

impl From<u8> for Flag {
    fn from(b: u8) -> Flag {
        Flag(b)
    }
}
