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

mod account;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use account::{Delivery, Incarnation, Level, LogTally, MemSample, Sent, Tally};

use crate::err;
use crate::json::{self, Value};
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

// ---------------------------------------------------------------------------------------------
// Randomness: a seeded generator (splitmix64), so that a seed fixes the plan of a run.

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Exponentially distributed with this mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and their output.

/// What a node printed, parsed in its reader thread.
#[derive(Debug)]
enum Out {
    Ready {
        id: String,
        port: Option<u16>,
    },
    Connected(String),
    Disconnected(String),
    Message {
        sender: String,
        payload: String,
        /// The message's id and time stamp (to tell a copy from a re-stamped one).
        id: String,
        time: u64,
    },
    Error(String),
    Other,
}

/// What reaches the main loop.
enum Ev {
    Out { inc: usize, at: Instant, out: Out },
    Stderr { inc: usize, line: String },
    Closed { inc: usize },
}

fn parse_out(line: &str) -> Out {
    let v = match json::parse(line) {
        Ok(v) => v,
        Err(e) => return Out::Error(format!("stdout line is not JSON ({e}): {line}")),
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match v.get("event").and_then(Value::as_str) {
        Some("ready") => Out::Ready {
            id: s("id").unwrap_or_default(),
            port: s("addr").and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok())),
        },
        Some("connected") => Out::Connected(s("peer").unwrap_or_default()),
        Some("disconnected") => Out::Disconnected(s("peer").unwrap_or_default()),
        Some("message") if v.get("kind").and_then(Value::as_str) == Some("broadcast") => {
            let payload = match v.get("packets") {
                Some(Value::Array(p)) => p.first().and_then(Value::as_str).unwrap_or(""),
                _ => "",
            };
            Out::Message {
                sender: s("sender").unwrap_or_default(),
                payload: payload.to_owned(),
                id: s("id").unwrap_or_default(),
                time: v.get("time").and_then(Value::as_f64).unwrap_or(0.0) as u64,
            }
        }
        Some("error") => Out::Error(s("message").unwrap_or_default()),
        _ => Out::Other,
    }
}

/// A running child process.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// One process run of a node slot.
struct Inc {
    slot: usize,
    python: bool,
    started: f64,
    /// Stopped before the end (killed by us, or crashed).
    ended: Option<f64>,
    /// Stopped by us (not a crash).
    stopped_by_us: bool,
    /// Its stdout is closed.
    closed: bool,
    id: Option<String>,
    /// Peers it reported as connected (ids).
    peers: HashSet<String>,
    proc: Option<Proc>,
    mem: Vec<MemSample>,
}

/// A node: a port, and the processes that ran on it.
struct Slot {
    python: bool,
    port: u16,
    /// Neighbours in the planned topology (both directions).
    neighbours: Vec<usize>,
    /// The incarnation running now.
    current: Option<usize>,
    next_send: f64,
}

