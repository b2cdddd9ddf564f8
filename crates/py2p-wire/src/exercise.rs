//! Bodies of the fuzz targets, and the seed corpus they start from.
//!
//! The cargo-fuzz targets in `fuzz/` (nightly only) are one-line calls into this module, so
//! that the stable test `tests/fuzz_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through exactly the same code on every `cargo test`.
//! [`seed_corpus`] generates the hand-made part of that corpus
//! (`cargo xtask fuzz --seed-corpus`).
//!
//! Every function here accepts any input; a panic means a bug in this crate (or a broken
//! invariant that the functions check with `assert!`).

use crate::{Compression, FrameDecoder, Limits, Message, WireError, HEADER_LEN};

/// Names of the fuzz targets, which are also the corpus folder names.
pub const TARGETS: [&str; 2] = ["frame_decoder", "decompress"];

/// Frame-size limit of [`frame_decoder`]: small, so that fuzzing reaches it.
pub const FUZZ_MAX_FRAME_LEN: usize = 4096;

/// Limits [`frame_decoder`] decodes message bodies with: small, so that fuzzing reaches them.
pub const FUZZ_LIMITS: Limits = Limits {
    max_frame_len: FUZZ_MAX_FRAME_LEN,
    max_decompressed_len: 16 * 1024,
    max_packets: 16,
};

/// Decompression limit of [`decompress`].
pub const FUZZ_DECOMPRESS_LIMIT: usize = 64 * 1024;

/// Most chunk sizes a [`frame_decoder`] input can specify.
const MAX_CHUNK_SIZES: usize = 16;

/// Runs the exercise named `target` (one of [`TARGETS`]) on `data`.
///
/// Returns `false` when no such target exists.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "frame_decoder" => frame_decoder(data),
        "decompress" => decompress(data),
        _ => return false,
    }
    true
}

/// Feeds a byte stream in pieces through a [`FrameDecoder`], then decodes every frame body.
///
/// Input layout: the first byte `n` (mod 17) is the number of chunk sizes that follow it;
/// the `n` bytes after it are chunk sizes, used in turn (0 pushes an empty slice); the rest
/// is the stream. With `n == 0` the stream is pushed at once.
///
/// Checks that the decoder hands out exactly the frames of an independent, whole-stream
/// parse (whatever the chunking), refuses an over-long header exactly where that parse does
/// and stays failed afterwards, and accounts for the bytes it buffers. Each body is then
/// decoded with [`Message::decode_body`] under no compression, each single compression and
/// all of them; every message decoded must respect [`FUZZ_LIMITS`] and survive an
/// uncompressed encode/decode round trip unchanged.
pub fn frame_decoder(data: &[u8]) {
    let (sizes, stream): (&[u8], &[u8]) = match data.split_first() {
        Some((&n, rest)) => rest.split_at((usize::from(n) % (MAX_CHUNK_SIZES + 1)).min(rest.len())),
        None => (&[], &[]),
    };
    let expected = reference_frames(stream, FUZZ_MAX_FRAME_LEN);

    let mut decoder = FrameDecoder::new(FUZZ_MAX_FRAME_LEN);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut error: Option<WireError> = None;
    let chunks = Chunks::new(stream, sizes);
    'feed: for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(body)) => {
                    assert!(
                        body.len() <= FUZZ_MAX_FRAME_LEN,
                        "frame body over the limit"
                    );
                    frames.push(body);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }

    assert_eq!(
        frames, expected.frames,
        "decoder frames differ from a whole-stream parse"
    );
    match (&error, expected.too_large) {
        (None, None) => {
            assert_eq!(decoder.buffered_len(), stream.len() - expected.consumed);
            assert_eq!(decoder.is_mid_frame(), decoder.buffered_len() > 0);
        }
        (Some(e), Some(len)) => {
            assert_eq!(
                e,
                &WireError::FrameTooLarge {
                    len: u64::from(len),
                    max: FUZZ_MAX_FRAME_LEN
                }
            );
            // A failed decoder stays failed and buffers nothing more.
            decoder.push(stream);
            assert_eq!(decoder.next_frame().as_ref(), Err(e));
            assert_eq!(decoder.buffered_len(), 0);
        }
        (error, too_large) => {
            panic_mismatch(error.as_ref(), too_large);
        }
    }

    for body in &frames {
        decode_everyhow(body);
    }
}

