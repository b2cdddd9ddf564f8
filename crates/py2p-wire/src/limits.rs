//! Bounds on what input may make this crate allocate.

/// Limits applied while decoding input from a peer.
///
/// py2p 0.5.607 has none of these: a 4 GiB length header makes it buffer 4 GiB, and a zlib
/// bomb makes it inflate the whole bomb. The defaults here are generous for real traffic and
/// keep one hostile frame far below 100 MiB of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body (after the 4-byte header, before decompression). Default 16 MiB.
    pub max_frame_len: usize,
    /// Largest body after decompression. Default 16 MiB.
    pub max_decompressed_len: usize,
    /// Most packets in one message, the four header packets included. Default 65,536.
    pub max_packets: usize,
}

impl Limits {
    /// The default frame-size limit: 16 MiB.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;
    /// The default decompressed-size limit: 16 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_LEN: usize = 16 << 20;
    /// The default packet-count limit: 65,536.
    pub const DEFAULT_MAX_PACKETS: usize = 1 << 16;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            max_decompressed_len: Self::DEFAULT_MAX_DECOMPRESSED_LEN,
            max_packets: Self::DEFAULT_MAX_PACKETS,
        }
    }
}
