//! The whole state of a run ([`Soak`]), shared by the event loop, the traffic and the
//! restarts (each an `impl Soak` in its own file), the restart machine's states, and the
//! run's fixed timings.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use super::account::{Delivery, LogTally, Sent};
use super::node::{Ev, Inc, Slot};
use py2p_testkit::Rng;

/// How long a node may take to print `ready`, to link up, to exit after `/quit`.
pub(super) const STEP_TIMEOUT: f64 = 30.0;
/// How long a marker may take to reach every node.
pub(super) const MARKER_TIMEOUT: f64 = 30.0;
/// Memory is read this often, seconds.
pub(super) const MEM_EVERY: f64 = 1.0;
/// The steady part of the run starts after this many seconds of traffic (py2p's broadcast
/// expiry is 60 s: until then the table of seen messages fills up), or after half the
/// traffic time for short runs.
pub(super) const WARM_UP: f64 = 70.0;

/// The whole state of a run, which the event loop, the traffic and the restarts share.
pub(super) struct Soak {
    pub(super) rng: Rng,
    pub(super) bin: PathBuf,
    pub(super) python: Option<PathBuf>,
    pub(super) logs_dir: PathBuf,
    pub(super) log_files: HashMap<usize, Option<fs::File>>,
    pub(super) start: Instant,
    pub(super) tx: Sender<Ev>,
    pub(super) rx: Receiver<Ev>,
    pub(super) slots: Vec<Slot>,
    pub(super) incs: Vec<Inc>,
    pub(super) ids: HashMap<String, usize>,
    pub(super) rate: f64,
    pub(super) python_rate: f64,
    pub(super) restart_every: f64,
    pub(super) max_size: usize,
    pub(super) traffic: (f64, f64),
    pub(super) end: f64,
    pub(super) next_seq: u64,
    pub(super) sent: Vec<Sent>,
    pub(super) payloads: HashMap<u64, (u64, usize)>,
    pub(super) markers: HashMap<u64, HashSet<usize>>,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) corrupt: Vec<String>,
    pub(super) next_mem: f64,
    pub(super) restart: Restart,
    pub(super) restarts: Vec<RestartRecord>,
    /// Things that fail the run.
    pub(super) failures: Vec<String>,
    /// Things worth knowing that do not.
    pub(super) notes: Vec<String>,
    pub(super) rust_logs: [LogTally; 2],
    pub(super) python_logs: [LogTally; 2],
    pub(super) node_errors: LogTally,
    pub(super) python_disconnects: u64,
    pub(super) rust_disconnects: u64,
    pub(super) disconnect_examples: Vec<String>,
    /// (message, incarnation) → time stamp and id hash of the first copy printed.
    pub(super) first_stamp: HashMap<(u64, usize), (u64, u64)>,
    pub(super) duplicate_details: Vec<String>,
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

/// The restart machine.
pub(super) enum Restart {
    Idle {
        at: f64,
    },
    Flushing {
        slot: usize,
        inc: usize,
        marker: u64,
        deadline: f64,
    },
    Down {
        slot: usize,
        inc: usize,
        until: f64,
        deadline: f64,
        attempts: u32,
    },
    Joining {
        slot: usize,
        inc: usize,
        since: f64,
        deadline: f64,
    },
}

/// One restart, for the report.
pub(super) struct RestartRecord {
    pub(super) slot: usize,
    pub(super) graceful: bool,
    pub(super) down_s: f64,
    pub(super) rejoin_s: Option<f64>,
}
