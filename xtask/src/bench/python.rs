//! The `python` section of `cargo xtask bench`: the same Python program (two nodes in one
//! process, N broadcasts, a handler counting them) on py2p 0.5.607 and on `py2p_rs` (the
//! bindings of crates/py2p-python, built with `--release`).
//! The program is `crates/py2p-python/bench/bench_python.py`.
//!
//! Checked: every run must count every message (the program fails otherwise), and the
//! section fails when `py2p_rs` is under [`TARGET_RATIO`] times py2p's rate.

use std::path::Path;
use std::process::Command;

use super::common::{BenchArgs, Section};
use crate::util::{self, Context, Result};
use crate::{err, python, venv};
use serde_json::Value;

/// What the bindings must reach, in messages per second, against py2p.
const TARGET_RATIO: f64 = 20.0;
/// The benchmark program, relative to the repository root.
const PROGRAM: &str = "crates/py2p-python/bench/bench_python.py";

/// Messages per run: the same for both packages (py2p loses messages in some runs of
/// larger bursts; see the network section), and a longer run of py2p_rs alone.
const SAME_N: u64 = 500;
const LONG_N: u64 = 20_000;

/// One implementation's results at one N.
struct Measured {
    label: &'static str,
    messages: u64,
    best: Option<f64>,
    runs: Vec<Option<f64>>,
}

fn measure(
    py: &Path,
    implementation: &str,
    label: &'static str,
    n: u64,
    args: &BenchArgs,
) -> Result<Measured> {
    let out = util::target_dir().join(format!("bench-python-{implementation}-{n}.json"));
    if !args.no_run {
        let runs = if args.quick { "1" } else { "5" };
        util::run(
            Command::new(py)
                .arg(PROGRAM)
                .args(["--impl", implementation, "--runs", runs, "--patience", "20"])
                .arg("--messages")
                .arg(n.to_string())
                .arg("--json")
                .arg(&out)
                .current_dir(util::repo_root()),
        )?;
    }
    let text = std::fs::read_to_string(&out).context(format_args!(
        "cannot read {} (made by `cargo xtask bench --only python`)",
        out.display()
    ))?;
    let v = util::parse_json(&text)?;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let runs = match v.get("runs") {
        Some(Value::Array(runs)) => runs.iter().map(|r| num(r, "msgs_per_sec")).collect(),
        _ => return Err(err!("{}: no runs", out.display())),
    };
    Ok(Measured {
        label,
        messages: num(&v, "messages").unwrap_or(0.0) as u64,
        best: num(&v, "best_msgs_per_sec"),
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
    let mut rows = vec![measure(&py, "py2p_rs", "py2p_rs", SAME_N, args)?];
    if !args.no_python {
        rows.push(measure(&py, "py2p", "py2p 0.5.607", SAME_N, args)?);
    }
    rows.push(measure(&py, "py2p_rs", "py2p_rs", LONG_N, args)?);
    let ratio = match (rows.first(), rows.get(1)) {
        (Some(o), Some(r)) if !args.no_python => o.best.zip(r.best).map(|(o, r)| o / r),
        _ => None,
    };
    let mut md = String::from("## From Python: py2p_rs vs py2p 0.5.607\n\n");
    md.push_str(
        "One Python program (`crates/py2p-python/bench/bench_python.py`) run on each \
         package: two nodes in one process on loopback; one broadcasts N 64-byte messages \
         (each different) in a loop, the other counts them in a Python handler \
         (`register_handler`); the time runs from the first `send` to the handler counting \
         the last message. py2p_rs is the release wheel of crates/py2p-python (its event \
         loops take the GIL only to call the handler). Best of the runs that counted every \
         message; a run with no new message for 20 s counts as having lost messages.\n\n",
    );
    md.push_str("| package | N | msg/s (best) | runs (msg/s) |\n|---|---:|---:|---|\n");
    let fmt = |x: Option<f64>| x.map_or_else(|| "lost messages".to_string(), |x| format!("{x:.0}"));
    for m in &rows {
        let runs: Vec<String> = m.runs.iter().map(|r| fmt(*r)).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            m.label,
            m.messages,
            fmt(m.best),
            runs.join(", ")
        ));
    }
    let incomplete = rows
        .iter()
        .any(|m| m.label.starts_with("py2p_rs") && m.runs.iter().any(Option::is_none));
    let mut failure = incomplete.then(|| "a py2p_rs run lost messages".to_string());
    match ratio {
        Some(x) => {
            md.push_str(&format!(
                "\npy2p_rs / py2p at N = {SAME_N}: **{x:.0}×** the messages per second \
                 (target: at least {TARGET_RATIO:.0}×).\n"
            ));
            if x < TARGET_RATIO {
                failure.get_or_insert(format!(
                    "py2p_rs reached {x:.1}x py2p's messages per second, under the \
                     {TARGET_RATIO:.0}x target"
                ));
            }
        }
        None => md.push_str("\nNo ratio: py2p not run (`--no-python`) or no complete run.\n"),
    }
    Ok(Section {
        id: "python",
        markdown: md,
        failure,
    })
}
