//! Message codec benchmarks (criterion), compared with py2p 0.5.607 by `cargo xtask bench`.
//!
//! Groups, each with one benchmark per payload size (`200B`, `64KiB`) and, for the first
//! two, per compression (`none`, `snappy`, `zlib`, `gzip`, `bz2`, `lzma`), e.g.
//! `encode/64KiB/zlib`:
//!
//! - `encode`: build a message `Message::new(b"\x00", sender, [b"\x00", payload], time)` and
//!   encode its frame, like py2p's `InternalMessage(...).string`;
//! - `decode`: `Message::decode_frame` of that frame with the compression negotiated
//!   (decompression and checksum included), like `InternalMessage.feed_string`;
//! - `floor`: what every message costs whatever the implementation: sha384 of the payload
//!   and the base-58 time (by `py2p_wire::digest`, as the codec hashes), then base-58 of the
//!   digest (the message id).
//! - `digest`: sha-384 of `n` messages (200 B of payload and the 7-byte base-58 time, each
//!   in two pieces) by `py2p_wire::digest::sha384_each` (four at a time on AVX2),
//!   `digest/each/{n}`, against a loop of `Sha384`, `digest/loop/{n}`, for n = 1, 2, 3, 4
//!   and 64; throughput in messages. Not in `cargo xtask bench`'s report: run with
//!   `cargo bench -p py2p-wire --bench codec -- digest/`.
//!
//! - `encode_size` and `decode_size`: the same as `encode` and `decode` against the payload
//!   size, 16 B to 1 MiB (`16B`, `256B`, `4KiB`, `64KiB`, `1MiB`), per compression, e.g.
//!   `decode_size/4KiB/snappy`; shorter measurements (flat sampling, 20 samples), as the
//!   large ones take milliseconds each.
//!
//! Payloads are deterministic (xorshift64), about half text-like words and half random
//! bytes, so compression has something to do. `interop/bench_reference.py` generates the
//! very same bytes for the Python side. Run with `cargo bench -p py2p-wire --bench codec`
//! (add `-- --warm-up-time 1 --measurement-time 2` for a quick run).

// A benchmark target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use py2p_wire::digest::{sha384_each, Sha384};
use py2p_wire::{base58, Compression, Limits, Message};

/// A sender id of realistic length (py2p ids are base-58 sha384 digests).
const SENDER: &[u8] = b"2GYdwPhgnAvHdrDozHeNL3JPHeMXpsK4j7i9MDgRg2oNbsHhaNWZGNkrSvvJotRa4KNQ6A";
/// Message timestamp (seconds since the epoch).
const TIME: u64 = 1_700_000_000;
/// Payload sizes: a typical small message and a large one.
const SIZES: [(&str, usize); 2] = [("200B", 200), ("64KiB", 64 * 1024)];
/// Payload sizes of the size curves (`encode_size`, `decode_size`).
const CURVE_SIZES: [(&str, usize); 5] = [
    ("16B", 16),
    ("256B", 256),
    ("4KiB", 4 << 10),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
];
/// Words of the text-like half of the payloads (same list in bench_reference.py).
const WORDS: [&str; 16] = [
    "peer",
    "message",
    "the",
    "of",
    "network",
    "broadcast",
    "py2p",
    "node",
    "whisper",
    "and",
    "compression",
    "to",
    "a",
    "socket",
    "handshake",
    "id",
];

/// Deterministic payload of `len` bytes: xorshift64 picks, per step, either a word plus a
/// space or 8 random bytes.
fn payload(len: usize) -> Vec<u8> {
    py2p_testkit::payload::words_and_noise(len, &WORDS)
}

/// `none` plus every compression, by name.
fn methods() -> Vec<(&'static str, Option<Compression>)> {
    std::iter::once(("none", None))
        .chain(
            Compression::PREFERENCE
                .into_iter()
                .map(|c| (c.name(), Some(c))),
        )
        .collect()
}

fn packets(size: usize) -> Vec<Vec<u8>> {
    vec![b"\x00".to_vec(), payload(size)]
}

