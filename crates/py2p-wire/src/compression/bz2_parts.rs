//! bzip2 of large inputs: parts compressed at once on several threads, merged into one stream.
//!
//! A bzip2 stream is a 4-byte header (`BZh9`), bit-packed blocks that are each compressed on
//! their own, an end-of-stream marker and a CRC combined from the blocks' CRCs. So the input
//! is cut into parts small enough to fill one level-9 block each, every part is compressed by
//! libbzip2 as a stream of its own (on as many threads as the machine runs at once), and the
//! parts' blocks are copied bit by bit, one after the other, between one header and one end
//! marker carrying the combined CRC: what lbzip2 does. The result is one ordinary stream,
//! which any bzip2 decoder reads (Python's `bz2.decompress`, which py2p calls, and decoders
//! that read only the first stream of a file alike). Nothing is shared between the parts, so
//! the output is what compressing the parts one after the other would give.
//!
//! Block sorting costs about the same per byte whatever the block's size, so the work is
//! the same as one serial stream's; the time is divided by the threads (1 MiB at level 9:
//! two blocks of 512 KiB at once instead of 900 KiB then 124 KiB). Decoding stays serial:
//! decoding a stream's blocks at once (found by their magic numbers) was measured, and lost
//! more often than it won on this machine (docs/performance-notes.md, tenth round).

use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The largest part: one level-9 block holds 899,981 bytes after bzip2's first run-length
/// step, which expands its input by 5/4 at worst, so 700,000 bytes always fit in one block.
const PART_MAX: usize = 700_000;

/// Inputs from this size are split (two parts of 128 KiB take about 15 ms each to compress,
/// against some tens of microseconds to start a thread).
pub(super) const SPLIT_FROM: usize = 256 * 1024;

/// `BZh9`: the stream header at level 9 (py2p's `bz2.compress` default).
const HEADER: &[u8; 4] = b"BZh9";
/// The magic number that starts every block (48 bits, the BCD digits of pi).
const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
/// The magic number of the end of the stream (the BCD digits of sqrt(pi)).
const END_MAGIC: u64 = 0x1772_4538_5090;

/// Appends to `out` one bzip2 stream (level 9) of `data`, compressed in parts on up to as
/// many threads as the machine runs at once. Returns false, having appended nothing, when
/// the input is too small to split, there is one core, or a part's stream is not laid out as
/// expected: the caller then compresses serially.
pub(super) fn compress(data: &[u8], out: &mut Vec<u8>) -> bool {
    if data.len() < SPLIT_FROM {
        return false;
    }
    let threads = cores();
    if threads < 2 {
        return false;
    }
    let count = data.len().div_ceil(PART_MAX).max(2);
    let part_len = data.len().div_ceil(count);
    let parts: Vec<&[u8]> = data.chunks(part_len).collect();
    let Some(streams) = run_parts(parts.len(), threads, |i| compress_one(parts.get(i)?)) else {
        return false;
    };
    let Some(blocks) = streams
        .iter()
        .map(|s| one_block(s))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let start = out.len();
    out.reserve(streams.iter().map(Vec::len).sum::<usize>() + HEADER.len());
    out.extend_from_slice(HEADER);
    let mut bits = BitWriter::new(out);
    let mut crc: u32 = 0;
    for (stream, block) in streams.iter().zip(&blocks) {
        bits.append(stream, 32, block.bits);
        crc = crc.rotate_left(1) ^ block.crc;
    }
    bits.push(END_MAGIC, 48);
    bits.push(u64::from(crc), 32);
    bits.flush();
    debug_assert!(out.len() > start);
    true
}

/// The threads the machine runs at once, asked once per process (the standard library reads
/// the CPU affinity and cgroup quota files for it).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// Runs `job` for every index below `count`, `threads` at a time (the calling thread is
/// one of them), and collects the results in order; `None` if any job's is.
fn run_parts<T: Send>(
    count: usize,
    threads: usize,
    job: impl Fn(usize) -> Option<T> + Sync,
) -> Option<Vec<T>> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        let result = job(i);
        let failed = result.is_none();
        if let Ok(mut done) = done.lock() {
            if let Some(slot) = done.get_mut(i) {
                *slot = result;
            }
        }
        if failed {
            // The others stop taking parts: the whole is given up.
            next.store(count, Ordering::Relaxed);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(count) {
            // A thread the system refuses is no error: the calling thread takes its parts.
            if std::thread::Builder::new()
                .name("py2p-bz2".into())
                .spawn_scoped(s, work)
                .is_err()
            {
                break;
            }
        }
        work();
    });
    done.into_inner().ok()?.into_iter().collect()
}

