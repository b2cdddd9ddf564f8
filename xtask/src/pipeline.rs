//! `cargo xtask test` (and its alias `cargo xtask ci`): the project's one
//! test command, run by `.ci/run`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::err;
use crate::util::{self, Result};
use crate::venv;

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TestArgs {
    /// Skip the lint steps (`cargo fmt --check` and `cargo clippy`).
    #[arg(long)]
    pub no_lint: bool,
    /// Same as `--no-lint`: only build and run the tests.
    #[arg(long)]
    pub quick: bool,
}

/// What a step runs.
enum Action {
    /// Create/refresh the interop venv (sets the interpreter path for later steps).
    Venv,
    /// `cargo fmt --all -- --check`.
    Fmt,
    /// `cargo clippy --workspace --all-targets -- -D warnings`.
    Clippy,
    /// `cargo test --workspace` against the real py2p.
    Test,
    /// Build the CLI and run `interop/crosscheck.py` with it.
    Crosscheck,
    /// The user crates' docs: every public item documented, no test machinery (`cargo xtask api`).
    Api,
    /// Build the `py2p_rs` wheel and run py2p's own suite and the bindings' tests on it.
    Python,
}

struct Step {
    name: &'static str,
    action: Action,
}

/// Runs the test pipeline, stopping at the first failing step.
pub fn run(args: &TestArgs) -> Result<()> {
    let root = util::repo_root();
    let lint = !(args.no_lint || args.quick);
    let crosscheck = root.join("interop").join("crosscheck.py");

    let mut steps = vec![Step {
        name: "python venv (py2p reference)",
        action: Action::Venv,
    }];
    if lint {
        steps.push(Step {
            name: "cargo fmt --check",
            action: Action::Fmt,
        });
        steps.push(Step {
            name: "cargo clippy -D warnings",
            action: Action::Clippy,
        });
        steps.push(Step {
            name: "public API (cargo doc)",
            action: Action::Api,
        });
    }
    steps.push(Step {
        name: "cargo test --workspace",
        action: Action::Test,
    });
    if crosscheck.exists() {
        steps.push(Step {
            name: "interop crosscheck",
            action: Action::Crosscheck,
        });
    }

    steps.push(Step {
        name: "python bindings (py2p's suite)",
        action: Action::Python,
    });

    let total = steps.len();
    let mut python: Option<PathBuf> = None;
    let mut tally = Tally::default();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        println!();
        println!("==> [{}/{total}] {}", i + 1, step.name);
        let (result, elapsed) = util::timed(|| run_step(&step.action, &mut python, &mut tally));
        timings.push((step.name, elapsed));
        match result {
            Ok(()) => println!(
                "==> [{}/{total}] {}: ok ({})",
                i + 1,
                step.name,
                util::fmt_elapsed(elapsed)
            ),
            Err(e) => {
                println!(
                    "==> [{}/{total}] {}: FAILED ({})",
                    i + 1,
                    step.name,
                    util::fmt_elapsed(elapsed)
                );
                return Err(err!("step {}/{total} `{}` failed: {e}", i + 1, step.name));
            }
        }
    }

    println!();
    println!("==> all {total} steps passed");
    for (name, elapsed) in &timings {
        println!("    {:<32} {:>8}", name, util::fmt_elapsed(*elapsed));
    }
    if !lint {
        println!("    (lint steps skipped)");
    }
    // The closing line: the totals of every `cargo test` binary and doctest run, and of
    // the Python bindings' pytest runs.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    Ok(())
}

/// Totals of the `test result:` lines printed by `cargo test`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds the counts of a line like
    /// `test result: ok. 24 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

fn run_step(action: &Action, python: &mut Option<PathBuf>, tally: &mut Tally) -> Result<()> {
    let venv_python = || {
        python
            .clone()
            .ok_or_else(|| err!("internal error: the venv step did not run"))
    };
    match action {
        Action::Venv => {
            let path = venv::ensure()?;
            println!("venv python: {}", path.display());
            *python = Some(path);
            Ok(())
        }
        Action::Fmt => util::run(util::cargo().args(["fmt", "--all", "--", "--check"])),
        Action::Clippy => util::run(util::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            // Also the async face and its example (crates/py2p/examples/tokio_node.rs).
            "--features",
            "py2p/tokio",
            "--",
            "-D",
            "warnings",
        ])),
        Action::Test => {
            let py = venv_python()?;
            util::run_streaming(
                util::cargo()
                    // The tokio feature too: its example runs as a test (tests/examples.rs).
                    .args(["test", "--workspace", "--features", "py2p/tokio"])
                    .env("PY2P_PYTHON", &py)
                    .env("PY2P_INTEROP", "required"),
                |line| tally.add_line(line),
            )
        }
        Action::Api => crate::api::run(),
        Action::Python => {
            let counts = crate::python::test(&venv_python()?)?;
            tally.passed += counts.passed;
            tally.failed += counts.failed;
            tally.ignored += counts.skipped;
            Ok(())
        }
        Action::Crosscheck => {
            let py = venv_python()?;
            util::run(util::cargo().args(["build", "-p", "py2p-cli"]))?;
            let root = util::repo_root();
            let bin = util::target_dir().join("debug").join("py2p");
            if !bin.exists() {
                return Err(err!(
                    "`cargo build -p py2p-cli` did not produce {}",
                    bin.display()
                ));
            }
            util::run(
                Command::new(&py)
                    .arg("interop/crosscheck.py")
                    .arg("--bin")
                    .arg(&bin)
                    .current_dir(&root),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_cargo_test_results() {
        let mut t = Tally::default();
        t.add_line("test result: ok. 24 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 4.02s");
        t.add_line("test result: FAILED. 2 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 10.36s");
        t.add_line("running 5 tests");
        t.add_line("test foo ... ok");
        assert_eq!(
            t,
            Tally {
                passed: 26,
                failed: 2,
                ignored: 1
            }
        );
    }
}
