//! The one error type of this crate.

use std::fmt;

use crate::Compression;

/// Everything that can go wrong while reading py2p traffic.
///
/// Every variant describes bad *input*; none of them is a bug in this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// A base-58 text held a character outside py2p's alphabet.
    InvalidBase58 {
        /// The offending character.
        character: char,
        /// Its position (in characters) in the text.
        position: usize,
    },
    /// A base-58 number does not fit the integer type asked for (a time beyond `u64`).
    Base58Overflow,
    /// A frame header announced more bytes than the configured maximum.
    FrameTooLarge {
        /// The announced body length.
        len: u64,
        /// The configured maximum (`Limits::max_frame_len`).
        max: usize,
    },
    /// A whole frame whose header does not match the number of bytes that follow it.
    LengthMismatch {
        /// The length the header announced.
        declared: u64,
        /// The number of body bytes actually present.
        actual: usize,
    },
    /// Input ended inside a size header.
    Truncated,
    /// A packet header announced more bytes than remain in the body.
    PacketOverrun {
        /// Index of the packet in the body.
        index: usize,
        /// Announced packet length.
        declared: u64,
        /// Bytes left in the body after the header.
        remaining: usize,
    },
    /// A message body held fewer than the four header packets (type, sender, id, time).
    TooFewPackets {
        /// How many packets it held.
        found: usize,
    },
    /// A message body held more packets than `Limits::max_packets`.
    TooManyPackets {
        /// The configured maximum.
        max: usize,
    },
    /// The id packet does not match the id recomputed from payload and time.
    ChecksumMismatch {
        /// The id the frame carried (lossy UTF-8).
        declared: String,
        /// The id computed from the frame's payload and time.
        computed: String,
    },
    /// A compressed body could not be decompressed with this method.
    Decompress {
        /// The method that failed.
        method: Compression,
        /// What the decompressor reported.
        reason: String,
    },
    /// Decompression would produce more than `Limits::max_decompressed_len` bytes.
    DecompressedTooLarge {
        /// The method in use.
        method: Compression,
        /// The configured maximum.
        limit: usize,
    },
    /// A compression name or flag that py2p 0.5 does not define.
    UnknownCompression(String),
    /// A handshake's compression list is not a JSON list of strings.
    InvalidCompressionList(String),
    /// An encryption name other than py2p's two (`"Plaintext"`, `"SSL"`, any case).
    UnknownEncryption(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::InvalidBase58 { character, position } => write!(
                f,
                "invalid base-58 character {character:?} at position {position}"
            ),
            WireError::Base58Overflow => f.write_str("base-58 number too large for 64 bits"),
            WireError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            WireError::LengthMismatch { declared, actual } => write!(
                f,
                "frame header announces {declared} bytes but {actual} follow"
            ),
            WireError::Truncated => f.write_str("input ends inside a 4-byte size header"),
            WireError::PacketOverrun { index, declared, remaining } => write!(
                f,
                "packet {index} announces {declared} bytes but only {remaining} remain"
            ),
            WireError::TooFewPackets { found } => write!(
                f,
                "message has {found} packets; at least 4 (type, sender, id, time) are required"
            ),
            WireError::TooManyPackets { max } => {
                write!(f, "message has more than {max} packets")
            }
            WireError::ChecksumMismatch { declared, computed } => write!(
                f,
                "checksum failed: frame carries id {declared:?} but its content hashes to {computed:?}"
            ),
            WireError::Decompress { method, reason } => {
                write!(f, "{method} decompression failed: {reason}")
            }
            WireError::DecompressedTooLarge { method, limit } => write!(
                f,
                "{method} body decompresses to more than the limit of {limit} bytes"
            ),
            WireError::UnknownCompression(name) => {
                write!(f, "unknown compression method {name:?}")
            }
            WireError::InvalidCompressionList(why) => {
                write!(f, "invalid compression list: {why}")
            }
            WireError::UnknownEncryption(name) => write!(
                f,
                "unknown encryption method {name:?}: the valid ones are \"Plaintext\" and \"SSL\" (any case)"
            ),
        }
    }
}

impl std::error::Error for WireError {}
