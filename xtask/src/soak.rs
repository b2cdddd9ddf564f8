//! `cargo xtask soak`: real nodes on loopback, random traffic and random restarts for some
//! minutes, then an account of every broadcast.
//!
//! The nodes are child processes speaking the line protocol of `py2p mesh`
//! (`crates/py2p-cli/src/node.rs`): N-1 release builds of our `py2p mesh` and one py2p 0.5.607
//! node through `interop/py_node.py` (unless `--no-python`). Every line they print comes to
//! one loop (a channel fed by a reader thread per pipe), which keeps the whole state: who is up,
//! which links both ends have reported, what was sent and who printed what. Waits are for
//! events (a `ready` line, both ends of a link, a marker broadcast reaching every node) with
//! bounded timeouts; the only timers are the traffic and restart schedules themselves.
//!
//! **Topology.** Rust node `i` dials `i-1`, `i-2` and, from `i = 4` on, one random earlier node:
//! a graph that stays connected when any one node is down. The Python node dials two random
//! Rust nodes and, with `PY_NODE_MAX_OUTGOING=0`, nobody else, which keeps its load modest
//! (py2p 0.5.607 drops a peer when a read ends on the next frame's header, see
//! docs/protocol.md). A restarted node dials all of its neighbours in that graph.
//!
//! **Restarts.** One Rust node at a time, at random intervals: it broadcasts a marker and is
//! stopped once the marker has reached every Rust node it could reach (so everything it sent
//! before has left it), then it is killed (SIGKILL, or `/quit` for half of them), stays down a
//! short random while, and is started again on the same port, with a new id, dialling its
//! neighbours. The next restart waits until it is linked (both ends) to all of its Rust
//! neighbours. The Python node is never restarted.
//!
//! **Ending.** Traffic stops, every node broadcasts a final marker, and the run ends when every
//! Rust node has printed every other node's marker (bounded wait): links are FIFO and
//! broadcasts are flooded, so by then everything sent before has arrived where it was going to.
//!
//! **Accounting** (see [`account::account`]): a delivery is owed when the receiver was in the
//! sender's connected component (links reported by both ends) at send time and stayed up until
//! the end. Rust-to-Rust losses, any duplicate, a corrupted or unknown message, a Rust node that
//! crashes or does not rejoin, or Rust memory growth beyond `--max-growth-kib` fail the run;
//! losses involving the Python node are reported apart and do not.
//!
//! **Files.** This file holds the options, the entry point and the run's state ([`Soak`]);
//! `plan` the seeded plan (topology, rates), `process` the nodes' processes and what they
//! print, `events` the event loop, `traffic` the run from start to end, `restarts` the restart
//! machine, `account` the bookkeeping, `report` the report and docs/reliability.md.

mod account;
mod events;
mod plan;
mod process;
mod report;
mod restarts;
mod traffic;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use account::{Delivery, Level, LogTally, MemSample, Sent};
use plan::Rng;
use process::{Ev, Inc, Slot};
use report::{write_docs, Report};
use restarts::{Restart, RestartRecord};

use crate::err;
use crate::util::{self, Context, Result};
use crate::venv;

