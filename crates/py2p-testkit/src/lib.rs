//! Test support for py2p-rs (not published): the bodies of the wire fuzz targets, their
//! seed corpus, and reading and rewriting the committed corpus under `fuzz/corpus`.
//!
//! The cargo-fuzz targets in `fuzz/` call [`wire`]; this crate's `tests/wire_corpus.rs`
//! replays the committed corpus through the same code on stable; `py2p`'s node-target corpus
//! test uses [`corpus`]. The user crates (`py2p-wire`, `py2p`) do not depend on it.

pub mod corpus;
pub mod wire;
pub mod wire_seeds;
