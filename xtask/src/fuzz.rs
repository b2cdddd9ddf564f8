//! `cargo xtask fuzz`: runs the cargo-fuzz targets of `fuzz/` on nightly, and
//! regenerates the committed seed corpus (`--seed-corpus`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::err;
use crate::util::{self, Context, Result};

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone, clap::Args)]
pub struct FuzzArgs {
    /// Fuzz only this target (repeatable); default: every target in fuzz/fuzz_targets.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Minutes of fuzzing per target.
    #[arg(long, default_value_t = 1.0, value_name = "M")]
    pub minutes: f64,
    /// Afterwards, merge the new inputs that add edge coverage into `fuzz/corpus/<target>/`
    /// (libFuzzer `-set_cover_merge=1` on edges only), so they can be committed.
    #[arg(long)]
    pub merge: bool,
    /// Instead of fuzzing, regenerate the committed seed corpus (fuzz/corpus/*/seed-*)
    /// from `py2p_testkit::wire_seeds::seed_corpus` and `py2p_sim::exercise::seed_corpus`
    /// (stable toolchain, no cargo-fuzz needed).
    #[arg(long, conflicts_with_all = ["targets", "merge"])]
    pub seed_corpus: bool,
    /// The sanitizer to build with (cargo fuzz's `-s`: address, leak, memory, thread or
    /// none). Default: address for the wire targets; none for the node targets
    /// (`mesh_node`, `sync_node`), which run a simulation per input and are about ten times
    /// faster without it (the project has no `unsafe` code for it to watch).
    #[arg(long, value_name = "NAME")]
    pub sanitizer: Option<String>,
}

/// Targets that run without a sanitizer unless `--sanitizer` says otherwise.
const UNSANITIZED_TARGETS: [&str; 2] = ["mesh_node", "sync_node"];

/// The sanitizer `target` builds with.
fn sanitizer<'a>(args: &'a FuzzArgs, target: &str) -> &'a str {
    match &args.sanitizer {
        Some(s) => s,
        None if UNSANITIZED_TARGETS.contains(&target) => "none",
        None => "address",
    }
}

/// What libFuzzer reported for one target.
#[derive(Debug, Default)]
struct Report {
    executions: Option<u64>,
    new_units: Option<u64>,
    done_line: Option<String>,
    artifacts: Vec<String>,
    crash_lines: Vec<String>,
    success: bool,
}

/// Runs `cargo xtask fuzz`.
pub fn run(args: &FuzzArgs) -> Result<()> {
    if args.seed_corpus {
        return seed_corpus();
    }
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        return Err(err!("--minutes must be a positive number"));
    }
    let fuzz_dir = util::repo_root().join("fuzz");
    let all = list_targets(&fuzz_dir)?;
    let targets = if args.targets.is_empty() {
        all.clone()
    } else {
        for t in &args.targets {
            if !all.contains(t) {
                return Err(err!(
                    "unknown fuzz target `{t}`; available: {}",
                    all.join(", ")
                ));
            }
        }
        args.targets.clone()
    };

    check_nightly()?;
    ensure_cargo_fuzz()?;

    let seconds = ((args.minutes * 60.0).round() as u64).max(1);
    let mut reports = Vec::new();
    for target in &targets {
        println!();
        println!("==> fuzzing `{target}` for {seconds}s");
        let san = sanitizer(args, target);
        let (report, elapsed) = util::timed(|| fuzz_target(&fuzz_dir, target, san, seconds));
        let report = report?;
        if args.merge && report.success {
            merge(&fuzz_dir, target, san)?;
        }
        reports.push((target.clone(), report, elapsed));
    }

    println!();
    println!("==> fuzzing summary");
    let mut failed = Vec::new();
    for (target, r, elapsed) in &reports {
        let execs = r
            .executions
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into());
        let new_units = r
            .new_units
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into());
        let verdict = if r.success {
            "no findings".to_string()
        } else {
            failed.push(target.as_str());
            format!("FINDING ({} artifact(s))", r.artifacts.len())
        };
        println!(
            "    {target:<16} {execs:>12} executions, {new_units:>5} new units, {verdict} ({})",
            util::fmt_elapsed(*elapsed)
        );
        if let Some(done) = &r.done_line {
            println!("    {:<16} {done}", "");
        }
        for line in &r.crash_lines {
            println!("    {:<16} {line}", "");
        }
        for a in &r.artifacts {
            println!(
                "    {:<16} artifact: {a} (reproduce: cd fuzz && cargo +nightly fuzz run -s {} {target} {a})",
                "",
                sanitizer(args, target)
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(err!("fuzzing found problems in: {}", failed.join(", ")))
    }
}