/// Options of `cargo xtask soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Minutes of traffic (fractions allowed, e.g. 0.1).
    #[arg(long, default_value_t = 2.0, value_name = "M")]
    pub minutes: f64,
    /// Nodes in all, the Python node included.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub nodes: usize,
    /// Seed of the random choices (topology, traffic, restarts, payloads). Timing is real, so
    /// a seed fixes the plan, not the interleaving.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Rust nodes only.
    #[arg(long)]
    pub no_python: bool,
    /// Broadcasts per second of each Rust node (on average; Poisson).
    #[arg(long, default_value_t = 2.0, value_name = "PER_SEC")]
    pub rate: f64,
    /// Broadcasts per second of the Python node.
    #[arg(long, default_value_t = 0.5, value_name = "PER_SEC")]
    pub python_rate: f64,
    /// Mean seconds between restarts (0: no restarts).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub restart_every: f64,
    /// Largest payload, in bytes (each message gets a random size up to this).
    #[arg(long, default_value_t = 300, value_name = "BYTES")]
    pub max_size: usize,
    /// Fail when a Rust node's mean resident memory grows by more than this from the first to
    /// the last quarter of the steady part of the run (and by more than 20%).
    #[arg(long, default_value_t = 2048, value_name = "KIB")]
    pub max_growth_kib: u64,
    /// The `py2p` binary to run (default: build `py2p-cli` in release mode and use it).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Also put the figures into docs/reliability.md (its Soak section).
    #[arg(long)]
    pub write_docs: bool,
}

/// Runs `cargo xtask soak`.
pub fn run(args: &SoakArgs) -> Result<()> {
    validate(args)?;
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => {
            util::run(util::cargo().args(["build", "--release", "-p", "py2p-cli"]))?;
            util::target_dir().join("release").join("py2p")
        }
    };
    if !bin.exists() {
        return Err(err!("no py2p binary at {}", bin.display()));
    }
    let python = if args.no_python {
        None
    } else {
        Some(venv::ensure()?)
    };
    let out_dir = util::target_dir().join("soak");
    let report = soak(args, bin, python, &out_dir)?;
    println!("{}", report.render("##"));
    println!("report: {}", out_dir.join("report.md").display());
    println!("node logs (stderr): {}", out_dir.join("logs").display());
    if args.write_docs {
        write_docs(&report.render("###"))?;
    }
    if let Some(e) = &report.stopped_early {
        return Err(err!("the soak run stopped early: {e}"));
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(err!("soak failed: {}", report.failures.join("; ")))
    }
}

/// Runs the nodes and writes `report.md` and `logs/` into `out_dir`; returns the report.
fn soak(args: &SoakArgs, bin: PathBuf, python: Option<PathBuf>, out_dir: &Path) -> Result<Report> {
    fs::create_dir_all(out_dir.join("logs"))
        .context(format_args!("cannot create {}", out_dir.display()))?;
    let mut soak = Soak::new(args, bin, python, out_dir)?;
    let outcome = soak.run_all();
    soak.stop_all();
    let report = soak.report(args, outcome.err());
    let path = out_dir.join("report.md");
    fs::write(&path, report.render("##"))
        .context(format_args!("cannot write {}", path.display()))?;
    Ok(report)
}

fn validate(args: &SoakArgs) -> Result<()> {
    let rust = args.nodes - usize::from(!args.no_python).min(args.nodes);
    if rust < 2 {
        return Err(err!(
            "--nodes {} leaves {rust} Rust node(s); at least 2 are needed",
            args.nodes
        ));
    }
    for (name, v) in [
        ("--minutes", args.minutes),
        ("--rate", args.rate),
        ("--python-rate", args.python_rate),
        ("--restart-every", args.restart_every),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(err!("{name} must be a non-negative number, not {v}"));
        }
    }
    if args.minutes <= 0.0 {
        return Err(err!("--minutes must be more than 0"));
    }
    Ok(())
}

/// How long a node may take to print `ready`, to link up, to exit after `/quit`.
const STEP_TIMEOUT: f64 = 30.0;
/// How long a marker may take to reach every node.
const MARKER_TIMEOUT: f64 = 30.0;
/// Memory is read this often, seconds.
const MEM_EVERY: f64 = 1.0;
/// The steady part of the run starts after this many seconds of traffic (py2p's broadcast
/// expiry is 60 s: until then the table of seen messages fills up), or after half the
/// traffic time for short runs.
const WARM_UP: f64 = 70.0;

