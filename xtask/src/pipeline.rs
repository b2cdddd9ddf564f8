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

    let total = steps.len();
    let mut python: Option<PathBuf> = None;
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        println!();
        println!("==> [{}/{total}] {}", i + 1, step.name);
        let (result, elapsed) = util::timed(|| run_step(&step.action, &mut python));
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
    Ok(())
}

fn run_step(action: &Action, python: &mut Option<PathBuf>) -> Result<()> {
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
            "--",
            "-D",
            "warnings",
        ])),
        Action::Test => {
            let py = venv_python()?;
            util::run(
                util::cargo()
                    .args(["test", "--workspace"])
                    .env("PY2P_PYTHON", &py)
                    .env("PY2P_INTEROP", "required"),
            )
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