/// Fuzz targets: the `fuzz/fuzz_targets/*.rs` file stems, sorted.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets = Vec::new();
    for entry in fs::read_dir(&dir).context(format_args!("cannot list {}", dir.display()))? {
        let path = entry
            .context(format_args!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem() {
                targets.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    targets.sort();
    if targets.is_empty() {
        return Err(err!("no fuzz targets in {}", dir.display()));
    }
    Ok(targets)
}

fn check_nightly() -> Result<()> {
    let list = util::output(Command::new("rustup").args(["toolchain", "list"])).map_err(|e| {
        err!("cannot ask rustup for the installed toolchains ({e}); fuzzing needs rustup and a nightly toolchain")
    })?;
    if list.lines().any(|l| l.contains("nightly")) {
        Ok(())
    } else {
        Err(err!(
            "no nightly toolchain installed (`rustup toolchain list` shows none); \
             cargo-fuzz needs one: `rustup toolchain install nightly`"
        ))
    }
}

fn ensure_cargo_fuzz() -> Result<()> {
    if util::succeeds(util::cargo_nightly().args(["fuzz", "--help"])) {
        return Ok(());
    }
    println!("cargo-fuzz is not installed; installing it from crates.io (takes a few minutes)");
    util::run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    if util::succeeds(util::cargo_nightly().args(["fuzz", "--help"])) {
        Ok(())
    } else {
        Err(err!(
            "`cargo +nightly fuzz --help` still fails after `cargo install cargo-fuzz`; is ~/.cargo/bin in PATH?"
        ))
    }
}

/// Scratch corpus directory where libFuzzer writes the inputs it discovers
/// (kept out of the committed corpus, which is only read).
fn scratch_corpus(target: &str) -> PathBuf {
    util::target_dir().join("fuzz-corpus").join(target)
}

fn fuzz_target(fuzz_dir: &Path, target: &str, sanitizer: &str, seconds: u64) -> Result<Report> {
    let scratch = scratch_corpus(target);
    fs::create_dir_all(&scratch).context(format_args!("cannot create {}", scratch.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    let mut cmd = util::cargo_nightly();
    cmd.current_dir(fuzz_dir)
        .args(["fuzz", "run", "--sanitizer", sanitizer, target])
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let shown = util::display_cmd(&cmd);
    println!("$ {shown}");
    let mut child = cmd
        .spawn()
        .context(format_args!("cannot start `{shown}`"))?;
    let mut report = Report::default();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            parse_line(&line, &mut report);
        }
    }
    let status = child
        .wait()
        .context(format_args!("cannot wait for `{shown}`"))?;
    report.success = status.success();
    if !report.success && report.artifacts.is_empty() && report.crash_lines.is_empty() {
        // Not a libFuzzer finding: most likely the build failed.
        return Err(err!(
            "`{shown}` failed with {} before reporting any finding (see the output above)",
            util::describe_status(status)
        ));
    }
    Ok(report)
}

/// Picks the interesting facts out of one line of libFuzzer's stderr.
fn parse_line(line: &str, report: &mut Report) {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
        report.executions = rest.trim().parse().ok();
    } else if let Some(rest) = line.strip_prefix("stat::new_units_added:") {
        report.new_units = rest.trim().parse().ok();
    } else if line.starts_with('#') && line.contains("DONE") {
        // "#123456\tDONE   cov: 812 ft: 2107 corp: 95/4211b lim: 4096 exec/s: 2057 rss: 80Mb"
        if report.executions.is_none() {
            report.executions = line[1..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok());
        }
        report.done_line = Some(line.split_whitespace().collect::<Vec<_>>().join(" "));
    } else if let Some(idx) = line.find("Test unit written to ") {
        report.artifacts.push(
            line[idx + "Test unit written to ".len()..]
                .trim()
                .to_string(),
        );
    } else if line.contains("ERROR: libFuzzer")
        || line.starts_with("SUMMARY:")
        || line.contains("panicked at")
    {
        report.crash_lines.push(line.to_string());
    }
}

/// Merges the coverage-increasing inputs of the scratch corpus into the
/// committed corpus (`fuzz/corpus/<target>`), reporting how many were added.
fn merge(fuzz_dir: &Path, target: &str, sanitizer: &str) -> Result<()> {
    let seeds = fuzz_dir.join("corpus").join(target);
    let before = count_files(&seeds);
    let mut cmd = util::cargo_nightly();
    cmd.current_dir(fuzz_dir)
        .args(["fuzz", "run", "--sanitizer", sanitizer, target])
        .arg(&seeds)
        .arg(scratch_corpus(target))
        // Edges only (no hit counters, no comparison operands): far fewer, and still the
        // inputs that reach new code.
        .args(["--", "-set_cover_merge=1", "-use_counters=0", "-use_cmp=0"]);
    util::run(&mut cmd)?;
    let after = count_files(&seeds);
    println!(
        "merged {} new input(s) into {} ({after} files)",
        after.saturating_sub(before),
        seeds.display()
    );
    if after > CORPUS_SOFT_LIMIT {
        println!(
            "note: {} holds more than {CORPUS_SOFT_LIMIT} files; keep the committed corpus small \
             (e.g. commit only the smallest new files)",
            seeds.display()
        );
    }
    Ok(())
}

/// The tests that write the seed corpus: (package, test target).
const SEED_GENERATORS: [(&str, &str); 2] = [
    ("py2p-testkit", "wire_corpus"),
    ("py2p-sim", "node_fuzz_corpus"),
];

/// Committed corpus size (files per target) above which `--merge` warns.
const CORPUS_SOFT_LIMIT: usize = 150;

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

/// Regenerates `fuzz/corpus/<target>/seed-*` through the ignored
/// `regenerate_seed_corpus` tests of `crates/py2p-testkit/tests/wire_corpus.rs` (wire
/// targets) and `crates/py2p-sim/tests/node_fuzz_corpus.rs` (node targets); the generators
/// need those crates, which xtask deliberately does not depend on.
fn seed_corpus() -> Result<()> {
    let corpus = util::repo_root().join("fuzz").join("corpus");
    for (package, test) in SEED_GENERATORS {
        util::run(
            util::cargo()
                .args([
                    "test",
                    "-p",
                    package,
                    "--test",
                    test,
                    "--",
                    "--ignored",
                    "--exact",
                    "regenerate_seed_corpus",
                    "--nocapture",
                ])
                .env("PY2P_REGENERATE_FUZZ_CORPUS", &corpus),
        )?;
    }
    for target in list_targets(&util::repo_root().join("fuzz"))? {
        let dir = corpus.join(&target);
        println!("{}: {} files", dir.display(), count_files(&dir));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_output() {
        let mut r = Report::default();
        for line in [
            "#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#1048576\tpulse  cov: 900 ft: 2000 corp: 90/4Kb lim: 4096 exec/s: 30000 rss: 80Mb",
            "#1800000\tDONE   cov: 912 ft: 2107 corp: 95/4211b lim: 4096 exec/s: 30000 rss: 80Mb",
            "stat::number_of_executed_units: 1800123",
            "stat::new_units_added: 42",
        ] {
            parse_line(line, &mut r);
        }
        assert_eq!(r.executions, Some(1_800_123));
        assert_eq!(r.new_units, Some(42));
        assert!(r.done_line.unwrap().starts_with("#1800000 DONE cov: 912"));

        let mut r = Report::default();
        parse_line("#77\tDONE cov: 1", &mut r);
        assert_eq!(r.executions, Some(77));
        parse_line(
            "artifact_prefix='/x/artifacts/t/'; Test unit written to /x/artifacts/t/crash-abc",
            &mut r,
        );
        parse_line("SUMMARY: libFuzzer: deadly signal", &mut r);
        assert_eq!(r.artifacts, vec!["/x/artifacts/t/crash-abc".to_string()]);
        assert_eq!(r.crash_lines.len(), 1);
    }
}
