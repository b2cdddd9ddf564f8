//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! code (`py2p_testkit::wire`) on the stable toolchain, so every `cargo test` re-checks
//! the inputs the fuzzer found interesting without needing nightly or cargo-fuzz.
//!
//! The ignored test `regenerate_seed_corpus` rewrites the generated part of the corpus
//! (`seed-*` files); run it through `cargo xtask fuzz --seed-corpus`.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::PathBuf;

use py2p_testkit::corpus::{self, SeedFile};
use py2p_testkit::wire::{self as exercise, TARGETS};
use py2p_testkit::wire_seeds::seed_corpus;
use py2p_wire::{Compression, Message};

/// The files of one target's corpus, sorted by name.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    corpus::files(target).unwrap_or_else(|e| {
        panic!(
            "cannot read the fuzz corpus {}: {e}",
            corpus::root().join(target).display()
        )
    })
}

fn replay(target: &str) {
    let files = corpus_files(target);
    assert!(
        !files.is_empty(),
        "the fuzz corpus of `{target}` is empty; run `cargo xtask fuzz --seed-corpus`"
    );
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        // Name the input if it panics.
        eprintln!("replaying {}", path.display());
        assert!(exercise::run(target, &data), "unknown target {target}");
    }
    eprintln!("{target}: replayed {} inputs", files.len());
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder");
}

#[test]
fn decompress_corpus() {
    replay("decompress");
}

#[test]
fn every_target_has_a_corpus_folder() {
    for target in TARGETS {
        assert!(
            corpus::root().join(target).is_dir(),
            "missing fuzz/corpus/{target}"
        );
    }
}

/// The seed generator itself runs clean through the exercises, with unique names and
/// known targets (so regenerating never commits a crashing input).
#[test]
fn seed_corpus_is_sane() {
    let seeds = seed_corpus();
    let faults = corpus::seed_faults(&seeds, &TARGETS, 8192);
    assert!(faults.is_empty(), "{faults:#?}");
    for seed in &seeds {
        assert!(exercise::run(seed.target, &seed.data));
    }
    // The valid-frame seeds really decode, so the fuzzer starts from the success path.
    let valid: Vec<&SeedFile> = seeds
        .iter()
        .filter(|s| s.name.starts_with("seed-valid-"))
        .collect();
    assert_eq!(valid.len(), 1 + Compression::ALL.len());
    for seed in valid {
        // Byte 0 is the chunk-size count (0: push whole); the rest is one frame.
        let frame = seed
            .data
            .get(1..)
            .expect("a frame after the chunk-size count");
        let decoded =
            Message::decode_frame(frame, &Compression::PREFERENCE, &exercise::FUZZ_LIMITS);
        assert!(decoded.is_ok(), "{}: {decoded:?}", seed.name);
    }
    for target in TARGETS {
        let n = seeds.iter().filter(|s| s.target == target).count();
        assert!((10..=60).contains(&n), "{target}: {n} seeds");
    }
}

/// Rewrites `fuzz/corpus/<target>/seed-*` from [`seed_corpus`] when the
/// environment variable `PY2P_REGENERATE_FUZZ_CORPUS` is set (to any value; `cargo xtask
/// fuzz --seed-corpus` sets it to the corpus path). Inputs found by the fuzzer (not named
/// `seed-*`) are kept.
#[test]
#[ignore = "writes into fuzz/corpus; run via `cargo xtask fuzz --seed-corpus`"]
fn regenerate_seed_corpus() {
    corpus::regenerate_seeds_if_asked(&TARGETS, &seed_corpus()).expect("rewrite the seed files");
}

/// The seed check finds each kind of fault (so the corpus tests that rely on it check something).
#[test]
fn seed_faults_are_found() {
    let seed = |target: &'static str, name: &str, len: usize| SeedFile {
        target,
        name: name.to_owned(),
        data: vec![0; len],
    };
    let seeds = [
        seed("frame_decoder", "seed-a", 4),
        seed("frame_decoder", "seed-a", 4),
        seed("nowhere", "seed-b", 4),
        seed("decompress", "found-c", 4),
        seed("decompress", "seed-d", 9),
    ];
    let faults = corpus::seed_faults(&seeds, &TARGETS, 8);
    assert_eq!(faults.len(), 4, "{faults:#?}");
    assert!(corpus::seed_faults(&seeds[..1], &TARGETS, 8).is_empty());
}
