//! The Python bindings' step of `cargo xtask test`: builds the `py2p_rs` wheel
//! (crates/py2p-python) with maturin, installs it into the interop venv, and runs py2p
//! 0.5.607's own test suite and the bindings' tests against it under pytest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::err;
use crate::util::{self, Context, Result};

/// The bindings' crate, relative to the repository root.
const CRATE: &str = "crates/py2p-python";

/// Counts from pytest's closing line (`== 13 passed, 6 xfailed in 74.2s ==`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed or errored (an unexpected pass of a strict xfail included).
    pub failed: u64,
    /// Tests skipped or failing as expected (with the reason pytest printed).
    pub skipped: u64,
}

impl Counts {
    /// Adds the counts of a pytest closing line; other lines are ignored.
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim().trim_matches('=').trim();
        if !line.starts_with(|c: char| c.is_ascii_digit()) || !line.contains(" in ") {
            return;
        }
        let counts = line.split(" in ").next().unwrap_or_default();
        for part in counts.split(',') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" | "error" | "errors" => self.failed += n,
                "skipped" | "xfailed" | "deselected" => self.skipped += n,
                _ => {}
            }
        }
    }
}

/// Builds the wheel into `target/wheels/py2p_rs-<profile>/` with the venv's maturin and
/// returns its path. `profile` is a cargo profile: `dev` for tests (it reuses what
/// `cargo test` built), `release` for benchmarks.
pub fn build_wheel(python: &Path, profile: &str) -> Result<PathBuf> {
    let root = util::repo_root();
    let out = util::target_dir()
        .join("wheels")
        .join(format!("py2p_rs-{profile}"));
    let _ = fs::remove_dir_all(&out);
    let maturin = python.with_file_name("maturin");
    util::run(
        Command::new(&maturin)
            // The wheel is for this machine's venv: it may link the system's libcrypto
            // (py2p-wire's `openssl` feature) instead of carrying a copy, which would need
            // patchelf to repair it for manylinux.
            .args([
                "build",
                "--auditwheel",
                "skip",
                "--profile",
                profile,
                "--interpreter",
            ])
            .arg(python)
            .arg("--out")
            .arg(&out)
            .arg("--manifest-path")
            .arg(root.join(CRATE).join("Cargo.toml"))
            .current_dir(&root),
    )?;
    let wheel = fs::read_dir(&out)
        .context(format_args!("cannot read {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| err!("maturin left no wheel in {}", out.display()))?;
    Ok(wheel)
}

/// Installs `wheel` into the venv of `python`, replacing any earlier build.
pub fn install_wheel(python: &Path, wheel: &Path) -> Result<()> {
    util::run(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "--force-reinstall",
            ])
            .arg(wheel),
    )
}

/// Runs pytest through `cmd`, adding its closing line to `counts`; pytest's exit code 5
/// (no test collected) is a failure like any other non-zero code.
fn pytest(cmd: &mut Command, counts: &mut Counts) -> Result<()> {
    util::run_streaming(cmd, |line| counts.add_line(line))
}

/// The whole step: wheel (dev profile), install, py2p's suite, the bindings' tests.
pub fn test(python: &Path) -> Result<Counts> {
    let root = util::repo_root();
    let wheel = build_wheel(python, "dev")?;
    install_wheel(python, &wheel)?;
    let tests = root.join(CRATE).join("tests");
    let mut counts = Counts::default();
    let suite = pytest(
        Command::new(python)
            .arg(tests.join("run_py2p_suite.py"))
            .arg("--out")
            .arg(util::target_dir().join("py2p-suite"))
            .current_dir(&root),
        &mut counts,
    );
    let own = pytest(
        Command::new(python)
            .args([
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "-rxXfE",
                "--tb=native",
            ])
            .arg(&tests)
            .current_dir(&tests),
        &mut counts,
    );
    suite.and(own)?;
    println!(
        "python: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytest_closing_lines() {
        let mut c = Counts::default();
        c.add_line("==== 2 failed, 13 passed, 6 xfailed, 2 warnings in 74.23s (0:01:14) ====");
        c.add_line("21 passed in 1.68s");
        c.add_line("test_mesh.py::test_x passed in the end");
        c.add_line("1 error in 0.2s");
        assert_eq!(
            c,
            Counts {
                passed: 34,
                failed: 3,
                skipped: 6
            }
        );
    }
}