#[allow(clippy::panic)]
fn panic_mismatch(error: Option<&WireError>, too_large: Option<u32>) {
    panic!("decoder error {error:?} but the whole-stream parse found an over-long header {too_large:?}");
}

/// Decodes `body` under every compression set and checks what comes out.
fn decode_everyhow(body: &[u8]) {
    let mut sets: Vec<&[Compression]> = vec![&[], &Compression::PREFERENCE];
    sets.extend(Compression::ALL.iter().map(std::slice::from_ref));
    for set in sets {
        match Message::decode_body(body, set, &FUZZ_LIMITS) {
            Ok(msg) => {
                assert!(msg.payload().len() + 4 <= FUZZ_LIMITS.max_packets);
                let frame = msg.encode(None);
                let again = Message::decode_frame(&frame, &[], &Limits::default());
                assert_eq!(
                    again,
                    Ok(msg),
                    "uncompressed round trip changed the message"
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // The whole-frame entry point agrees with the body one.
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    assert_eq!(
        Message::decode_frame(&frame, &Compression::PREFERENCE, &FUZZ_LIMITS),
        Message::decode_body(body, &Compression::PREFERENCE, &FUZZ_LIMITS)
    );
}

/// What a whole-stream parse of a frame stream finds.
struct ReferenceFrames {
    frames: Vec<Vec<u8>>,
    /// Bytes of the stream taken by complete frames.
    consumed: usize,
    /// The first header over the limit, if any (parsing stops there).
    too_large: Option<u32>,
}

/// Splits a complete stream into frames the simplest way, to compare the decoder against.
fn reference_frames(stream: &[u8], max: usize) -> ReferenceFrames {
    let mut out = ReferenceFrames {
        frames: Vec::new(),
        consumed: 0,
        too_large: None,
    };
    let mut rest = stream;
    while let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() {
        let len = u32::from_be_bytes(*header);
        if len as usize > max {
            out.too_large = Some(len);
            break;
        }
        let Some(body) = after.get(..len as usize) else {
            break;
        };
        out.frames.push(body.to_vec());
        out.consumed += HEADER_LEN + body.len();
        rest = after.get(len as usize..).unwrap_or_default();
    }
    out
}

/// Cuts a stream into chunks of the given sizes, cycling through them.
struct Chunks<'a> {
    rest: &'a [u8],
    sizes: &'a [u8],
    next_size: usize,
    done: bool,
}

impl<'a> Chunks<'a> {
    fn new(stream: &'a [u8], sizes: &'a [u8]) -> Self {
        // Without a non-zero size the stream would never advance: push it whole.
        let sizes = if sizes.iter().any(|&s| s > 0) {
            sizes
        } else {
            &[]
        };
        Chunks {
            rest: stream,
            sizes,
            next_size: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let size = match self.sizes.get(self.next_size % self.sizes.len().max(1)) {
            Some(&s) => usize::from(s),
            // No sizes: the whole stream in one push.
            None => {
                self.done = true;
                return Some(std::mem::take(&mut self.rest));
            }
        };
        self.next_size += 1;
        let (chunk, rest) = self.rest.split_at(size.min(self.rest.len()));
        self.rest = rest;
        // Some size is non-zero (see `new`), so the stream always runs out.
        if rest.is_empty() && size > 0 {
            self.done = true;
        }
        Some(chunk)
    }
}

/// Runs every decompressor on arbitrary bytes, and compress/decompress round trips.
///
/// Checks that decompression never returns more than [`FUZZ_DECOMPRESS_LIMIT`] bytes, that
/// each method gives back the input it compressed with a limit of exactly the input's
/// length, that one byte less is refused as too large, and that zlib decompression also
/// reads gzip (py2p inflates both with `wbits = 15 | 32`).
pub fn decompress(data: &[u8]) {
    for method in Compression::ALL {
        match method.decompress(data, FUZZ_DECOMPRESS_LIMIT) {
            Ok(out) => assert!(
                out.len() <= FUZZ_DECOMPRESS_LIMIT,
                "{method} passed its limit"
            ),
            Err(e) => {
                let _ = e.to_string();
            }
        }

        let packed = method.compress(data);
        assert_eq!(
            method.decompress(&packed, data.len()),
            Ok(data.to_vec()),
            "{method} round trip failed"
        );
        if let Some(smaller) = data.len().checked_sub(1) {
            assert_eq!(
                method.decompress(&packed, smaller),
                Err(WireError::DecompressedTooLarge {
                    method,
                    limit: smaller
                }),
                "{method} ignored its limit"
            );
        }
        if method == Compression::Gzip {
            assert_eq!(
                Compression::Zlib.decompress(&packed, data.len()),
                Ok(data.to_vec())
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Seed corpus

/// One file of the seed corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    /// The fuzz target (corpus folder) it belongs to: one of [`TARGETS`].
    pub target: &'static str,
    /// File name (starts with `seed-`, which marks generated files).
    pub name: String,
    /// File content.
    pub data: Vec<u8>,
}

/// Prefix of the names of generated seed files.
pub const SEED_PREFIX: &str = "seed-";

/// The committed corpus, `fuzz/corpus/<target>/`, for the replay tests of this crate and of
/// `py2p` (whose node targets share the folder).
pub mod corpus {
    use std::fs;
    use std::io;
    use std::path::{Path, PathBuf};

    use super::{SeedFile, SEED_PREFIX};

    /// `fuzz/corpus` of this repository.
    pub fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
    }

    /// The files of one target's corpus, sorted by name.
    pub fn files(target: &str) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(root().join(target))? {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// What is wrong with a generated seed corpus, one line per fault: a seed of a target
    /// not in `targets`, a name without the seed prefix, a name twice, a seed over
    /// `max_len` bytes.
    pub fn seed_faults(seeds: &[SeedFile], targets: &[&str], max_len: usize) -> Vec<String> {
        let mut faults = Vec::new();
        let mut names = std::collections::HashSet::new();
        for seed in seeds {
            if !targets.contains(&seed.target) {
                faults.push(format!("{}: unknown target {}", seed.name, seed.target));
            }
            if !seed.name.starts_with(SEED_PREFIX) {
                faults.push(format!("{}: not named {SEED_PREFIX}*", seed.name));
            }
            if !names.insert((seed.target, seed.name.as_str())) {
                faults.push(format!("{}: twice", seed.name));
            }
            if seed.data.len() > max_len {
                faults.push(format!(
                    "{}: {} bytes, over {max_len}",
                    seed.name,
                    seed.data.len()
                ));
            }
        }
        faults
    }

    /// Replaces the generated files (`seed-*`) of `targets` by `seeds`, keeping the inputs
    /// the fuzzer found; returns how many were written.
    pub fn rewrite_seeds(targets: &[&str], seeds: &[SeedFile]) -> io::Result<usize> {
        for target in targets {
            fs::create_dir_all(root().join(target))?;
            for path in files(target)? {
                let is_seed = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(SEED_PREFIX));
                if is_seed {
                    fs::remove_file(&path)?;
                }
            }
        }
        for seed in seeds {
            fs::write(root().join(seed.target).join(&seed.name), &seed.data)?;
        }
        Ok(seeds.len())
    }
}

/// `lzma.compress(bytes(1 << 20))` by Python 3.11 (what py2p sends): an xz bomb of 284 bytes.
const PY_XZ_BOMB: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a3efffff00d95d00006ffdffffa3b7ff473e481572396151b89228e6a38607f9eee41e82d32fc53a3c014bb17ec98a8a4d2fa30dd97fa6e38c231153e05918c5758ae277f8b6947f0c6ac0de744964e2e95c53b204d8f7440cab5f0d6d46e9e5c37688b79657acb64de1691d6ffb4b88106c42cb883f5c008fd04eaf262894711f3d8f24e1709ea7235fec28cb85d195988a7e2a91f22775f719c006984d98fdd8afd5900fc42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522af7e495250000000000c2f6ba3ea2706b600001f5018080400079977f47b1c467fb020000000004595a";

/// `lzma.compress((b"the quick brown fox jumps over the lazy py2p peer " * 6)[:300])` by
/// Python 3.11: LZMA2-compressed data from Python's own encoder.
const PY_XZ_TEXT: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a3e0012b00355d003a1a08ce76c7e5e9d60734c3d10ebfce55e1aabde0e48f9801dd8de507549e65255f273a6a7eb5972828595878b4959b20276a80000000000066a387aff9d46e23000151ac0200000093b5591bb1c467fb020000000004595a";

fn unhex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy py2p peer "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// A plain message body made of the given packets.
fn body_of(packets: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in packets {
        body.extend_from_slice(&(p.len() as u32).to_be_bytes());
        body.extend_from_slice(p);
    }
    body
}

/// A frame (header + body).
fn frame_of(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A [`frame_decoder`] input pushing `stream` at once.
fn whole(stream: &[u8]) -> Vec<u8> {
    let mut data = vec![0];
    data.extend_from_slice(stream);
    data
}

/// A [`frame_decoder`] input pushing `stream` in chunks of `sizes`.
fn chunked(sizes: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut data = vec![sizes.len() as u8];
    data.extend_from_slice(sizes);
    data.extend_from_slice(stream);
    data
}

fn method_name(method: Option<Compression>) -> &'static str {
    method.map_or("none", Compression::name)
}

/// The hand-made seed corpus of every fuzz target.
///
/// Small files: valid frames under each compression (whole and in pieces), truncated and
/// concatenated frames, a 4 GiB header, a header just over the limit, malformed bodies
/// (bad checksum, bad base-58 time, packet overrun, too few and too many packets),
/// decompression bombs and garbage.
pub fn seed_corpus() -> Vec<SeedFile> {
    let mut files = Vec::new();
    let mut add = |target: &'static str, name: &str, data: Vec<u8>| {
        files.push(SeedFile {
            target,
            name: format!("{SEED_PREFIX}{name}"),
            data,
        });
    };

    // -- frame_decoder ------------------------------------------------------------------
    let fd = "frame_decoder";
    let time = 1_700_000_000;
    let small = Message::new(
        b"\x00".to_vec(),
        b"seed-sender".to_vec(),
        vec![b"\x00".to_vec(), b"hello".to_vec()],
        time,
    );
    let texty = Message::new(
        b"\x02".to_vec(),
        b"seed-sender".to_vec(),
        vec![b"\x0a".to_vec(), text(300)],
        time,
    );
    let methods: Vec<Option<Compression>> = std::iter::once(None)
        .chain(Compression::PREFERENCE.into_iter().map(Some))
        .collect();
    for &m in &methods {
        add(
            fd,
            &format!("valid-{}", method_name(m)),
            whole(&texty.encode(m)),
        );
        add(
            fd,
            &format!("chunked-{}", method_name(m)),
            chunked(&[1, 3, 0, 7, 64], &small.encode(m)),
        );
    }
    let plain = small.encode(None);
    let zlib = texty.encode(Some(Compression::Zlib));
    add(
        fd,
        "two-frames",
        chunked(&[5], &[plain.as_slice(), zlib.as_slice()].concat()),
    );
    add(fd, "byte-by-byte", chunked(&[1], &plain));
    add(
        fd,
        "truncated-header",
        whole(plain.get(..2).unwrap_or_default()),
    );
    add(
        fd,
        "truncated-body",
        whole(plain.get(..plain.len() - 3).unwrap_or_default()),
    );
    add(
        fd,
        "empty-frame-then-valid",
        whole(&[&[0, 0, 0, 0], plain.as_slice()].concat()),
    );
    add(fd, "4gib-header", whole(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]));
    add(
        fd,
        "4gib-header-after-valid",
        chunked(&[2, 9], &[plain.as_slice(), &[0xFF; 8]].concat()),
    );
    let over = (FUZZ_MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    add(
        fd,
        "just-over-limit",
        whole(&[over.as_slice(), &[0; 16]].concat()),
    );
    let at_limit = frame_of(&noise(FUZZ_MAX_FRAME_LEN, 7));
    add(fd, "at-limit-garbage", whole(&at_limit));
    add(fd, "garbage", whole(&noise(96, 11)));
    add(fd, "garbage-chunked", chunked(&[4, 4, 1], &noise(80, 13)));

    let bomb_zlib = Compression::Zlib.compress(&vec![0; 1 << 20]);
    add(fd, "zlib-bomb", whole(&frame_of(&bomb_zlib)));
    let bomb_bz2 = Compression::Bz2.compress(&vec![0; 1 << 20]);
    add(fd, "bz2-bomb", whole(&frame_of(&bomb_bz2)));
    add(fd, "xz-bomb", whole(&frame_of(&unhex(PY_XZ_BOMB))));
    // A snappy header announcing 1 GiB of output.
    add(
        fd,
        "snappy-huge-len",
        whole(&frame_of(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61])),
    );

    let id = small.id().as_bytes().to_vec();
    let time_58 = small.time_58().into_bytes();
    let mut bad_id = id.clone();
    if let Some(first) = bad_id.first_mut() {
        *first = if *first == b'2' { b'3' } else { b'2' };
    }
    add(
        fd,
        "bad-checksum",
        whole(&frame_of(&body_of(&[
            b"\x00", b"s", &bad_id, &time_58, b"\x00", b"hello",
        ]))),
    );
    add(
        fd,
        "bad-base58-time",
        whole(&frame_of(&body_of(&[
            b"\x00", b"s", &id, b"0OIl", b"\x00", b"hello",
        ]))),
    );
    add(
        fd,
        "time-overflow",
        whole(&frame_of(&body_of(&[
            b"\x00",
            b"s",
            &id,
            &[b'z'; 20],
            b"\x00",
        ]))),
    );
    add(
        fd,
        "too-few-packets",
        whole(&frame_of(&body_of(&[b"\x00", b"s", &id]))),
    );
    let many = Message::new(
        b"\x00".to_vec(),
        b"s".to_vec(),
        vec![b"x".to_vec(); 20],
        time,
    );
    add(fd, "too-many-packets", whole(&many.encode(None)));
    let empty_payload = Message::new(b"\x00".to_vec(), b"s".to_vec(), Vec::new(), time);
    add(fd, "empty-payload", whole(&empty_payload.encode(None)));
    let mut overrun = body_of(&[b"\x00", b"s", &id, &time_58]);
    overrun.extend_from_slice(&[0, 0, 1, 0, b'x']);
    add(fd, "packet-overrun", whole(&frame_of(&overrun)));

    // -- decompress ---------------------------------------------------------------------
    let dc = "decompress";
    for m in Compression::PREFERENCE {
        let packed = m.compress(&text(300));
        add(dc, &format!("{}-text", m.name()), packed.clone());
        add(dc, &format!("{}-empty", m.name()), m.compress(b""));
        add(
            dc,
            &format!("{}-truncated", m.name()),
            packed.get(..packed.len() / 2).unwrap_or_default().to_vec(),
        );
        let mut flipped = packed;
        let middle = flipped.len() / 2;
        if let Some(byte) = flipped.get_mut(middle) {
            *byte ^= 0x55;
        }
        add(dc, &format!("{}-corrupted", m.name()), flipped);
    }
    add(dc, "zlib-bomb", bomb_zlib);
    add(
        dc,
        "gzip-bomb",
        Compression::Gzip.compress(&vec![0; 1 << 20]),
    );
    add(dc, "bz2-bomb", bomb_bz2);
    add(dc, "xz-bomb-python", unhex(PY_XZ_BOMB));
    add(dc, "xz-text-python", unhex(PY_XZ_TEXT));
    add(
        dc,
        "snappy-huge-len",
        vec![0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61],
    );
    let bz2_twice = [
        Compression::Bz2.compress(b"one "),
        Compression::Bz2.compress(b"two"),
    ]
    .concat();
    add(dc, "bz2-two-streams", bz2_twice);
    let mut trailing = Compression::Zlib.compress(&text(100));
    trailing.extend_from_slice(b"trailing garbage");
    add(dc, "zlib-trailing-garbage", trailing);
    add(dc, "empty", Vec::new());
    add(dc, "garbage", noise(128, 17));
    add(dc, "text-uncompressed", text(200));

    files
}