/// The restart machine.
enum Restart {
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
struct RestartRecord {
    slot: usize,
    graceful: bool,
    down_s: f64,
    rejoin_s: Option<f64>,
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

impl Soak {
    fn new(args: &SoakArgs, bin: PathBuf, python: Option<PathBuf>, out_dir: &Path) -> Result<Soak> {
        let mut rng = Rng(args.seed ^ 0x50a4_50a4_50a4_50a4);
        let rust = if python.is_some() {
            args.nodes - 1
        } else {
            args.nodes
        };
        let mut slots: Vec<Slot> = (0..rust)
            .map(|_| Slot {
                python: false,
                port: 0,
                neighbours: Vec::new(),
                current: None,
                next_send: 0.0,
            })
            .collect();
        let link = |slots: &mut Vec<Slot>, a: usize, b: usize| {
            if a != b && !slots[a].neighbours.contains(&b) {
                slots[a].neighbours.push(b);
                slots[b].neighbours.push(a);
            }
        };
        for i in 1..rust {
            link(&mut slots, i, i - 1);
            if i >= 2 {
                link(&mut slots, i, i - 2);
            }
            if i >= 4 {
                let j = rng.below(i - 2);
                link(&mut slots, i, j);
            }
        }
        if python.is_some() {
            slots.push(Slot {
                python: true,
                port: 0,
                neighbours: Vec::new(),
                current: None,
                next_send: 0.0,
            });
            let p = rust;
            let first = rng.below(rust);
            link(&mut slots, p, first);
            if rust > 1 {
                let second = (first + 1 + rng.below(rust - 1)) % rust;
                link(&mut slots, p, second);
            }
        }
        let logs_dir = out_dir.join("logs");
        for entry in fs::read_dir(&logs_dir).into_iter().flatten().flatten() {
            let _ = fs::remove_file(entry.path());
        }
        let (tx, rx) = mpsc::channel();
        let restart_every = if rust < 3 { 0.0 } else { args.restart_every };
        let mut notes = Vec::new();
        if rust < 3 && args.restart_every > 0.0 {
            notes.push("fewer than 3 Rust nodes: no restarts (the mesh would split)".into());
        }
        Ok(Soak {
            rng,
            bin,
            python,
            logs_dir,
            log_files: HashMap::new(),
            start: Instant::now(),
            tx,
            rx,
            slots,
            incs: Vec::new(),
            ids: HashMap::new(),
            rate: args.rate,
            python_rate: args.python_rate,
            restart_every,
            max_size: args.max_size,
            traffic: (0.0, 0.0),
            end: 0.0,
            next_seq: 1,
            sent: Vec::new(),
            payloads: HashMap::new(),
            markers: HashMap::new(),
            deliveries: Vec::new(),
            corrupt: Vec::new(),
            next_mem: 0.0,
            restart: Restart::Idle { at: f64::INFINITY },
            restarts: Vec::new(),
            failures: Vec::new(),
            notes,
            rust_logs: Default::default(),
            python_logs: Default::default(),
            node_errors: LogTally::default(),
            python_disconnects: 0,
            rust_disconnects: 0,
            disconnect_examples: Vec::new(),
            first_stamp: HashMap::new(),
            duplicate_details: Vec::new(),
        })
        .map(|mut s| {
            s.traffic.1 = args.minutes * 60.0;
            s
        })
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn label(&self, slot: usize) -> String {
        if self.slots[slot].python {
            format!("py{slot}")
        } else {
            format!("rs{slot}")
        }
    }

    // -- processes ----------------------------------------------------------------------------

    /// Starts a process for `slot`, dialling `connect` (ports); returns its incarnation.
    fn spawn(&mut self, slot: usize, connect: &[u16]) -> Result<usize> {
        let python = self.slots[slot].python;
        let bind = format!("127.0.0.1:{}", self.slots[slot].port);
        let mut cmd = match (&self.python, python) {
            (Some(py), true) => {
                let mut c = Command::new(py);
                c.arg(util::repo_root().join("interop/py_node.py"))
                    .env("PY_NODE_MAX_OUTGOING", "0");
                c
            }
            _ => {
                let mut c = Command::new(&self.bin);
                // WARN and ERROR lines are counted; PY2P_SOAK_RUST_LOG=info shows more in the logs.
                c.env(
                    "RUST_LOG",
                    std::env::var("PY2P_SOAK_RUST_LOG").unwrap_or_else(|_| "warn".into()),
                );
                c
            }
        };
        cmd.args(["mesh", "--bind", &bind]);
        for port in connect {
            cmd.arg("--connect").arg(format!("127.0.0.1:{port}"));
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .context(format_args!("cannot start {}", util::display_cmd(&cmd)))?;
        let inc = self.incs.len();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        if let Some(stdout) = stdout {
            let tx = self.tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).split(b'\n') {
                    let Ok(line) = line else { break };
                    let at = Instant::now();
                    let out = parse_out(&String::from_utf8_lossy(&line));
                    if tx.send(Ev::Out { inc, at, out }).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Ev::Closed { inc });
            });
        }
        if let Some(stderr) = stderr {
            let tx = self.tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if tx.send(Ev::Stderr { inc, line }).is_err() {
                        return;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        self.incs.push(Inc {
            slot,
            python,
            started: self.now(),
            ended: None,
            stopped_by_us: false,
            closed: false,
            id: None,
            peers: HashSet::new(),
            proc: Some(Proc { child, stdin }),
            mem: Vec::new(),
        });
        self.slots[slot].current = Some(inc);
        Ok(inc)
    }

    /// Writes one line to a node's stdin; false if it cannot.
    fn write(&mut self, inc: usize, line: &str) -> bool {
        let Some(stdin) = self.incs[inc].proc.as_mut().and_then(|p| p.stdin.as_mut()) else {
            return false;
        };
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_ok()
    }

    fn alive(&self, inc: usize) -> bool {
        let i = &self.incs[inc];
        i.ended.is_none() && !i.closed && i.proc.is_some()
    }

    fn ready(&self, inc: usize) -> bool {
        self.alive(inc) && self.incs[inc].id.is_some()
    }

    /// Both ends have reported the link, and both are up.
    fn linked(&self, a: usize, b: usize) -> bool {
        let (ia, ib) = (&self.incs[a], &self.incs[b]);
        match (&ia.id, &ib.id) {
            (Some(ida), Some(idb)) => {
                self.alive(a) && self.alive(b) && ia.peers.contains(idb) && ib.peers.contains(ida)
            }
            _ => false,
        }
    }

    /// Incarnations running now (and ready).
    fn up(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter_map(|s| s.current)
            .filter(|&i| self.ready(i))
            .collect()
    }

    /// The other incarnations in `inc`'s connected component.
    fn component(&self, inc: usize) -> Vec<usize> {
        let up = self.up();
        let mut seen: HashSet<usize> = HashSet::from([inc]);
        let mut stack = vec![inc];
        while let Some(a) = stack.pop() {
            let Some(ida) = self.incs[a].id.as_ref() else {
                continue;
            };
            for peer in &self.incs[a].peers {
                if let Some(&b) = self.ids.get(peer) {
                    if up.contains(&b) && !seen.contains(&b) && self.incs[b].peers.contains(ida) {
                        seen.insert(b);
                        stack.push(b);
                    }
                }
            }
        }
        seen.remove(&inc);
        let mut v: Vec<usize> = seen.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// Marks `inc` as stopped by us now; SIGKILL unless `graceful` (then `/quit`).
    fn stop(&mut self, inc: usize, graceful: bool) {
        let now = self.now();
        if self.incs[inc].ended.is_none() {
            self.incs[inc].ended = Some(now);
        }
        self.incs[inc].stopped_by_us = true;
        self.sample_one(inc, now);
        if graceful {
            self.write(inc, "/quit");
            if let Some(p) = self.incs[inc].proc.as_mut() {
                p.stdin = None;
            }
        } else if let Some(p) = self.incs[inc].proc.as_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Whether a stopped process has exited (reaping it); records a bad exit status.
    fn exited(&mut self, inc: usize) -> bool {
        let label = self.label(self.incs[inc].slot);
        let Some(p) = self.incs[inc].proc.as_mut() else {
            return true;
        };
        match p.child.try_wait() {
            Ok(Some(status)) => {
                let killed = status.code().is_none();
                if !status.success() && !killed && !self.incs[inc].python {
                    self.failures.push(format!(
                        "{label} exited with {} after /quit",
                        util::describe_status(status)
                    ));
                }
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    // -- the event loop -------------------------------------------------------------------------

    /// Handles events for up to `timeout` (and reads memory when due).
    fn step(&mut self, timeout: f64) {
        let now = self.now();
        if now >= self.next_mem {
            self.sample_memory(now);
            self.next_mem = now + MEM_EVERY;
        }
        let wait = timeout.min(self.next_mem - now).clamp(0.0, 1.0);
        match self.rx.recv_timeout(Duration::from_secs_f64(wait)) {
            Ok(ev) => self.handle(ev),
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for _ in 0..10_000 {
            match self.rx.try_recv() {
                Ok(ev) => self.handle(ev),
                Err(_) => break,
            }
        }
    }

    /// Handles events until `cond` holds or `secs` pass; returns whether it held.
    fn wait_for(&mut self, secs: f64, cond: impl Fn(&Soak) -> bool) -> bool {
        let deadline = self.now() + secs;
        loop {
            if cond(self) {
                return true;
            }
            let left = deadline - self.now();
            if left <= 0.0 {
                return false;
            }
            self.step(left);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Out { inc, at, out } => {
                let at = at.duration_since(self.start).as_secs_f64();
                self.handle_out(inc, at, out);
            }
            Ev::Stderr { inc, line } => self.handle_stderr(inc, &line),
            Ev::Closed { inc } => {
                self.incs[inc].closed = true;
                if !self.incs[inc].stopped_by_us {
                    let now = self.now();
                    self.incs[inc].ended = Some(now);
                    let slot = self.incs[inc].slot;
                    let what = format!(
                        "{} (incarnation {inc}) exited on its own at {now:.1}s",
                        self.label(slot)
                    );
                    if self.incs[inc].python {
                        self.notes.push(what);
                    } else {
                        self.failures.push(what);
                    }
                }
            }
        }
    }

    fn handle_out(&mut self, inc: usize, at: f64, out: Out) {
        let slot = self.incs[inc].slot;
        match out {
            Out::Ready { id, port } => {
                if self.slots[slot].port == 0 {
                    self.slots[slot].port = port.unwrap_or(0);
                }
                self.ids.insert(id.clone(), inc);
                self.incs[inc].id = Some(id);
            }
            Out::Connected(peer) => {
                self.incs[inc].peers.insert(peer);
            }
            Out::Disconnected(peer) => {
                self.incs[inc].peers.remove(&peer);
                // A link to a node that is up (from both ends' view) went down.
                if let Some(&other) = self.ids.get(&peer) {
                    if self.alive(other) && self.alive(inc) && self.end == 0.0 {
                        if self.disconnect_examples.len() < 5 {
                            let (a, b) = (self.label(slot), self.label(self.incs[other].slot));
                            self.disconnect_examples.push(format!(
                                "{at:.1}s: {a} (incarnation {inc}) lost {b} (incarnation {other})"
                            ));
                        }
                        if self.incs[inc].python || self.incs[other].python {
                            self.python_disconnects += 1;
                        } else {
                            self.rust_disconnects += 1;
                        }
                    }
                }
            }
            Out::Message {
                sender,
                payload,
                id,
                time,
            } => self.handle_message(inc, at, &sender, &payload, (&id, time)),
            Out::Error(message) => {
                self.node_errors.add(slot, &message);
            }
            Out::Other => {}
        }
    }

    fn handle_message(
        &mut self,
        inc: usize,
        at: f64,
        sender: &str,
        payload: &str,
        (id, time): (&str, u64),
    ) {
        let seq = payload
            .strip_prefix("soak ")
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse::<u64>().ok());
        let Some(seq) = seq else {
            self.corrupt.push(format!(
                "{} printed a message that is not ours: {:.80}",
                self.label(self.incs[inc].slot),
                payload
            ));
            return;
        };
        if let Some(&(hash, from)) = self.payloads.get(&seq) {
            let right_sender = self.incs[from].id.as_deref() == Some(sender);
            if hash != util::fnv1a64(payload.as_bytes()) || !right_sender {
                self.corrupt.push(format!(
                    "{} printed message {seq} with {}",
                    self.label(self.incs[inc].slot),
                    if right_sender {
                        "another payload"
                    } else {
                        "another sender"
                    }
                ));
                return;
            }
        }
        if let Some(got) = self.markers.get_mut(&seq) {
            got.insert(inc);
        }
        // What a duplicate looked like: the same message again, or one stamped anew.
        let stamp = (time, util::fnv1a64(id.as_bytes()));
        if let Some(&(t1, id1)) = self.first_stamp.get(&(seq, inc)) {
            if self.duplicate_details.len() < 10 {
                self.duplicate_details.push(format!(
                    "message {seq} printed again by {} at {at:.1} s: stamped {t1} then {time}, \
                     {}",
                    self.label(self.incs[inc].slot),
                    if id1 == stamp.1 {
                        "same id"
                    } else {
                        "another id"
                    }
                ));
            }
        } else {
            self.first_stamp.insert((seq, inc), stamp);
        }
        self.deliveries.push(Delivery {
            seq,
            receiver: inc,
            at,
        });
    }

    fn handle_stderr(&mut self, inc: usize, line: &str) {
        let slot = self.incs[inc].slot;
        let label = self.label(slot);
        let file = self
            .log_files
            .entry(slot)
            .or_insert_with(|| fs::File::create(self.logs_dir.join(format!("{label}.log"))).ok());
        if let Some(file) = file {
            let _ = writeln!(file, "[inc {inc}] {line}");
        }
        let python = self.incs[inc].python;
        let level = if python {
            account::classify_python(line)
        } else {
            account::classify_rust(line)
        };
        let logs = if python {
            &mut self.python_logs
        } else {
            &mut self.rust_logs
        };
        match level {
            Some(Level::Error) => logs[0].add(slot, line),
            Some(Level::Warn) => logs[1].add(slot, line),
            None => {}
        }
    }

    // -- memory ---------------------------------------------------------------------------------

    fn sample_one(&mut self, inc: usize, at: f64) {
        let Some(p) = self.incs[inc].proc.as_ref() else {
            return;
        };
        let pid = p.child.id();
        if let Some((rss_kib, hwm_kib)) = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|t| account::parse_status(&t))
        {
            self.incs[inc].mem.push(MemSample {
                at,
                rss_kib,
                hwm_kib,
            });
        }
    }

    fn sample_memory(&mut self, at: f64) {
        for inc in 0..self.incs.len() {
            if self.alive(inc) {
                self.sample_one(inc, at);
            }
        }
    }

    // -- the run --------------------------------------------------------------------------------

    fn run_all(&mut self) -> Result<()> {
        self.start_mesh()?;
        self.run_traffic();
        self.finish_restart();
        self.final_markers();
        Ok(())
    }

    /// Starts every node (each dialling its earlier neighbours) and waits until every planned
    /// link is up at both ends.
    fn start_mesh(&mut self) -> Result<()> {
        for slot in 0..self.slots.len() {
            let connect: Vec<u16> = self.slots[slot]
                .neighbours
                .iter()
                .filter(|&&n| n < slot)
                .map(|&n| self.slots[n].port)
                .collect();
            let inc = self.spawn(slot, &connect)?;
            if !self.wait_for(STEP_TIMEOUT, |s| s.ready(inc) || s.incs[inc].closed)
                || !self.ready(inc)
            {
                return Err(err!(
                    "{} did not print `ready` (see {})",
                    self.label(slot),
                    self.logs_dir.display()
                ));
            }
        }
        let edges: Vec<(usize, usize)> = (0..self.slots.len())
            .flat_map(|a| {
                self.slots[a]
                    .neighbours
                    .iter()
                    .filter(move |&&b| b > a)
                    .map(move |&b| (a, b))
            })
            .collect();
        let all_linked = |s: &Soak, python: bool| {
            edges.iter().all(|&(a, b)| {
                (!python && (s.slots[a].python || s.slots[b].python))
                    || s.linked(
                        s.slots[a].current.unwrap_or(0),
                        s.slots[b].current.unwrap_or(0),
                    )
            })
        };
        if !self.wait_for(STEP_TIMEOUT, |s| all_linked(s, true)) {
            if !all_linked(self, false) {
                return Err(err!(
                    "the Rust nodes did not link up within {STEP_TIMEOUT} s"
                ));
            }
            self.notes
                .push("the Python node's planned links were not all up at the start".into());
        }
        let now = self.now();
        self.traffic = (now, now + self.traffic.1);
        for slot in 0..self.slots.len() {
            let rate = self.rate_of(slot);
            self.slots[slot].next_send = now + self.next_gap(rate);
        }
        self.restart = Restart::Idle {
            at: now + self.next_gap(1.0 / self.restart_every.max(f64::MIN_POSITIVE)),
        };
        if self.restart_every == 0.0 {
            self.restart = Restart::Idle { at: f64::INFINITY };
        }
        println!(
            "soak: {} nodes up and linked in {:.1}s; traffic for {:.0}s",
            self.slots.len(),
            now,
            self.traffic.1 - self.traffic.0
        );
        Ok(())
    }

    fn rate_of(&self, slot: usize) -> f64 {
        if self.slots[slot].python {
            self.python_rate
        } else {
            self.rate
        }
    }

    fn next_gap(&mut self, rate: f64) -> f64 {
        if rate <= 0.0 {
            f64::INFINITY
        } else {
            self.rng.exp(1.0 / rate)
        }
    }

    /// Hands a broadcast to `inc`; returns its number.
    fn broadcast(&mut self, inc: usize, kind: &str) -> Option<u64> {
        let seq = self.next_seq;
        let slot = self.incs[inc].slot;
        let size = self.rng.below(self.max_size.max(1) + 1);
        let mut payload = format!("soak {seq} {slot} {kind} ");
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        while payload.len() < size {
            payload.push(CHARS[self.rng.below(CHARS.len())] as char);
        }
        let at = self.now();
        let reachable = self.component(inc);
        let up = self.up().len().saturating_sub(1);
        if !self.write(inc, &payload) {
            return None;
        }
        self.next_seq += 1;
        self.payloads
            .insert(seq, (util::fnv1a64(payload.as_bytes()), inc));
        self.sent.push(Sent {
            seq,
            sender: inc,
            at,
            reachable,
            up,
        });
        Some(seq)
    }

    fn restarting(&self) -> Option<usize> {
        match self.restart {
            Restart::Idle { .. } => None,
            Restart::Flushing { slot, .. }
            | Restart::Down { slot, .. }
            | Restart::Joining { slot, .. } => Some(slot),
        }
    }

    fn run_traffic(&mut self) {
        let mut last_print = self.now();
        loop {
            let now = self.now();
            if now >= self.traffic.1 {
                break;
            }
            let busy = self.restarting();
            for slot in 0..self.slots.len() {
                if self.slots[slot].next_send > now {
                    continue;
                }
                let rate = self.rate_of(slot);
                self.slots[slot].next_send = now + self.next_gap(rate);
                let Some(inc) = self.slots[slot].current else {
                    continue;
                };
                if busy == Some(slot) || !self.ready(inc) || self.incs[inc].peers.is_empty() {
                    continue;
                }
                self.broadcast(inc, "m");
            }
            self.restart_step(now);
            if now - last_print >= 30.0 {
                last_print = now;
                println!(
                    "soak: {:.0}s of {:.0}s, {} sent, {} lines, {} restarts",
                    now - self.traffic.0,
                    self.traffic.1 - self.traffic.0,
                    self.sent.len(),
                    self.deliveries.len(),
                    self.restarts.len()
                );
            }
            let mut next = self.traffic.1;
            for s in &self.slots {
                next = next.min(s.next_send);
            }
            next = next.min(match self.restart {
                Restart::Idle { at } => at,
                Restart::Down { until, .. } => until,
                _ => now + 0.05,
            });
            self.step((next - self.now()).max(0.0));
        }
    }

    /// One move of the restart machine, when its time or its event has come.
    fn restart_step(&mut self, now: f64) {
        match self.restart {
            Restart::Idle { at } => {
                if now < at {
                    return;
                }
                let candidates: Vec<usize> = (0..self.slots.len())
                    .filter(|&s| {
                        !self.slots[s].python
                            && self.slots[s].current.is_some_and(|i| self.ready(i))
                    })
                    .collect();
                if candidates.is_empty() {
                    self.restart = Restart::Idle { at: now + 1.0 };
                    return;
                }
                let slot = candidates[self.rng.below(candidates.len())];
                let inc = self.slots[slot].current.unwrap_or_default();
                match self.broadcast(inc, "flush") {
                    Some(marker) => {
                        self.markers.insert(marker, HashSet::new());
                        self.restart = Restart::Flushing {
                            slot,
                            inc,
                            marker,
                            deadline: now + MARKER_TIMEOUT,
                        };
                    }
                    None => self.restart = Restart::Idle { at: now + 1.0 },
                }
            }
            Restart::Flushing {
                slot,
                inc,
                marker,
                deadline,
            } => {
                if !self.marker_reached_rust(marker) && now < deadline {
                    return;
                }
                if now >= deadline {
                    self.notes.push(format!(
                        "the flush marker of {} did not reach every Rust node within {MARKER_TIMEOUT} s",
                        self.label(slot)
                    ));
                }
                let graceful = self.rng.below(2) == 0;
                self.stop(inc, graceful);
                let down = 0.2 + self.rng.unit() * 2.8;
                self.restarts.push(RestartRecord {
                    slot,
                    graceful,
                    down_s: down,
                    rejoin_s: None,
                });
                self.restart = Restart::Down {
                    slot,
                    inc,
                    until: now + down,
                    deadline: now + STEP_TIMEOUT,
                    attempts: 0,
                };
            }
            Restart::Down {
                slot,
                inc,
                until,
                deadline,
                attempts,
            } => {
                if now < until {
                    return;
                }
                if !self.exited(inc) {
                    if now < deadline {
                        return;
                    }
                    self.failures.push(format!(
                        "{} did not exit within {STEP_TIMEOUT} s of /quit",
                        self.label(slot)
                    ));
                    if let Some(p) = self.incs[inc].proc.as_mut() {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                    }
                }
                let connect: Vec<u16> = self.slots[slot]
                    .neighbours
                    .clone()
                    .into_iter()
                    .filter(|&n| self.slots[n].current.is_some_and(|i| self.ready(i)))
                    .map(|n| self.slots[n].port)
                    .collect();
                match self.spawn(slot, &connect) {
                    Ok(new) => {
                        self.restart = Restart::Joining {
                            slot,
                            inc: new,
                            since: now,
                            deadline: now + STEP_TIMEOUT,
                        }
                    }
                    Err(e) if attempts < 3 => {
                        self.notes
                            .push(format!("restart of {}: {e}", self.label(slot)));
                        self.restart = Restart::Down {
                            slot,
                            inc,
                            until: now + 1.0,
                            deadline,
                            attempts: attempts + 1,
                        };
                    }
                    Err(e) => {
                        self.failures
                            .push(format!("cannot restart {}: {e}", self.label(slot)));
                        self.restart = Restart::Idle { at: f64::INFINITY };
                    }
                }
            }
            Restart::Joining {
                slot,
                inc,
                since,
                deadline,
            } => {
                let joined = self.ready(inc)
                    && self.slots[slot].neighbours.iter().all(|&n| {
                        self.slots[n].python
                            || self.slots[n]
                                .current
                                .is_none_or(|i| !self.ready(i) || self.linked(inc, i))
                    });
                if joined {
                    if let Some(r) = self.restarts.last_mut() {
                        r.rejoin_s = Some(now - since);
                    }
                } else if self.incs[inc].closed || now >= deadline {
                    self.failures.push(format!(
                        "{} (incarnation {inc}) did not rejoin its neighbours within {STEP_TIMEOUT} s of its restart",
                        self.label(slot)
                    ));
                } else {
                    return;
                }
                let gap = self.rng.exp(self.restart_every);
                self.restart = Restart::Idle {
                    at: if now >= self.traffic.1 {
                        f64::INFINITY
                    } else {
                        now + gap
                    },
                };
            }
        }
    }

    /// Whether every Rust node that the marker's sender could reach has printed it.
    fn marker_reached_rust(&self, marker: u64) -> bool {
        let Some(got) = self.markers.get(&marker) else {
            return true;
        };
        let Some(s) = self.sent.iter().rev().find(|s| s.seq == marker) else {
            return true;
        };
        s.reachable
            .iter()
            .all(|&r| self.incs[r].python || !self.alive(r) || got.contains(&r))
    }

    /// After the traffic: a restart under way is finished (a node about to be stopped is not).
    fn finish_restart(&mut self) {
        if let Restart::Flushing { .. } | Restart::Idle { .. } = self.restart {
            self.restart = Restart::Idle { at: f64::INFINITY };
            return;
        }
        let deadline = self.now() + 2.0 * STEP_TIMEOUT;
        while !matches!(self.restart, Restart::Idle { .. }) && self.now() < deadline {
            let now = self.now();
            self.restart_step(now);
            self.step(0.05);
        }
        self.restart = Restart::Idle { at: f64::INFINITY };
    }

    /// Every node broadcasts a marker; waits until the markers have gone everywhere.
    fn final_markers(&mut self) {
        let mut finals = Vec::new();
        for inc in self.up() {
            if let Some(seq) = self.broadcast(inc, "final") {
                self.markers.insert(seq, HashSet::new());
                finals.push(seq);
            }
        }
        let all_in = |s: &Soak, with_python: bool| {
            finals.iter().all(|m| {
                let Some(sent) = s.sent.iter().rev().find(|x| x.seq == *m) else {
                    return true;
                };
                let from_python = s.incs[sent.sender].python;
                let got = &s.markers[m];
                sent.reachable.iter().all(|&r| {
                    (!with_python && (from_python || s.incs[r].python))
                        || !s.alive(r)
                        || got.contains(&r)
                })
            })
        };
        let started = self.now();
        if !self.wait_for(MARKER_TIMEOUT, |s| all_in(s, false)) {
            self.failures.push(format!(
                "the final markers did not reach every Rust node within {MARKER_TIMEOUT} s"
            ));
        } else if !self.wait_for(10.0, |s| all_in(s, true)) {
            self.notes.push(
                "the final markers to or from the Python node did not all arrive within 10 s \
                 of the Rust ones"
                    .into(),
            );
        }
        self.end = self.now();
        println!(
            "soak: traffic stopped; final markers settled in {:.1}s",
            self.end - started
        );
    }

    /// Stops every node (`/quit`, then SIGKILL for stragglers) and drains their output.
    fn stop_all(&mut self) {
        if self.end == 0.0 {
            self.end = self.now();
        }
        let running: Vec<usize> = (0..self.incs.len())
            .filter(|&i| self.incs[i].proc.is_some() && self.incs[i].ended.is_none())
            .collect();
        let now = self.now();
        self.sample_memory(now);
        for &inc in &running {
            self.incs[inc].stopped_by_us = true;
            self.write(inc, "/quit");
            if let Some(p) = self.incs[inc].proc.as_mut() {
                p.stdin = None;
            }
        }
        let deadline = self.now() + 10.0;
        let mut waiting = running.clone();
        while !waiting.is_empty() && self.now() < deadline {
            waiting.retain(|&inc| !self.exited_at_end(inc));
            self.step(0.05);
        }
        for inc in waiting {
            let label = self.label(self.incs[inc].slot);
            if !self.incs[inc].python {
                self.failures
                    .push(format!("{label} did not exit within 10 s of /quit"));
            } else {
                self.notes
                    .push(format!("{label} did not exit within 10 s of /quit"));
            }
            if let Some(p) = self.incs[inc].proc.as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        for i in 0..self.incs.len() {
            if let Some(p) = self.incs[i].proc.as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        self.wait_for(5.0, |s| s.incs.iter().all(|i| i.closed));
    }

    fn exited_at_end(&mut self, inc: usize) -> bool {
        let label = self.label(self.incs[inc].slot);
        let python = self.incs[inc].python;
        let Some(p) = self.incs[inc].proc.as_mut() else {
            return true;
        };
        match p.child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    let what = format!(
                        "{label} exited with {} after the final /quit",
                        util::describe_status(status)
                    );
                    if python {
                        self.notes.push(what);
                    } else {
                        self.failures.push(what);
                    }
                }
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    // -- the report -----------------------------------------------------------------------------

    fn report(&self, args: &SoakArgs, error: Option<crate::util::Error>) -> Report {
        let incs: Vec<Incarnation> = self
            .incs
            .iter()
            .map(|i| Incarnation {
                node: i.slot,
                python: i.python,
                started: i.started,
                ended: i.ended.filter(|&e| e < self.end),
            })
            .collect();
        let tally = account::account(&incs, &self.sent, &self.deliveries);
        let mut failures = self.failures.clone();
        if let Some(e) = &error {
            failures.insert(0, format!("the run stopped early: {e}"));
        }
        if tally.rust_rust.lost > 0 {
            failures.push(format!(
                "{} Rust-to-Rust deliveries lost",
                tally.rust_rust.lost
            ));
        }
        if tally.duplicates > 0 {
            failures.push(format!("{} duplicate deliveries", tally.duplicates));
        }
        if tally.unknown + tally.to_self > 0 || !self.corrupt.is_empty() {
            failures.push(format!(
                "{} corrupted, {} unknown and {} echoed messages",
                self.corrupt.len(),
                tally.unknown,
                tally.to_self
            ));
        }
        if self.rust_logs[0].count > 0 {
            failures.push(format!(
                "{} ERROR lines from Rust nodes",
                self.rust_logs[0].count
            ));
        }
        let traffic_s = self.traffic.1 - self.traffic.0;
        let warm = WARM_UP.min(traffic_s / 2.0);
        let min_len = (traffic_s / 4.0).min(60.0);
        let mut memory = Vec::new();
        for (slot, s) in self.slots.iter().enumerate() {
            let mine: Vec<&Inc> = self.incs.iter().filter(|i| i.slot == slot).collect();
            let peak = mine
                .iter()
                .flat_map(|i| i.mem.iter().map(|m| m.hwm_kib))
                .max()
                .unwrap_or(0);
            // The process of this slot with the longest steady window.
            let longest = mine
                .iter()
                .filter_map(|i| {
                    let w =
                        account::steady_window(i.started, i.ended, self.traffic, warm, min_len)?;
                    Some((w, account::trend(&i.mem, w.0, w.1)?))
                })
                .max_by(|a, b| (a.0 .1 - a.0 .0).total_cmp(&(b.0 .1 - b.0 .0)));
            let trend = longest.map(|(_, t)| t);
            let window = longest.map(|((a, b), _)| (a - self.traffic.0, b - self.traffic.0));
            if let Some(t) = trend {
                if !s.python && t.grew(args.max_growth_kib as f64, 0.2) {
                    failures.push(format!(
                        "{}: memory grew by {:.0} KiB ({:.0} → {:.0} KiB)",
                        self.label(slot),
                        t.growth_kib(),
                        t.first_kib,
                        t.last_kib
                    ));
                }
            }
            memory.push(MemRow {
                label: self.label(slot),
                python: s.python,
                incarnations: mine.len(),
                peak_kib: peak,
                trend,
                window,
            });
        }
        Report {
            command: command_line(args),
            date: utc_now(),
            machine: machine(),
            slots: self.slots.len(),
            python: self.python.is_some(),
            traffic_s,
            settle_s: self.end - self.traffic.1,
            warm,
            tally,
            restarts: self
                .restarts
                .iter()
                .map(|r| (r.slot, r.graceful, r.down_s, r.rejoin_s))
                .collect(),
            memory,
            rust_logs: self.rust_logs.clone(),
            python_logs: self.python_logs.clone(),
            node_errors: self.node_errors.clone(),
            rust_disconnects: self.rust_disconnects,
            python_disconnects: self.python_disconnects,
            corrupt: self.corrupt.iter().take(5).cloned().collect(),
            notes: self
                .notes
                .iter()
                .cloned()
                .chain(
                    self.disconnect_examples
                        .iter()
                        .map(|d| format!("link lost between nodes both up: {d}")),
                )
                .chain(
                    self.duplicate_details
                        .iter()
                        .map(|d| format!("duplicate: {d}")),
                )
                .collect(),
            failures,
            max_growth_kib: args.max_growth_kib,
            stopped_early: error.map(|e| e.to_string()),
        }
    }
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

fn command_line(args: &SoakArgs) -> String {
    let mut s = format!(
        "cargo xtask soak --minutes {} --nodes {} --seed {} --rate {} --python-rate {} \
         --restart-every {} --max-size {}",
        args.minutes,
        args.nodes,
        args.seed,
        args.rate,
        args.python_rate,
        args.restart_every,
        args.max_size
    );
    if args.no_python {
        s.push_str(" --no-python");
    }
    s
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{} {:02}:{:02} UTC",
        util::utc_date_today(),
        secs % 86_400 / 3600,
        secs % 3600 / 60
    )
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores (shared with other work)")
}

/// One node's memory figures.
struct MemRow {
    label: String,
    python: bool,
    incarnations: usize,
    peak_kib: u64,
    trend: Option<account::Trend>,
    /// The window of the trend, seconds of traffic.
    window: Option<(f64, f64)>,
}

/// Everything the report says.
struct Report {
    command: String,
    date: String,
    machine: String,
    slots: usize,
    python: bool,
    traffic_s: f64,
    settle_s: f64,
    warm: f64,
    tally: Tally,
    restarts: Vec<(usize, bool, f64, Option<f64>)>,
    memory: Vec<MemRow>,
    rust_logs: [LogTally; 2],
    python_logs: [LogTally; 2],
    node_errors: LogTally,
    rust_disconnects: u64,
    python_disconnects: u64,
    corrupt: Vec<String>,
    notes: Vec<String>,
    failures: Vec<String>,
    max_growth_kib: u64,
    /// Why the run stopped before its end, if it did.
    stopped_early: Option<String>,
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

impl Report {
    /// The report as Markdown, its sections under headings `h` (`##` or `###`).
    fn render(&self, h: &str) -> String {
        let t = &self.tally;
        let mut o = String::new();
        let verdict = if self.failures.is_empty() {
            "PASS".to_string()
        } else {
            format!("FAIL ({})", self.failures.join("; "))
        };
        let _ = writeln!(o, "{h} Soak run of {}\n", self.date);
        let _ = writeln!(o, "- command: `{}`", self.command);
        let _ = writeln!(o, "- machine: {}", self.machine);
        let rust = self.slots - usize::from(self.python);
        let _ = writeln!(
            o,
            "- nodes: {rust} Rust (`py2p mesh`, release build){}; traffic for {:.0} s, then \
             {:.1} s until every final marker had arrived",
            if self.python {
                " + 1 Python (py2p 0.5.607 via interop/py_node.py, never restarted)"
            } else {
                ""
            },
            self.traffic_s,
            self.settle_s
        );
        let graceful = self.restarts.iter().filter(|r| r.1).count();
        let mut rejoin: Vec<f64> = self.restarts.iter().filter_map(|r| r.3).collect();
        rejoin.sort_by(f64::total_cmp);
        let _ = writeln!(
            o,
            "- restarts: {} ({} by `/quit`, {} by SIGKILL), down {:.1}–{:.1} s; linked again to \
             every neighbour after {}",
            self.restarts.len(),
            graceful,
            self.restarts.len() - graceful,
            self.restarts
                .iter()
                .map(|r| r.2)
                .fold(f64::INFINITY, f64::min)
                .min(99.0),
            self.restarts.iter().map(|r| r.2).fold(0.0, f64::max),
            if rejoin.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.2} s median, {:.2} s at most",
                    rejoin[rejoin.len() / 2],
                    rejoin[rejoin.len() - 1]
                )
            }
        );
        let _ = writeln!(o, "- **verdict: {verdict}**\n");

        let _ = writeln!(o, "{h}# Deliveries\n");
        let _ = writeln!(
            o,
            "{} broadcasts sent ({} by the Python node), {} message lines printed; \
             **{} duplicates**; {} corrupted, {} unknown, {} echoed to their sender; {} first \
             deliveries not owed (receiver joined later, stopped before the end, or was \
             unreachable); {} messages sent while the mesh was split.\n",
            t.sent,
            t.sent_by_python,
            t.lines,
            t.duplicates,
            self.corrupt.len(),
            t.unknown,
            t.to_self,
            t.extra,
            t.sent_while_split
        );
        let _ = writeln!(o, "| pairs | owed | delivered | lost |");
        let _ = writeln!(o, "|---|---:|---:|---:|");
        for (name, p) in [
            ("Rust → Rust", t.rust_rust),
            ("Python → Rust", t.from_python),
            ("Rust → Python", t.to_python),
        ] {
            if name != "Rust → Rust" && !self.python {
                continue;
            }
            let _ = writeln!(
                o,
                "| {name} | {} | {} | **{}** |",
                p.owed, p.delivered, p.lost
            );
        }
        let g = t.rust_rust_stopped;
        let _ = writeln!(
            o,
            "\nAlso checked, Rust → Rust to nodes stopped before the end: {} messages sent while \
             the receiver was reachable and no later than the last message of the same sender it \
             printed (links are FIFO, so it should have printed them): {} printed, **{} missing** \
             (reported, not a failure: a relay stopped mid-way can cut a node off).",
            g.owed, g.delivered, g.lost
        );
        if let Some((p50, p99, max)) = t.latency {
            let _ = writeln!(
                o,
                "\nSend-to-print latency of owed deliveries: p50 {:.1} ms, p99 {:.1} ms, max \
                 {:.1} ms.",
                p50 * 1e3,
                p99 * 1e3,
                max * 1e3
            );
        }
        let _ = writeln!(
            o,
            "\nOwed: the receiver was in the sender's connected component when the message was \
             sent (up, and linked through connections that both ends had reported) and stayed \
             up until the end of the run (every final marker printed everywhere). Links that \
             went down between nodes that were both up: {} Rust–Rust, {} involving the Python \
             node.",
            self.rust_disconnects, self.python_disconnects
        );
        if !t.lost_examples.is_empty() {
            let _ = writeln!(
                o,
                "\nLost ({} in all), some of them (message: from node → to node):",
                t.lost()
            );
            for l in &t.lost_examples {
                let _ = writeln!(o, "- {}: {} → {}", l.seq, l.from, l.to);
            }
        }
        if !t.duplicate_examples.is_empty() {
            let _ = writeln!(o, "\nDuplicates, some of them (message, printed by):");
            for (seq, node) in &t.duplicate_examples {
                let _ = writeln!(o, "- {seq}, node {node}");
            }
        }
        for c in &self.corrupt {
            let _ = writeln!(o, "- {c}");
        }

        let _ = writeln!(o, "\n{h}# Memory\n");
        let _ = writeln!(
            o,
            "Resident memory read from /proc every second. Trend: mean `VmRSS` of the first \
             and of the last quarter of a process's steady window (from {:.0} s after its start, \
             or after the traffic began, to its stop or the end of the traffic), for the \
             longest-lived process of each node; a Rust node fails the run when it grows by \
             more than {} KiB and 20%.\n",
            self.warm, self.max_growth_kib
        );
        let _ = writeln!(
            o,
            "| node | runs | peak (VmHWM) | trend window (s of traffic) | first quarter | last \
             quarter | growth |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|");
        for m in &self.memory {
            let (first, last, growth) = match m.trend {
                Some(t) => (
                    mib(t.first_kib),
                    mib(t.last_kib),
                    format!("{:+.0} KiB", t.growth_kib()),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let window = m
                .window
                .map_or("-".into(), |(a, b)| format!("{a:.0}–{b:.0}"));
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {window} | {first} | {last} | {growth} |",
                m.label,
                if m.python { " (Python)" } else { "" },
                m.incarnations,
                mib(m.peak_kib as f64)
            );
        }
        let rust_peaks: Vec<u64> = self
            .memory
            .iter()
            .filter(|m| !m.python)
            .map(|m| m.peak_kib)
            .collect();
        if let Some(max) = rust_peaks.iter().max() {
            let _ = writeln!(
                o,
                "\nRust nodes: peak {} at most, {} on average.",
                mib(*max as f64),
                mib(rust_peaks.iter().sum::<u64>() as f64 / rust_peaks.len() as f64)
            );
        }

        let _ = writeln!(o, "\n{h}# Errors and warnings logged\n");
        let _ = writeln!(
            o,
            "Rust nodes (stderr, RUST_LOG=warn): {} ERROR, {} WARN. Python node (stderr): {} \
             errors (daemon exceptions, tracebacks), {} warnings. `error` events on stdout: {}.",
            self.rust_logs[0].count,
            self.rust_logs[1].count,
            self.python_logs[0].count,
            self.python_logs[1].count,
            self.node_errors.count
        );
        let groups = [
            ("Rust ERROR", &self.rust_logs[0]),
            ("Rust WARN", &self.rust_logs[1]),
            ("Python error", &self.python_logs[0]),
            ("Python warning", &self.python_logs[1]),
            ("stdout error event", &self.node_errors),
        ];
        let any = groups.iter().any(|(_, g)| g.count > 0);
        if any {
            let _ = writeln!(o, "\n| kind | lines | first example |\n|---|---:|---|");
            for (name, g) in groups {
                for (count, line, node) in g.top(6) {
                    let mut line = line.replace('|', "\\|").replace('`', "'");
                    if line.len() > 160 {
                        let mut cut = 160;
                        while !line.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        line.truncate(cut);
                        line.push('…');
                    }
                    let _ = writeln!(o, "| {name} | {count} | node {node}: `{line}` |");
                }
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o, "\n{h}# Notes\n");
            for n in &self.notes {
                let _ = writeln!(o, "- {n}");
            }
        }
        o
    }
}

/// Puts `body` into docs/reliability.md, between `<!-- soak figures -->` and
/// `<!-- /soak figures -->` (the end marker is added the first time).
fn write_docs(body: &str) -> Result<()> {
    let path = util::repo_root().join("docs/reliability.md");
    let old = fs::read_to_string(&path).context(format_args!("cannot read {}", path.display()))?;
    let new = splice_docs(&old, body)
        .ok_or_else(|| err!("{} has no `<!-- soak figures -->` marker", path.display()))?;
    fs::write(&path, new).context(format_args!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

const BEGIN: &str = "<!-- soak figures -->";
const END: &str = "<!-- /soak figures -->";

/// The text with everything between the soak markers replaced by `body`; `None` without the
/// begin marker. Without an end marker the block ends at the next `## ` heading (or the end).
fn splice_docs(old: &str, body: &str) -> Option<String> {
    let start = old.find(BEGIN)?;
    let after = start + BEGIN.len();
    let rest = &old[after..];
    let stop = match rest.find(END) {
        Some(e) => after + e + END.len(),
        None => rest.find("\n## ").map_or(old.len(), |h| after + h + 1),
    };
    let tail = &old[stop..];
    Some(format!(
        "{}{BEGIN}\n\n{}\n{END}\n{}{}",
        &old[..start],
        body.trim_end(),
        if tail.starts_with('\n') || tail.is_empty() {
            ""
        } else {
            "\n"
        },
        tail
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_splice_keeps_other_sections() {
        let doc = "# R\n\n## Fuzzing\n\n<!-- fuzzing figures -->\n\n## Soak\n\nintro\n\n<!-- soak figures -->\n";
        let once = splice_docs(doc, "### run A\n").unwrap();
        assert!(once.contains("<!-- fuzzing figures -->"));
        assert!(
            once.contains("intro\n\n<!-- soak figures -->\n\n### run A\n<!-- /soak figures -->\n")
        );
        let twice = splice_docs(&once, "### run B").unwrap();
        assert!(!twice.contains("run A"));
        assert!(twice.contains("run B"));
        assert_eq!(twice.matches(END).count(), 1);

        // A section after the soak section survives even without an end marker.
        let doc = "## Soak\n<!-- soak figures -->\nold\n## Next\ntext\n";
        let s = splice_docs(doc, "new").unwrap();
        assert!(
            s.contains("new\n<!-- /soak figures -->\n\n## Next\ntext\n"),
            "{s}"
        );
        assert!(!s.contains("old"));
        assert!(splice_docs("no marker", "x").is_none());
    }

    #[test]
    fn node_lines_are_parsed() {
        match parse_out(r#"{"event":"ready","id":"abc","addr":"127.0.0.1:4444","protocol":"p"}"#) {
            Out::Ready { id, port } => assert_eq!((id.as_str(), port), ("abc", Some(4444))),
            o => panic!("{o:?}"),
        }
        match parse_out(
            r#"{"event":"message","kind":"broadcast","sender":"s","id":"i","time":1,"packets":["soak 3 1 m x"]}"#,
        ) {
            Out::Message {
                sender,
                payload,
                id,
                time,
            } => {
                assert_eq!((sender.as_str(), payload.as_str()), ("s", "soak 3 1 m x"));
                assert_eq!((id.as_str(), time), ("i", 1));
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            parse_out(r#"{"event":"message","kind":"whisper","sender":"s","packets":["x"]}"#),
            Out::Other
        ));
        assert!(matches!(parse_out("garbage"), Out::Error(_)));
        assert!(matches!(
            parse_out(r#"{"event":"disconnected","peer":"p"}"#),
            Out::Disconnected(p) if p == "p"
        ));
    }

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

    #[test]
    fn rng_is_seeded() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mean = (0..10_000).map(|_| a.exp(2.0)).sum::<f64>() / 10_000.0;
        assert!((mean - 2.0).abs() < 0.1, "{mean}");
        assert!((0..1000).all(|_| a.below(3) < 3));
    }
}