/// One level-9 stream of `part`.
fn compress_one(part: &[u8]) -> Option<Vec<u8>> {
    let mut e = bzip2::write::BzEncoder::new(
        Vec::with_capacity(part.len() / 2 + 64),
        bzip2::Compression::best(),
    );
    e.write_all(part).ok()?;
    e.finish().ok()
}

/// Where a one-block stream's block lies: from bit 32 (after the header), `bits` long, and
/// the block's CRC (which is also the stream's).
struct Block {
    bits: u64,
    crc: u32,
}

/// Finds the block of a stream that holds exactly one: the header, the block's magic and
/// CRC at the start, and the end marker with the same CRC followed by 0 to 7 zero bits of
/// padding at the end. `None` unless exactly one padding fits.
fn one_block(stream: &[u8]) -> Option<Block> {
    let head = stream.get(..14)?;
    if head.get(..4)? != HEADER || bits_at(head, 32, 48)? != u128::from(BLOCK_MAGIC) {
        return None;
    }
    let crc = u32::try_from(bits_at(head, 80, 32)?).ok()?;
    let tail = (u128::from(END_MAGIC) << 32) | u128::from(crc);
    let total = u64::try_from(stream.len()).ok()? * 8;
    let mut found = None;
    for pad in 0..8u64 {
        let end = total.checked_sub(pad)?;
        let block_end = end.checked_sub(80)?;
        if block_end > 32
            && bits_at(stream, block_end, 80)? == tail
            && bits_at(stream, end, u32::try_from(pad).ok()?)? == 0
        {
            if found.is_some() {
                return None;
            }
            found = Some(block_end - 32);
        }
    }
    found.map(|bits| Block { bits, crc })
}

/// `count` (at most 128) bits of `data` from bit `at`, most significant first.
fn bits_at(data: &[u8], at: u64, count: u32) -> Option<u128> {
    let mut v: u128 = 0;
    for i in at..at + u64::from(count) {
        let byte = data.get(usize::try_from(i / 8).ok()?)?;
        v = (v << 1) | u128::from((byte >> (7 - i % 8)) & 1);
    }
    Some(v)
}