fn batch_size(size: usize) -> BatchSize {
    if size > 4096 {
        BatchSize::LargeInput
    } else {
        BatchSize::SmallInput
    }
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Builds and encodes a message of each size with each compression, in `group`.
fn encode_sizes(mut group: Group<'_>, sizes: &[(&str, usize)]) {
    for &(size_name, size) in sizes {
        let packets = packets(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (method_name, method) in methods() {
            group.bench_function(BenchmarkId::new(size_name, method_name), |b| {
                b.iter_batched(
                    || packets.clone(),
                    |p| Message::new(b"\x00".to_vec(), SENDER.to_vec(), p, TIME).encode(method),
                    batch_size(size),
                )
            });
        }
    }
    group.finish();
}

/// Decodes a frame of each size with each compression, in `group`.
fn decode_sizes(mut group: Group<'_>, sizes: &[(&str, usize)]) {
    let limits = Limits::default();
    for &(size_name, size) in sizes {
        let msg = Message::new(b"\x00".to_vec(), SENDER.to_vec(), packets(size), TIME);
        group.throughput(Throughput::Bytes(size as u64));
        for (method_name, method) in methods() {
            let frame = msg.encode(method);
            let negotiated: Vec<Compression> = method.into_iter().collect();
            // The benchmark would be meaningless if the frame did not decode.
            assert_eq!(
                Message::decode_frame(&frame, &negotiated, &limits).as_ref(),
                Ok(&msg),
                "{size_name}/{method_name} does not round-trip"
            );
            group.bench_function(BenchmarkId::new(size_name, method_name), |b| {
                b.iter(|| Message::decode_frame(black_box(&frame), &negotiated, &limits))
            });
        }
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    encode_sizes(c.benchmark_group("encode"), &SIZES);
}

fn decode(c: &mut Criterion) {
    decode_sizes(c.benchmark_group("decode"), &SIZES);
}

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    let time_58 = base58::encode_u64(TIME);
    for (size_name, size) in SIZES {
        let packets = packets(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size_name), |b| {
            b.iter(|| {
                let packets = black_box(&packets);
                let len = packets.iter().map(Vec::len).sum::<usize>() + time_58.len();
                let mut hasher = Sha384::for_len(len);
                for p in packets {
                    hasher.update(p);
                }
                hasher.update(time_58.as_bytes());
                base58::encode_be_bytes(&hasher.finish())
            })
        });
    }
    group.finish();
}

fn digest(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest");
    let time_58 = base58::encode_u64(TIME);
    let long = payload(200 + 64);
    let payloads: Vec<&[u8]> = (0..64).map(|i| &long[i..i + 200]).collect();
    for n in [1, 2, 3, 4, 64] {
        let inputs = &payloads[..n];
        let mut out = Vec::with_capacity(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("each", n), |b| {
            b.iter(|| {
                out.clear();
                let inputs = black_box(inputs).iter().map(|p| [*p, time_58.as_bytes()]);
                sha384_each(inputs, &mut out);
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("loop", n), |b| {
            b.iter(|| {
                out.clear();
                for p in black_box(inputs) {
                    let mut h = Sha384::for_len(p.len() + time_58.len());
                    h.update(p);
                    h.update(time_58.as_bytes());
                    out.push(h.finish());
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// Settings of the size-curve groups: the 1 MiB cases take milliseconds per call.
fn curve_group<'a>(c: &'a mut Criterion, name: &str) -> Group<'a> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    group
}

fn encode_size(c: &mut Criterion) {
    encode_sizes(curve_group(c, "encode_size"), &CURVE_SIZES);
}

fn decode_size(c: &mut Criterion) {
    decode_sizes(curve_group(c, "decode_size"), &CURVE_SIZES);
}

// What `criterion_group!`/`criterion_main!` expand to, minus an undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    encode(&mut c);
    decode(&mut c);
    floor(&mut c);
    digest(&mut c);
    encode_size(&mut c);
    decode_size(&mut c);
    c.final_summary();
}
