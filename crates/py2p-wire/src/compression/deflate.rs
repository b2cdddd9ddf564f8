//! zlib and gzip compression with a deflate state kept per thread.
//!
//! Setting up a deflate stream costs more than compressing a few KiB with it: zlib-rs
//! allocates and clears about 300 KiB of window and hash tables (callgrind, 4 KiB message:
//! 444 k of 1.38 M instructions went to `Compress::new`). Each thread keeps one zlib and
//! one gzip stream and resets it after each message (which clears only the hash head, as
//! zlib's `deflateReset` does); the output is the same as from a new stream.

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, FlushCompress, Status};

/// zlib's level 6 (`Z_DEFAULT_COMPRESSION`), what py2p compresses with.
const LEVEL: flate2::Compression = flate2::Compression::new(6);
/// Output room added when the compressor fills the buffer (the first reservation, about
/// half the input, is enough for compressible payloads).
const GROWTH: usize = 16 << 10;

thread_local! {
    static ZLIB: RefCell<Option<Compress>> = const { RefCell::new(None) };
    static GZIP: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// Appends to `out` a zlib stream (a gzip member when `gzip`) of what `write` writes,
/// compressed at level 6 with window 15, as py2p's `zlib.compressobj` does.
pub(super) fn compress(
    gzip: bool,
    len: usize,
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let cache = if gzip { &GZIP } else { &ZLIB };
    // Taken out while in use (nothing else borrows it meanwhile), put back only after a
    // clean finish and reset.
    let mut state = cache.with(|c| c.borrow_mut().take()).unwrap_or_else(|| {
        if gzip {
            Compress::new_gzip(LEVEL, 15)
        } else {
            Compress::new(LEVEL, true)
        }
    });
    out.reserve(len / 2 + 64);
    let mut sink = Sink {
        state: &mut state,
        out,
    };
    // Packet headers and small packets gathered in 4 KiB, large packets passed straight on,
    // as for the other methods.
    let mut buffered = io::BufWriter::with_capacity(4096, &mut sink);
    write(&mut buffered)?;
    buffered.flush()?;
    drop(buffered);
    sink.finish()?;
    state.reset();
    cache.with(|c| *c.borrow_mut() = Some(state));
    Ok(())
}

/// Feeds a deflate stream, appending its output to `out`.
struct Sink<'a> {
    state: &'a mut Compress,
    out: &'a mut Vec<u8>,
}

impl Sink<'_> {
    /// Runs the compressor once over `input`; the bytes of it consumed.
    fn run(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<(usize, Status)> {
        if self.out.len() == self.out.capacity() {
            self.out.reserve(GROWTH);
        }
        let before = self.state.total_in();
        let status = self
            .state
            .compress_vec(input, self.out, flush)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(self.state.total_in() - before).unwrap_or(usize::MAX);
        Ok((consumed, status))
    }

    fn finish(&mut self) -> io::Result<()> {
        loop {
            if let (_, Status::StreamEnd) = self.run(&[], FlushCompress::Finish)? {
                return Ok(());
            }
            // The compressor stops short of the end only when the buffer is full.
            if self.out.len() < self.out.capacity() {
                return Err(io::Error::other("deflate stopped before the end"));
            }
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let (consumed, _) = self.run(rest, FlushCompress::None)?;
            if consumed == 0 && self.out.len() < self.out.capacity() {
                return Err(io::Error::other("deflate took no input"));
            }
            rest = rest.get(consumed..).unwrap_or_default();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn packed(gzip: bool, data: &[u8]) -> Vec<u8> {
        let mut out = b"head".to_vec();
        compress(gzip, data.len(), &mut out, |w| w.write_all(data)).unwrap();
        assert_eq!(&out[..4], b"head", "appends after what is there");
        out.split_off(4)
    }

    #[test]
    fn a_reused_stream_compresses_as_a_new_one() {
        let a: Vec<u8> = (0..50_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        let b = vec![3u8; 70_000];
        for gzip in [false, true] {
            let first = packed(gzip, &a);
            // The thread's stream now holds state from `a`, then from `b`.
            let _ = packed(gzip, &b);
            assert_eq!(packed(gzip, &a), first, "gzip: {gzip}");
            let mut fresh = if gzip {
                Compress::new_gzip(LEVEL, 15)
            } else {
                Compress::new(LEVEL, true)
            };
            let mut expected = Vec::with_capacity(a.len() + 1024);
            fresh
                .compress_vec(&a, &mut expected, FlushCompress::Finish)
                .unwrap();
            assert_eq!(first, expected, "same bytes as a new stream (gzip: {gzip})");
            let mut back = Vec::new();
            if gzip {
                flate2::read::GzDecoder::new(&first[..])
                    .read_to_end(&mut back)
                    .unwrap();
            } else {
                flate2::read::ZlibDecoder::new(&first[..])
                    .read_to_end(&mut back)
                    .unwrap();
            }
            assert_eq!(back, a);
        }
    }

    #[test]
    fn incompressible_input_grows_the_output() {
        // xorshift bytes do not compress: the first reservation (half) is not enough.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let out = packed(false, &data);
        assert!(out.len() > data.len());
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
