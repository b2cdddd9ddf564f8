//! Replays the committed corpus of the node fuzz targets (`fuzz/corpus/mesh_node/` and
//! `fuzz/corpus/sync_node/`) through their code (`py2p_sim::exercise`) on the stable
//! toolchain: every input runs a whole simulated script against a real node, with the
//! exercise's checks. The corpus as a whole must reach every handler path of the node, so
//! the test fails if the exercise stops reaching the node's handlers.
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

use py2p_sim::exercise::{self, Reached, TARGETS};
use py2p_testkit::corpus::{self, SeedFile};

/// The node targets' generated seeds, as the test kit's corpus functions take them.
fn seed_corpus() -> Vec<SeedFile> {
    exercise::seed_corpus()
        .into_iter()
        .map(|s| SeedFile {
            target: s.target,
            name: s.name,
            data: s.data,
        })
        .collect()
}

/// The files of one target's corpus, sorted by name.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    corpus::files(target).unwrap_or_else(|e| {
        panic!(
            "cannot read the fuzz corpus {}: {e}",
            corpus::root().join(target).display()
        )
    })
}

fn replay(target: &str) -> Reached {
    let files = corpus_files(target);
    assert!(
        !files.is_empty(),
        "the fuzz corpus of `{target}` is empty; run `cargo xtask fuzz --seed-corpus`"
    );
    let mut total = Reached::default();
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        // Name the input if it panics.
        eprintln!("replaying {}", path.display());
        let reached = exercise::run(target, &data).expect("a known target");
        total.merge(&reached);
    }
    eprintln!(
        "{target}: replayed {} inputs, {} operations",
        files.len(),
        total.ops
    );
    for (path, n) in &total.paths {
        eprintln!("    {path:<28} {n}");
    }
    total
}

/// Handler paths only a sync node has.
const SYNC_ONLY: [&str; 6] = [
    "store",
    "store-applied",
    "store-refused",
    "store-table-full",
    "store-already-held",
    "store-malformed",
];

#[test]
fn mesh_node_corpus() {
    let reached = replay("mesh_node");
    assert!(reached.count("handshake") > 0);
    assert_eq!(reached.count("store"), 0, "a mesh node has no sync table");
    let missing: Vec<&str> = reached
        .missing()
        .into_iter()
        .filter(|p| !SYNC_ONLY.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "the mesh_node corpus never reaches these handler paths: {missing:?}"
    );
}

#[test]
fn sync_node_corpus() {
    let reached = replay("sync_node");
    for path in SYNC_ONLY {
        assert!(
            reached.paths.contains_key(path),
            "a sync node does not count `{path}`"
        );
    }
    let missing = reached.missing();
    assert!(
        missing.is_empty(),
        "the sync_node corpus never reaches these handler paths: {missing:?}"
    );
}

/// The seed generator: unique names, known targets, small inputs that run clean.
#[test]
fn seed_corpus_is_sane() {
    let seeds = seed_corpus();
    let faults = corpus::seed_faults(&seeds, &TARGETS, 1024);
    assert!(faults.is_empty(), "{faults:#?}");
    for target in TARGETS {
        let n = seeds.iter().filter(|s| s.target == target).count();
        assert!((20..=200).contains(&n), "{target}: {n} seeds");
    }
}

/// Rewrites `fuzz/corpus/<target>/seed-*` of the node targets from
/// [`exercise::seed_corpus`] when `PY2P_REGENERATE_FUZZ_CORPUS` is set (`cargo xtask fuzz
/// --seed-corpus` sets it). Inputs found by the fuzzer (not named `seed-*`) are kept.
#[test]
#[ignore = "writes into fuzz/corpus; run via `cargo xtask fuzz --seed-corpus`"]
fn regenerate_seed_corpus() {
    corpus::regenerate_seeds_if_asked(&TARGETS, &seed_corpus()).expect("rewrite the seed files");
}

/// Runs one input file (`PY2P_FUZZ_INPUT=path`, target `PY2P_FUZZ_TARGET`, default
/// `mesh_node`) through the exercise on stable, e.g. a crash the fuzzer wrote, to debug it.
#[test]
#[ignore = "runs the file named by PY2P_FUZZ_INPUT"]
fn replay_one_input() {
    let Some(path) = std::env::var_os("PY2P_FUZZ_INPUT") else {
        eprintln!("PY2P_FUZZ_INPUT is not set: nothing to run");
        return;
    };
    let target = std::env::var("PY2P_FUZZ_TARGET").unwrap_or_else(|_| "mesh_node".into());
    let data = fs::read(&path).expect("a readable input");
    let reached = exercise::run(&target, &data).expect("a known target");
    eprintln!("{reached:?}");
}

// ----- regressions: inputs the fuzzer found, minimised -----

/// A broadcast, then the same payload (sender, time) sent as a whisper: the user got the
/// broadcast twice, the second copy labelled a broadcast although no de-duplication saw it.
/// Messages sent to one node are whispers whatever their sub-flag says.
#[test]
fn regression_whisper_with_broadcast_subflag() {
    // setup; Broadcast (default arguments); Broadcast with message type "the other" (whisper).
    exercise::mesh_node(&[0x1f, 0x10, 0x01, 0x00, 0x01, 0x03, 0x09, 0x00, 0x7e]);
}

/// A joining peer's copy of a key stamped near `u64::MAX`, then the node's user stores the
/// same key: the refusal computed the lease's end as `time + 3600` and overflowed (a panic
/// on the event loop in debug builds, a wrapped `until` in release ones).
#[test]
fn regression_lease_end_of_a_far_future_key() {
    // setup (leasing); Handshake; Store [key a, joiner copy, time u64::MAX]; NodeUser [set a].
    exercise::sync_node(&[
        0x1f, 0x00, 0x00, 0x00, 0x08, 0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, 0x00, 0x0e, 0x02,
        0x02, 0x00,
    ]);
}

/// A peers list naming the honest node's address under two other ids: the node dials it
/// twice, and the honest node, seeing the two handshakes in the other order, kept the other
/// connection of the two; after the conflict grace each end closed the one the other kept,
/// and the link was down until a redial (a broadcast in between was lost). Now the end that
/// accepted both leaves the choice to the one that dialled them.
#[test]
fn regression_two_dials_to_one_peer() {
    // setup (seed 8); Handshake; Peers [two entries: the honest node's address, ids peer-2
    // and "x"].
    let input = [
        0x1f, 0x20, 0x00, 0x00, 0x03, 0x09, 0x00, 0x02, 0x03, 0x06, 0x00, 0x03, 0x07, 0x01, 0x78,
        0x00,
    ];
    exercise::mesh_node(&input);
    exercise::sync_node(&input);
}