/// The whole state of a run, which the event loop, the traffic and the restarts share.
struct Soak {
    rng: Rng,
    bin: PathBuf,
    python: Option<PathBuf>,
    logs_dir: PathBuf,
    log_files: HashMap<usize, Option<fs::File>>,
    start: Instant,
    tx: Sender<Ev>,
    rx: Receiver<Ev>,
    slots: Vec<Slot>,
    incs: Vec<Inc>,
    ids: HashMap<String, usize>,
    rate: f64,
    python_rate: f64,
    restart_every: f64,
    max_size: usize,
    traffic: (f64, f64),
    end: f64,
    next_seq: u64,
    sent: Vec<Sent>,
    payloads: HashMap<u64, (u64, usize)>,
    markers: HashMap<u64, HashSet<usize>>,
    deliveries: Vec<Delivery>,
    corrupt: Vec<String>,
    next_mem: f64,
    restart: Restart,
    restarts: Vec<RestartRecord>,
    /// Things that fail the run.
    failures: Vec<String>,
    /// Things worth knowing that do not.
    notes: Vec<String>,
    rust_logs: [LogTally; 2],
    python_logs: [LogTally; 2],
    node_errors: LogTally,
    python_disconnects: u64,
    rust_disconnects: u64,
    disconnect_examples: Vec<String>,
    /// (message, incarnation) → time stamp and id hash of the first copy printed.
    first_stamp: HashMap<(u64, usize), (u64, u64)>,
    duplicate_details: Vec<String>,
}

impl Drop for Soak {
    fn drop(&mut self) {
        for i in &mut self.incs {
            if let Some(p) = i.proc.as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few seconds of four Rust nodes with one restart, when a `py2p` binary has been built
    /// (`cargo test --workspace` builds it for the CLI's tests); skipped otherwise.
    #[test]
    fn smoke_run() {
        let target = util::target_dir();
        let Some(bin) = ["release", "debug"]
            .iter()
            .map(|p| target.join(p).join("py2p"))
            .find(|b| b.exists())
        else {
            eprintln!("SKIPPED: no py2p binary in {} yet", target.display());
            return;
        };
        let args = SoakArgs {
            minutes: 0.06,
            nodes: 4,
            seed: 3,
            no_python: true,
            rate: 5.0,
            python_rate: 0.0,
            restart_every: 0.5,
            max_size: 100,
            max_growth_kib: 2048,
            bin: None,
            write_docs: false,
        };
        let out = target.join("tmp").join("soak-smoke");
        let report = soak(&args, bin, None, &out).expect("soak runs");
        assert!(report.stopped_early.is_none(), "{:?}", report.stopped_early);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let t = &report.tally;
        assert!(t.sent > 10, "{t:?}");
        assert!(t.rust_rust.owed > 0 && t.rust_rust.lost == 0, "{t:?}");
        assert!(!report.restarts.is_empty(), "no restart in the smoke run");
        assert!(out.join("report.md").exists());
    }

    #[test]
    fn bad_options_are_refused() {
        let ok = SoakArgs {
            minutes: 1.0,
            nodes: 16,
            seed: 1,
            no_python: false,
            rate: 2.0,
            python_rate: 0.5,
            restart_every: 10.0,
            max_size: 300,
            max_growth_kib: 2048,
            bin: None,
            write_docs: false,
        };
        assert!(validate(&ok).is_ok());
        let bad = [
            SoakArgs {
                nodes: 2,
                ..ok.clone()
            },
            SoakArgs {
                nodes: 0,
                ..ok.clone()
            },
            SoakArgs {
                minutes: 0.0,
                ..ok.clone()
            },
            SoakArgs {
                rate: -1.0,
                ..ok.clone()
            },
            SoakArgs {
                restart_every: f64::NAN,
                ..ok.clone()
            },
        ];
        for args in bad {
            assert!(validate(&args).is_err(), "{args:?}");
        }
        assert!(validate(&SoakArgs {
            nodes: 2,
            no_python: true,
            ..ok
        })
        .is_ok());
    }
}
