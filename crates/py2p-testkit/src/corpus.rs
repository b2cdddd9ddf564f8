//! The committed fuzz corpus, `fuzz/corpus/<target>/`: reading it for the replay tests
//! (of this crate's wire targets and of `py2p`'s node targets, which share the folder) and
//! rewriting its generated part (`seed-*` files, `cargo xtask fuzz --seed-corpus`).
//!
//! The paths are this repository's: this crate is not published.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

/// The ignored `regenerate_seed_corpus` tests: when `PY2P_REGENERATE_FUZZ_CORPUS` is set (to
/// any value; `cargo xtask fuzz --seed-corpus` sets it to the corpus path), rewrites the seed
/// files of `targets` with [`rewrite_seeds`] and says how many; otherwise writes nothing.
pub fn regenerate_seeds_if_asked(targets: &[&str], seeds: &[SeedFile]) -> io::Result<()> {
    if std::env::var_os("PY2P_REGENERATE_FUZZ_CORPUS").is_none() {
        eprintln!("PY2P_REGENERATE_FUZZ_CORPUS is not set: nothing written");
        return Ok(());
    }
    let written = rewrite_seeds(targets, seeds)?;
    eprintln!("wrote {written} seed files under {}", root().display());
    Ok(())
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

/// One file of the seed corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    /// The fuzz target (corpus folder) it belongs to: one of the targets of its generator (e.g. [`crate::wire::TARGETS`]).
    pub target: &'static str,
    /// File name (starts with `seed-`, which marks generated files).
    pub name: String,
    /// File content.
    pub data: Vec<u8>,
}

/// Prefix of the names of generated seed files.
pub const SEED_PREFIX: &str = "seed-";
