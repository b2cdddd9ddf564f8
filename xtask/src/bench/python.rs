//! The `python` section of `cargo xtask bench`: the same Python program (two nodes in one
//! process, N broadcasts, a handler counting them) on py2p 0.5.607 and on `py2p_rs` (the
//! bindings of crates/py2p-python, built with `--release`).
//! The program is `crates/py2p-python/bench/bench_python.py`.
//!
//! Checked: every run must count every message (the program fails otherwise), and the
//! section fails when `py2p_rs` is under [`TARGET_RATIO`] times py2p's rate.

use std::path::Path;
use std::process::Command;

use super::{BenchArgs, Section};
use crate::json::{self, Value};
use crate::util::{self, Context, Result};
use crate::{err, python, venv};

/// What the bindings must reach, in messages per second, against py2p.
const TARGET_RATIO: f64 = 20.0;
/// The benchmark program, relative to the repository root.
const PROGRAM: &str = "crates/py2p-python/bench/bench_python.py";

/// One implementation's results.
struct Measured {
    messages: u64,
    best: f64,
    runs: Vec<f64>,
}

fn measure(py: &Path, implementation: &str, args: &BenchArgs) -> Result<Measured> {
    let out = util::target_dir().join(format!("bench-python-{implementation}.json"));
    if !args.no_run {
        let (messages, runs) = if args.quick {
            ("5000", "1")
        } else {
            ("20000", "3")
        };
        util::run(
            Command::new(py)
                .arg(PROGRAM)
                .args([
                    "--impl",
                    implementation,
                    "--messages",
                    messages,
                    "--runs",
                    runs,
                ])
                .arg("--json")
                .arg(&out)
                .current_dir(util::repo_root()),
        )?;
    }
    let text = std::fs::read_to_string(&out).context(format_args!(
        "cannot read {} (made by `cargo xtask bench --only python`)",
        out.display()
    ))?;
    let v = json::parse(&text)?;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let runs = match v.get("runs") {
        Some(Value::Array(runs)) => runs.iter().filter_map(|r| num(r, "msgs_per_sec")).collect(),
        _ => Vec::new(),
    };
    Ok(Measured {
        messages: num(&v, "messages").unwrap_or(0.0) as u64,
        best: num(&v, "best_msgs_per_sec")
            .ok_or_else(|| err!("{}: no best_msgs_per_sec", out.display()))?,
        runs,
    })
}

/// Produces the section (building the release wheel and running both unless `--no-run`).
pub fn section(args: &BenchArgs) -> Result<Section> {
    let py = venv::ensure()?;
    if !args.no_run {
        let wheel = python::build_wheel(&py, "release")?;
        python::install_wheel(&py, &wheel)?;
    }
    let ours = measure(&py, "py2p_rs", args)?;
    let reference = if args.no_python {
        None
    } else {
        Some(measure(&py, "py2p", args)?)
    };
    let ratio = reference.as_ref().map(|r| ours.best / r.best);
    let mut md = String::from("## From Python: py2p_rs vs py2p 0.5.607\n\n");
    md.push_str(
        "One Python program (`crates/py2p-python/bench/bench_python.py`) run on each \
         package: two nodes in one process on loopback, one broadcasts N 64-byte messages \
         in a loop, the other counts them in a Python handler (`register_handler`); the \
         time runs from the first `send` to the handler seeing the last message. py2p_rs \
         is the release wheel of crates/py2p-python (its event loops take the GIL only to \
         call the handler). Best of the runs; every run counted every message.\n\n",
    );
    md.push_str("| package | messages | msg/s (best) | runs (msg/s) |\n|---|---:|---:|---|\n");
    let runs = |m: &Measured| {
        m.runs
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    md.push_str(&format!(
        "| py2p_rs | {} | {:.0} | {} |\n",
        ours.messages,
        ours.best,
        runs(&ours)
    ));
    if let Some(r) = &reference {
        md.push_str(&format!(
            "| py2p 0.5.607 | {} | {:.0} | {} |\n",
            r.messages,
            r.best,
            runs(r)
        ));
    }
    let failure = match ratio {
        Some(x) => {
            md.push_str(&format!(
                "\npy2p_rs / py2p: **{x:.1}×** the messages per second (target: at least \
                 {TARGET_RATIO:.0}×).\n"
            ));
            (x < TARGET_RATIO).then(|| {
                format!("py2p_rs reached {x:.1}x py2p's messages per second, under the {TARGET_RATIO:.0}x target")
            })
        }
        None => {
            md.push_str("\npy2p not run (`--no-python`).\n");
            None
        }
    };
    Ok(Section {
        id: "python",
        markdown: md,
        failure,
    })
}
