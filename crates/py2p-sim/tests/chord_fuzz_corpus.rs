//! Replays the committed corpus of the `chord_node` fuzz target (`fuzz/corpus/chord_node/`)
//! through its code (`py2p_sim::chord_exercise::chord_node`) on the stable toolchain, with
//! the exercise's checks; the corpus as a whole must reach every outcome of a chord message
//! (stored, forwarded, refused, answered, malformed, ...).

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;

use py2p_sim::chord_exercise::chord_node;
use py2p_sim::exercise::Reached;
use py2p_testkit::corpus;

#[test]
fn the_chord_node_corpus_replays_and_reaches_every_outcome() {
    let files = corpus::files("chord_node").expect("the chord_node corpus");
    assert!(!files.is_empty(), "the chord_node corpus is empty");
    let mut total = Reached::default();
    for path in &files {
        let data = fs::read(path).unwrap();
        eprintln!("replaying {}", path.display());
        total.merge(&chord_node(&data));
    }
    for (name, n) in &total.paths {
        eprintln!("    {name:<20} {n}");
    }
    assert!(total.ops > 0);
    assert!(
        total.missing().is_empty(),
        "chord outcomes never reached: {:?}",
        total.missing()
    );
    assert_eq!(total.paths.len(), 9, "{:?}", total.paths);
}