/// Appends bits to a byte vector, most significant first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// The pending bits of the last, unfinished byte, at its top.
    acc: u8,
    /// How many bits `acc` holds (0 to 7).
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// Appends to the end of `out`.
    fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// The low `count` bits of `value`.
    fn push(&mut self, value: u64, count: u32) {
        for i in (0..count).rev() {
            let bit = u8::from((value >> i) & 1 == 1);
            self.acc |= bit << (7 - self.n);
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// `bits` bits of `src` from bit `from`.
    fn append(&mut self, src: &[u8], from: u64, bits: u64) {
        // Bitwise up to the next whole byte of the output, then whole bytes.
        let head = u64::from((8 - self.n) % 8).min(bits);
        if head > 0 {
            let value = bits_at(src, from, head as u32).unwrap_or(0);
            self.push(u64::try_from(value).unwrap_or(0), head as u32);
        }
        let (from, bits) = (from + head, bits - head);
        let start = usize::try_from(from / 8).unwrap_or(usize::MAX);
        let whole = usize::try_from(bits / 8).unwrap_or(usize::MAX);
        let shift = (from % 8) as u32;
        let tail = src.get(start..).unwrap_or_default();
        if shift == 0 {
            let (full, _) = tail.split_at(whole.min(tail.len()));
            self.out.extend_from_slice(full);
        } else {
            // Eight bytes at a time, each shifted with the first bits of the next.
            self.out.reserve(whole);
            let words = whole / 8;
            let mut chunks = tail.chunks_exact(8);
            for (k, chunk) in chunks.by_ref().take(words).enumerate() {
                let word = u64::from_be_bytes(chunk.try_into().unwrap_or_default());
                let next = tail.get((k + 1) * 8).copied().unwrap_or(0);
                let shifted = (word << shift) | u64::from(next >> (8 - shift));
                self.out.extend_from_slice(&shifted.to_be_bytes());
            }
            let rest = tail.get(words * 8..).unwrap_or_default();
            let next = rest.iter().skip(1).copied().chain(std::iter::once(0));
            self.out.extend(
                rest.iter()
                    .zip(next)
                    .take(whole - words * 8)
                    .map(|(&a, b)| (a << shift) | (b >> (8 - shift))),
            );
        }
        let left = (bits % 8) as u32;
        if left > 0 {
            let at = from + bits - u64::from(left);
            let value = bits_at(src, at, left).unwrap_or(0);
            self.push(u64::try_from(value).unwrap_or(0), left);
        }
    }

    /// Writes the last byte, padded with zero bits.
    fn flush(&mut self) {
        if self.n > 0 {
            self.out.push(self.acc);
            self.acc = 0;
            self.n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Half text, half noise, as the benchmarks' payloads.
    fn payload(len: usize) -> Vec<u8> {
        py2p_testkit::payload::words_and_noise(len, &["broadcast"])
    }

    fn several_cores() -> bool {
        cores() > 1
    }

    /// Decodes the first stream only, as a decoder of one stream does.
    fn first_stream(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bzip2::read::BzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn parts_merge_into_one_stream_that_decodes() {
        for len in [SPLIT_FROM, 1 << 20, 1_400_001, 3 * PART_MAX + 5] {
            let data = payload(len);
            let mut out = vec![9, 9];
            if !compress(&data, &mut out) {
                // One core: nothing is split, nothing appended.
                assert!(!several_cores());
                assert_eq!(out, [9, 9]);
                continue;
            }
            assert_eq!(out.get(..2), Some(&[9u8, 9][..]));
            let stream = out.get(2..).unwrap();
            assert!(stream.starts_with(b"BZh9"));
            // One stream: a single-stream decoder reads all of it, and the CRC checks.
            assert_eq!(first_stream(stream), data, "{len}");
            // About the size of a serial stream.
            let serial = compress_one(&data).unwrap();
            assert!(stream.len() < serial.len() + serial.len() / 50, "{len}");
        }
    }

    #[test]
    fn runs_that_expand_still_fit_one_block_per_part() {
        // Runs of four equal bytes: bzip2's first step makes each five bytes (5/4).
        let data: Vec<u8> = (0..PART_MAX * 2).map(|i| (i / 4 % 251) as u8).collect();
        let mut out = Vec::new();
        assert_eq!(compress(&data, &mut out), several_cores());
        if several_cores() {
            assert_eq!(first_stream(&out), data);
        }
    }

    #[test]
    fn append_copies_any_bit_range_at_any_bit_position() {
        let src = payload(200);
        for pending in 0..8u32 {
            for from in [0u64, 3, 8, 13, 37] {
                for bits in [0u64, 1, 7, 8, 9, 63, 64, 65, 700, 1000] {
                    let mut fast = Vec::new();
                    let mut w = BitWriter::new(&mut fast);
                    w.push(0x55, pending);
                    w.append(&src, from, bits);
                    w.flush();
                    let mut slow = Vec::new();
                    let mut w = BitWriter::new(&mut slow);
                    w.push(0x55, pending);
                    for i in from..from + bits {
                        w.push(bits_at(&src, i, 1).unwrap() as u64, 1);
                    }
                    w.flush();
                    assert_eq!(fast, slow, "{pending} {from} {bits}");
                }
            }
        }
    }

    #[test]
    fn block_and_bits() {
        let stream = compress_one(&payload(5000)).unwrap();
        let block = one_block(&stream).unwrap();
        // The block ends 80 bits and 0 to 7 bits of padding before the stream's end.
        let total = stream.len() as u64 * 8;
        assert!((total - 32 - 80 - 7..=total - 32 - 80).contains(&block.bits));
        assert_eq!(bits_at(&stream, 32, 48), Some(u128::from(BLOCK_MAGIC)));
        // Two blocks is not one.
        let two = compress_one(&payload(2 * PART_MAX)).unwrap();
        assert!(one_block(&two).is_none());
        assert!(one_block(b"BZh9").is_none());

        let mut out = Vec::new();
        let mut w = BitWriter {
            out: &mut out,
            acc: 0,
            n: 0,
        };
        w.push(0b101, 3);
        w.append(&[0, 0, 0, 0, 0xFF, 0x80], 32, 9);
        w.append(&[0b0001_0110], 3, 3);
        w.flush();
        assert_eq!(out, [0b1011_1111, 0b1111_1010]);
    }
}
