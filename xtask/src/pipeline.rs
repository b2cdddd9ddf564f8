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
    /// `scripts/module_cycles.py` over every crate: no module imports one that imports it back.
    Circles,
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
        steps.push(Step {
            name: "no import circles",
            action: Action::Circles,
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
        Action::Circles => {
            let root = util::repo_root();
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
                .map_err(|e| err!("cannot list crates/: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("Cargo.toml").exists())
                .collect();
            dirs.sort();
            dirs.push(root.join("xtask"));
            util::run(&mut circles_check(&dirs))
        }
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

/// `scripts/module_cycles.py` over `dirs` (crate roots): fails when a module imports one that
/// imports it back.
fn circles_check(dirs: &[PathBuf]) -> Command {
    let root = util::repo_root();
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("scripts").join("module_cycles.py"))
        .args(dirs)
        .current_dir(&root);
    cmd
}

#[cfg(test)]
mod circle_tests {
    use super::*;

    /// A crate of two modules in `dir`; `b` imports `a` back when `circle`.
    fn two_modules(dir: &std::path::Path, circle: bool) -> PathBuf {
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"demo\"\n").unwrap();
        std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
        std::fs::write(src.join("a.rs"), "use crate::b::X;\npub struct Y(X);\n").unwrap();
        let b = if circle {
            "use crate::a::Y;\npub struct X;\npub fn f(_: Y) {}\n"
        } else {
            "pub struct X;\n"
        };
        std::fs::write(src.join("b.rs"), b).unwrap();
        dir.to_path_buf()
    }

    #[test]
    fn the_circles_step_fails_on_a_circle_and_passes_without() {
        let base = util::target_dir().join("tmp").join("circle-check");
        let _ = std::fs::remove_dir_all(&base);
        let with = two_modules(&base.join("with"), true);
        let without = two_modules(&base.join("without"), false);
        assert!(!util::succeeds(&mut circles_check(&[with])));
        assert!(util::succeeds(&mut circles_check(&[without])));
        let _ = std::fs::remove_dir_all(&base);
    }
}
