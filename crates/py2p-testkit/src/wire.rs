//! Bodies of the wire fuzz targets (`frame_decoder`, `decompress`): [`py2p_wire`]'s frame
//! decoder and decompressors under arbitrary input, with checks.
//!
//! The cargo-fuzz targets in `fuzz/` (nightly only) are one-line calls into this module, so
//! that the stable test `tests/wire_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through exactly the same code on every `cargo test`.
//! [`wire_seeds::seed_corpus`](crate::wire_seeds::seed_corpus) generates the hand-made part
//! of that corpus (`cargo xtask fuzz --seed-corpus`).
//!
//! Every function here accepts any input; a panic means a bug in `py2p-wire` (or a broken
//! invariant that the functions check with `assert!`).

use py2p_wire::{Compression, FrameDecoder, Limits, Message, WireError, HEADER_LEN};

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
