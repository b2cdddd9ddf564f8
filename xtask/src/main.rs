//! Project automation for py2p-rs, run as `cargo xtask <command>`
//! (the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask test` (alias `ci`): venv, fmt, clippy, tests against the
//!   real py2p, CLI crosscheck — the one command CI runs.
//! - `cargo xtask venv`: the Python venv with py2p 0.5.607.
//! - `cargo xtask fuzz`: cargo-fuzz targets on nightly; `--seed-corpus`
//!   regenerates the committed seed corpus.
//! - `cargo xtask bench`: criterion benchmarks vs the Python reference,
//!   written to `docs/performance.md`.
//! - `cargo xtask api`: the user crates' docs document every public item and show no
//!   test machinery (run by `test` with the lint steps).
//! - `cargo xtask sim`: the deterministic network simulator on many seeds of
//!   every scenario; `--seed S` replays one run exactly.
//! - `cargo xtask soak`: real nodes on loopback (15 `py2p mesh` and one py2p 0.5.607)
//!   with random traffic and restarts for `--minutes M`; accounts for every broadcast,
//!   memory and logged errors (target/soak/report.md; `--write-docs` for
//!   docs/reliability.md).

// Project automation, not library code: a broken invariant here may panic (the deny lists
// of [workspace.lints.clippy] are for the library crates).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod api;
mod bench;
mod fuzz;
mod pipeline;
mod python;
mod sim;
mod soak;
mod util;
mod venv;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation for py2p-rs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The xtask subcommands.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Ensure the Python venv (target/interop-venv) with interop/requirements.txt; print its python.
    Venv,
    /// Run the project's test pipeline: venv, fmt, clippy, cargo test, interop crosscheck.
    Test(pipeline::TestArgs),
    /// Same as `test` (what .ci/run executes).
    Ci(pipeline::TestArgs),
    /// Run the cargo-fuzz targets (nightly), or regenerate the seed corpus.
    Fuzz(fuzz::FuzzArgs),
    /// Run the codec benchmarks and the py2p reference; write docs/performance.md.
    Bench(bench::BenchArgs),
    /// Run the network simulator's scenarios on many seeds (or replay one) and sum up.
    Sim(sim::SimArgs),
    /// Run real nodes (Rust and py2p) on loopback with traffic and restarts; account for every message.
    Soak(soak::SoakArgs),
    /// Build the py2p_rs wheel into the venv and run py2p's own suite and the bindings' tests.
    Python,
    /// Check that the docs of py2p and py2p-wire document every public item and list no
    /// simulator, internals or exercises.
    Api,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Venv => venv::cmd(),
        Cmd::Test(args) | Cmd::Ci(args) => pipeline::run(args),
        Cmd::Fuzz(args) => fuzz::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Sim(args) => sim::run(args),
        Cmd::Soak(args) => soak::run(args),
        Cmd::Python => venv::ensure().and_then(|py| python::test(&py)).map(|_| ()),
        Cmd::Api => api::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
