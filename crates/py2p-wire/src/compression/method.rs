//! The [`Compression`] type; its methods are in the parent module.

/// A compression method of py2p 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// snappy, raw block format (flag `0x20`).
    Snappy,
    /// zlib stream (flag `0x13`).
    Zlib,
    /// gzip member (flag `0x11`).
    Gzip,
    /// bzip2 stream (flag `0x10`).
    Bz2,
    /// lzma in the `.xz` container (flag `0x12`).
    Lzma,
}
