//! Test support for py2p-rs (not published): the bodies of the wire fuzz targets, their
//! seed corpus, reading and rewriting the committed corpus under `fuzz/corpus`, and the
//! project's one seeded generator, [`Rng`] (the simulator, the soak, the hostile tests), the
//! codec benchmarks' [`payload`]s, and length-prefixed [`frame`]s for raw-byte tests.
//!
//! The cargo-fuzz targets in `fuzz/` call [`wire`]; this crate's `tests/wire_corpus.rs`
//! replays the committed corpus through the same code on stable; `py2p-sim`'s node-target corpus
//! tests use [`corpus`]. The user crates (`py2p-wire`, `py2p`) do not depend on it.

pub mod corpus;
pub mod frame;
pub mod payload;
mod rng;
#[cfg(feature = "wire")]
pub mod wire;
#[cfg(feature = "wire")]
pub mod wire_seeds;

pub use self::rng::Rng;
