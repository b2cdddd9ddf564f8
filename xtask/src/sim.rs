//! `cargo xtask sim`: runs the deterministic network simulator (`py2p-sim`) on many seeds
//! of every scenario of `crates/py2p-sim/tests/sim.rs`, and sums up.
//!
//! The scenarios live in that test file; its ignored `sweep` test runs them on the seeds
//! given through `PY2P_SIM_*` variables and prints one `sim-result` line per run (then
//! `sim-violation` and `sim-known` lines). This command starts it and reads those lines,
//! so that xtask does not have to build the library itself.

use std::collections::BTreeMap;

use crate::err;
use crate::util::{self, Result};

/// Options of `cargo xtask sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// How many seeds of each scenario to run (1, 2, ... unless `--first-seed`).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub seeds: u64,
    /// The first seed of the range.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub first_seed: u64,
    /// Run this seed only (replays a failure exactly).
    #[arg(long, value_name = "S", conflicts_with_all = ["seeds", "first_seed"])]
    pub seed: Option<u64>,
    /// Nodes in each network, instead of each scenario's own size.
    #[arg(long, value_name = "M")]
    pub nodes: Option<u64>,
    /// Run this scenario only (broadcast, partition, partition-reset, partition-long,
    /// kill-third, churn, slow-peer, garbage, simultaneous-dial).
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Write every run's events, one line each, under target/tmp/sim-traces/.
    #[arg(long)]
    pub trace: bool,
    /// Build with optimisations (faster for thousands of seeds, slower to build).
    #[arg(long)]
    pub release: bool,
}

/// One `sim-result` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunResult {
    scenario: String,
    seed: u64,
    ok: bool,
    known: u64,
    ms: u64,
}

/// Parses `sim-result key=value ...`; `None` for any other line.
fn parse_result(line: &str) -> Option<RunResult> {
    let rest = line.strip_prefix("sim-result ")?;
    let fields: BTreeMap<&str, &str> = rest
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    Some(RunResult {
        scenario: fields.get("scenario")?.to_string(),
        seed: fields.get("seed")?.parse().ok()?,
        ok: *fields.get("result")? == "ok",
        known: fields
            .get("known")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0),
        ms: fields.get("ms").and_then(|k| k.parse().ok()).unwrap_or(0),
    })
}

/// Per scenario: runs, failures, runs with known limitations, time, failing seeds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    runs: u64,
    failed: Vec<u64>,
    known: Vec<u64>,
    ms: u64,
}

fn summarise(results: &[RunResult]) -> BTreeMap<String, Tally> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for r in results {
        let t = out.entry(r.scenario.clone()).or_default();
        t.runs += 1;
        t.ms += r.ms;
        if !r.ok {
            t.failed.push(r.seed);
        }
        if r.known > 0 {
            t.known.push(r.seed);
        }
    }
    out
}

fn seeds_text(seeds: &[u64]) -> String {
    const SHOWN: usize = 12;
    let mut s: Vec<String> = seeds.iter().take(SHOWN).map(u64::to_string).collect();
    if seeds.len() > SHOWN {
        s.push(format!("... ({} more)", seeds.len() - SHOWN));
    }
    s.join(" ")
}

/// Runs `cargo xtask sim`.
pub fn run(args: &SimArgs) -> Result<()> {
    let mut cmd = util::cargo();
    cmd.args(["test", "--package", "py2p-sim", "--test", "sim"]);
    if args.release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--ignored", "--exact", "sweep", "--nocapture"]);
    match args.seed {
        Some(seed) => {
            cmd.env("PY2P_SIM_SEED", seed.to_string());
        }
        None => {
            cmd.env("PY2P_SIM_SEEDS", args.seeds.to_string());
            cmd.env("PY2P_SIM_FIRST_SEED", args.first_seed.to_string());
        }
    }
    if let Some(nodes) = args.nodes {
        cmd.env("PY2P_SIM_NODES", nodes.to_string());
    }
    if let Some(name) = &args.scenario {
        cmd.env("PY2P_SIM_SCENARIO", name);
    }
    if args.trace {
        cmd.env("PY2P_SIM_TRACE", "1");
    }
    let mut results = Vec::new();
    let outcome = util::run_streaming(&mut cmd, |line| {
        if let Some(r) = parse_result(line) {
            results.push(r);
        }
    });
    let tallies = summarise(&results);
    println!();
    println!(
        "{:<18} {:>5} {:>6} {:>6} {:>8}  failing seeds",
        "scenario", "runs", "failed", "known", "time"
    );
    for (name, t) in &tallies {
        println!(
            "{name:<18} {:>5} {:>6} {:>6} {:>7.1}s  {}",
            t.runs,
            t.failed.len(),
            t.known.len(),
            t.ms as f64 / 1000.0,
            seeds_text(&t.failed)
        );
    }
    println!(
        "(known: runs where the network stayed split after losing every link between two \
         parts, a limitation of py2p's design; see crates/py2p-sim/tests/sim.rs)"
    );
    let failures: Vec<(&String, u64)> = tallies
        .iter()
        .flat_map(|(name, t)| t.failed.iter().map(move |&s| (name, s)))
        .collect();
    if let Some((name, seed)) = failures.first() {
        let nodes = args
            .nodes
            .map(|n| format!(" --nodes {n}"))
            .unwrap_or_default();
        println!(
            "\nfirst failure: scenario {name}, seed {seed}; replay it (with a trace of every \
             event) with\n  cargo xtask sim --scenario {name} --seed {seed}{nodes} --trace"
        );
    }
    match (outcome, failures.len()) {
        (Ok(()), 0) if !results.is_empty() => Ok(()),
        (Ok(()), 0) => Err(err!("the simulator reported no runs (unknown scenario?)")),
        (_, 0) => Err(err!(
            "the simulator's sweep failed before reporting a failure"
        )),
        (_, n) => Err(err!("{n} simulated run(s) failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_result_lines_and_sums_up() {
        let lines = [
            "sim-result scenario=churn seed=1 nodes=16 result=ok known=0 hash=00 ms=10 live=9",
            "sim-result scenario=churn seed=2 nodes=16 result=FAIL known=1 hash=01 ms=20",
            "sim-violation scenario=churn seed=2 node 3 never received broadcast x",
            "sim-result scenario=garbage seed=1 nodes=10 result=ok known=0 hash=02 ms=5",
            "running 1 test",
        ];
        let results: Vec<RunResult> = lines.iter().filter_map(|l| parse_result(l)).collect();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[1],
            RunResult {
                scenario: "churn".into(),
                seed: 2,
                ok: false,
                known: 1,
                ms: 20
            }
        );
        let t = summarise(&results);
        assert_eq!(t["churn"].runs, 2);
        assert_eq!(t["churn"].failed, vec![2]);
        assert_eq!(t["churn"].known, vec![2]);
        assert_eq!(t["churn"].ms, 30);
        assert!(t["garbage"].failed.is_empty());
        assert_eq!(
            seeds_text(&(1..=14).collect::<Vec<_>>()),
            "1 2 3 4 5 6 7 8 9 10 11 12 ... (2 more)"
        );
    }
}
