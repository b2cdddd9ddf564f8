//! `cargo xtask venv`: the Python virtual environment holding the reference
//! implementation (py2p 0.5.607) used by interop tests and benchmarks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::err;
use crate::util::{self, Context, Result};

/// Where the venv lives, relative to the repository root.
pub const VENV_DIR: &str = "target/interop-venv";
/// The requirements file installed into the venv, relative to the repository root.
pub const REQUIREMENTS: &str = "interop/requirements.txt";
/// Stamp file (inside the venv) recording which requirements were installed.
const STAMP: &str = ".xtask-requirements-stamp";

/// Ensures the venv exists and has `interop/requirements.txt` installed;
/// returns the path of the venv's Python interpreter.
///
/// Idempotent: pip only runs when the requirements file changed since the
/// last successful install (tracked by a hash stored in the venv).
pub fn ensure() -> Result<PathBuf> {
    let root = util::repo_root();
    let venv = root.join(VENV_DIR);
    let python = venv.join("bin").join("python");
    let requirements_path = root.join(REQUIREMENTS);
    let requirements = fs::read(&requirements_path).context(format_args!(
        "cannot read {} (it lists the Python packages of the interop venv)",
        requirements_path.display()
    ))?;
    let wanted_stamp = format!(
        "requirements-fnv1a64={:016x}\n",
        util::fnv1a64(&requirements)
    );

    if venv.exists() && !util::succeeds(Command::new(&python).arg("--version")) {
        println!(
            "venv at {} is broken (its python does not run); recreating it",
            venv.display()
        );
        fs::remove_dir_all(&venv).context(format_args!("cannot remove {}", venv.display()))?;
    }
    if !venv.exists() {
        create(&venv)?;
    }

    let stamp_path = venv.join(STAMP);
    let current_stamp = fs::read_to_string(&stamp_path).unwrap_or_default();
    if current_stamp == wanted_stamp {
        println!("venv up to date ({REQUIREMENTS} unchanged)");
    } else {
        // Invalidate first: a failed install must not leave a valid stamp.
        let _ = fs::remove_file(&stamp_path);
        pip_install(&python, &requirements_path)?;
        fs::write(&stamp_path, &wanted_stamp)
            .context(format_args!("cannot write {}", stamp_path.display()))?;
    }
    Ok(python)
}

/// The interpreter that makes the venv: `python3.11` when present (py2p's SSL mode calls
/// `ssl.wrap_socket`, gone in Python 3.12), else `python3`.
fn base_python() -> &'static str {
    if util::succeeds(Command::new("python3.11").arg("--version")) {
        "python3.11"
    } else {
        "python3"
    }
}

fn create(venv: &Path) -> Result<()> {
    let python3 = base_python();
    if !util::succeeds(Command::new(python3).arg("--version")) {
        return Err(err!(
            "python3 not found in PATH: it is needed to create the interop venv at {}",
            venv.display()
        ));
    }
    if let Some(parent) = venv.parent() {
        fs::create_dir_all(parent).context(format_args!("cannot create {}", parent.display()))?;
    }
    util::run(Command::new(python3).arg("-m").arg("venv").arg(venv)).map_err(|e| {
        // A half-created venv would be mistaken for a working one next time.
        let _ = fs::remove_dir_all(venv);
        err!("{e}\n(on Debian/Ubuntu `python3 -m venv` needs the python3-venv package)")
    })
}

fn pip_install(python: &Path, requirements: &Path) -> Result<()> {
    let pip = || {
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(requirements)
        .current_dir(util::repo_root());
        cmd
    };
    // One retry: a transient network error should not fail a whole CI run.
    match util::run(&mut pip()) {
        Ok(()) => Ok(()),
        Err(first) => {
            eprintln!("pip install failed ({first}); retrying once");
            util::run(&mut pip())
        }
    }
}

/// `cargo xtask venv`: ensures the venv and prints its interpreter path.
pub fn cmd() -> Result<()> {
    let python = ensure()?;
    println!("{}", python.display());
    Ok(())
}
