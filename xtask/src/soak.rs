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
mod args;
mod events;
mod node;
mod plan;
mod process;
mod report;
mod restarts;
mod state;
mod traffic;

use std::fs;
use std::path::{Path, PathBuf};

pub use args::SoakArgs;
use report::{write_docs, Report};
use state::Soak;

use crate::err;
use crate::util::{self, Context, Result};
use crate::venv;

/// Runs `cargo xtask soak`.
pub fn run(args: &SoakArgs) -> Result<()> {
    args::validate(args)?;
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
}
