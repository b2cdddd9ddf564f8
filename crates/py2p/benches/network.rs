//! Network benchmarks of `py2p`, compared with py2p 0.5.607 by `cargo xtask bench`
//! (the reference side is `interop/bench_reference_net.py`).
//!
//! Every measure runs on loopback, nodes in their default configuration (so two nodes
//! negotiate snappy, as two py2p nodes do), each run with fresh nodes:
//!
//! - `broadcast`: node B broadcasts N 200-byte messages to node A (a two-node network); the
//!   time from B's first `send` to A having `recv`'d all N, checked complete and in order.
//! - `cli`: two `py2p mesh` processes; M lines written to B's stdin as fast as the pipe
//!   takes them; the time until M `message` events were read from A's stdout (in order).
//! - `latency`: one message at a time (send, wait for it, repeat), one hop (A to B) and
//!   five hops (a line of six nodes made with `max_outgoing(0)`, each dialling its
//!   predecessor): p50 and p99.
//! - `memory`: a node in a fresh process; 1000 raw TCP connections each complete a py2p
//!   handshake (they send `whisper [handshake, id, protocol id, address, []]` and read
//!   everything the node sends), then the growth of the process's `VmRSS` over the idle
//!   node, per connection. The client sockets' own cost is kernel memory, not RSS. The
//!   baseline is taken with one idle connection open already (its first handshake pages in
//!   the code); idle means: the node sent all, its peer events were read, two ticks passed.
//! - `sync`: five sync nodes (four dial node 0, then they mesh by peer lists); node 1 sets
//!   K distinct keys; the time until every node has all K.
//! - `mesh`: meshes of 2, 4, 8, 16, 32 and 64 nodes in this process (every node dials node
//!   0, then they connect from peer lists); M = 10,000 200-byte broadcasts spread over all
//!   the nodes (broadcast `i` is sent by node `i mod n`); the time from the first send until
//!   every node holds every broadcast it did not send, and the duplicates received (must be
//!   0). A missing or duplicated message fails the measure.
//! - `conns`: the `memory` measure at 0, 10, 100, 250, 500 and 1,000 connections: the
//!   node's `VmRSS` growth against its number of idle connections.
//!
//! Each measure is repeated and the median of the runs is reported. Progress goes to stderr;
//! the last line of stdout is one flat JSON object with every result (keys such as
//! `broadcast.n1000.us_per_msg`), which `cargo xtask bench` reads.
//!
//! Usage: `cargo bench -p py2p --bench network -- [--quick] [--cli PATH] [--only NAMES] [--sizes N,N]`
//! where `PATH` is the `py2p` binary (default `target/release/py2p`; the `cli` measure is
//! skipped when it does not exist) and `NAMES` a comma-separated subset of
//! `broadcast,cli,latency,memory,sync,mesh,conns`. `--sizes N,N` replaces the broadcast measure's
//! message counts, `--mesh-sizes N,N` the mesh measure's node counts (to profile one size).

// A benchmark target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use py2p::{Encryption, MeshConfig, MeshConfigBuilder, MeshSocket, Protocol, SyncSocket};
use py2p_wire::{base58, Flag};
use serde_json::{Map, Value};
use sha2::{Digest, Sha384};

/// Errors of the benchmark: a message for a human.
type Result<T, E = String> = std::result::Result<T, E>;

/// A measure: runs, then adds its results to the report.
type Measure = fn(&Opts, &mut Map<String, Value>) -> Result<()>;

/// Size of every broadcast payload, in bytes.
const PAYLOAD: usize = 200;
/// A run gives up when no message arrived for this long (and reports what was delivered).
const STALL: Duration = Duration::from_secs(20);
/// How long nodes get to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Command-line options.
struct Opts {
    quick: bool,
    cli: PathBuf,
    only: Vec<String>,
    /// `--sizes N,N`: the broadcast measure's message counts instead of the default ones
    /// (for profiling one size).
    sizes: Vec<usize>,
    /// `--mesh-sizes N,N`: the mesh measure's node counts instead of the default ones.
    mesh_sizes: Vec<usize>,
}

impl Opts {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        quick: false,
        cli: workspace_root().join("target/release/py2p"),
        only: Vec::new(),
        sizes: Vec::new(),
        mesh_sizes: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--cli" => opts.cli = PathBuf::from(args.next().unwrap_or_default()),
            "--only" => {
                opts.only = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--sizes" => {
                opts.sizes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect()
            }
            "--mesh-sizes" => {
                opts.mesh_sizes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect()
            }
            "--child-memory" => {
                // Internal: the memory measure runs in a fresh process (see `memory`).
                let conns = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
                match memory_child(conns) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("memory: {e}");
                        std::process::exit(1);
                    }
                }
                return;
            }
            // `cargo bench` passes `--bench`; anything else is ignored too.
            _ => {}
        }
    }
    if std::env::var_os("PY2P_BENCH_LOG").is_some() {
        // Diagnostics: the library's `info` and above (disconnections and their reasons).
        if log::set_logger(&StderrLog).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    }
    let mut report = Map::new();
    report.insert("quick".into(), Value::Bool(opts.quick));
    let started = Instant::now();
    let mut failed = false;
    let mut section = |name: &str, f: Measure| {
        if !opts.wants(name) {
            return;
        }
        let t = Instant::now();
        eprintln!("== {name}");
        if let Err(e) = f(&opts, &mut report) {
            eprintln!("{name}: FAILED: {e}");
            report.insert(format!("{name}.error"), Value::String(e));
            failed = true;
        }
        eprintln!("== {name}: {:.1}s", t.elapsed().as_secs_f64());
    };
    section("broadcast", broadcast);
    section("cli", cli);
    section("latency", latency);
    section("memory", memory);
    section("sync", sync);
    section("mesh", mesh);
    section("conns", conns);
    report.insert(
        "elapsed_s".into(),
        num(round(started.elapsed().as_secs_f64(), 1)),
    );
    report.insert("ok".into(), Value::Bool(!failed));
    println!("{}", Value::Object(report));
}

// ---------------------------------------------------------------------------
// Helpers

/// A logger writing records to stderr (set `PY2P_BENCH_LOG` to turn it on).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("[{}] {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

/// The workspace root, two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn local() -> MeshConfigBuilder {
    MeshConfig::builder().bind(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A JSON number; integral values print without a fraction.
fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        return Value::from(x as i64);
    }
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn e<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// A 200-byte payload whose first 10 bytes are `seq` in decimal.
fn payload(seq: usize, buf: &mut [u8; PAYLOAD]) {
    let mut n = seq;
    for slot in buf[..10].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn payload_template() -> [u8; PAYLOAD] {
    let mut buf = [0u8; PAYLOAD];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = b"abcdefghijklmnopqrstuvwxyz"[i % 26];
    }
    buf[10] = b' ';
    buf
}

/// The sequence number at the start of a payload.
fn seq_of(p: &[u8]) -> Option<usize> {
    let digits = p.get(..10)?;
    digits.iter().try_fold(0usize, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + usize::from(d - b'0'))
    })
}

/// Two connected mesh nodes `(a, b)`, b having dialled a.
fn pair() -> Result<(MeshSocket, MeshSocket)> {
    let a = MeshSocket::bind(local().build()).map_err(e("bind"))?;
    let b = MeshSocket::bind(local().build()).map_err(e("bind"))?;
    b.connect(a.local_addr()).map_err(e("connect"))?;
    a.wait_for_peers(1, CONNECT_TIMEOUT).map_err(e("wait"))?;
    b.wait_for_peers(1, CONNECT_TIMEOUT).map_err(e("wait"))?;
    Ok((a, b))
}

// ---------------------------------------------------------------------------
// broadcast

/// One run: seconds until all were delivered (or the stall), delivered count, in order.
fn broadcast_run(n: usize) -> Result<(f64, usize, bool)> {
    let (a, b) = pair()?;
    let (secs, delivered, in_order) = thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let a = &a;
        let receiver = s.spawn(move || {
            let _ = ready_tx.send(());
            let mut delivered = 0usize;
            let mut in_order = true;
            while delivered < n {
                let Some(m) = a.recv_timeout(STALL) else {
                    break;
                };
                let p = m.packets();
                if p.len() != 1 || p[0].len() != PAYLOAD || seq_of(&p[0]) != Some(delivered) {
                    in_order = false;
                }
                delivered += 1;
            }
            (Instant::now(), delivered, in_order)
        });
        let _ = ready_rx.recv();
        let mut buf = payload_template();
        let start = Instant::now();
        for i in 0..n {
            payload(i, &mut buf);
            if b.send(&[&buf[..]]).is_err() {
                break;
            }
        }
        let (end, delivered, in_order) = receiver.join().unwrap_or((Instant::now(), 0, false));
        ((end - start).as_secs_f64(), delivered, in_order)
    });
    Ok((secs, delivered, in_order))
}

fn broadcast(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    // 500 and 2000 are the sizes py2p is measured at.
    let sizes: &[usize] = if !opts.sizes.is_empty() {
        &opts.sizes
    } else if opts.quick {
        &[500, 1_000, 2_000, 10_000, 100_000]
    } else {
        &[500, 1_000, 2_000, 10_000, 100_000, 1_000_000]
    };
    let runs_for = |n: usize| match (opts.quick, n) {
        (true, _) => 3,
        (false, 1_000_000) => 3,
        (false, _) => 5,
    };
    // Rounds interleave the sizes, so that a noisy moment does not hit one size only.
    let mut results: Vec<Vec<(f64, usize, bool)>> = vec![Vec::new(); sizes.len()];
    let rounds = sizes.iter().map(|&n| runs_for(n)).max().unwrap_or(0);
    for round in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            if round >= runs_for(n) {
                continue;
            }
            let r = broadcast_run(n)?;
            eprintln!(
                "broadcast n={n:>8} run {round}: {:8.3}s {:>10.0} msg/s {:6.2} us/msg delivered {}/{n}{}",
                r.0,
                n as f64 / r.0,
                r.0 * 1e6 / n as f64,
                r.1,
                if r.2 { "" } else { " OUT OF ORDER" }
            );
            results[i].push(r);
        }
    }
    let (_, b) = pair()?;
    if let Some(p) = b.peers().ok().and_then(|p| p.into_iter().next()) {
        out.insert(
            "broadcast.compression".into(),
            Value::String(p.compression.map_or("none".into(), |c| format!("{c:?}"))),
        );
    }
    for (&n, runs) in sizes.iter().zip(&results) {
        let secs: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let delivered = runs.iter().map(|r| r.1).min().unwrap_or(0);
        let in_order = runs.iter().all(|r| r.2 && r.1 == n);
        let s = median(&secs);
        let key = format!("broadcast.n{n}");
        out.insert(format!("{key}.runs"), num(runs.len() as f64));
        out.insert(
            format!("{key}.complete_runs"),
            num(runs.iter().filter(|r| r.2 && r.1 == n).count() as f64),
        );
        out.insert(format!("{key}.secs"), num(round(s, 6)));
        out.insert(format!("{key}.msg_per_s"), num(round(n as f64 / s, 0)));
        out.insert(
            format!("{key}.us_per_msg"),
            num(round(s * 1e6 / n as f64, 3)),
        );
        out.insert(format!("{key}.delivered"), num(delivered as f64));
        out.insert(format!("{key}.complete_in_order"), Value::Bool(in_order));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// cli

/// A `py2p mesh` child process with its stdin and a line reader on its stdout.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Node {
    fn spawn(bin: &Path, connect: Option<&str>) -> Result<Node> {
        let mut cmd = Command::new(bin);
        cmd.args(["mesh", "--bind", "127.0.0.1:0"]);
        if let Some(addr) = connect {
            cmd.args(["--connect", addr]);
        }
        let mut child = cmd
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(e(&format!("cannot start {}", bin.display())))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(|s| BufReader::with_capacity(1 << 16, s));
        Ok(Node {
            child,
            stdin,
            stdout,
        })
    }

    /// Reads lines until one contains `needle`; returns it.
    fn wait_for(&mut self, needle: &str) -> Result<String> {
        let out = self.stdout.as_mut().ok_or("no stdout")?;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).map_err(e("read"))? == 0 {
                return Err(format!("node exited before printing {needle}"));
            }
            if line.contains(needle) {
                return Ok(line);
            }
        }
    }

    /// Asks the node to quit, then kills it if it has not exited within 5 s.
    fn stop(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"/quit\n");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `"addr"` of a `ready` line.
fn ready_addr(line: &str) -> Result<String> {
    let v: Value = serde_json::from_str(line).map_err(e("ready line"))?;
    v.get("addr")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no addr in {line}"))
}

/// One run: seconds until M messages were printed by A, messages seen, in order.
fn cli_run(bin: &Path, m: usize) -> Result<(f64, usize, bool)> {
    let mut a = Node::spawn(bin, None)?;
    let addr = ready_addr(&a.wait_for("\"ready\"")?)?;
    let mut b = Node::spawn(bin, Some(&addr))?;
    b.wait_for("\"ready\"")?;
    b.wait_for("\"connected\"")?;
    a.wait_for("\"connected\"")?;

    let progress = Arc::new(AtomicUsize::new(0));
    let mut reader = a.stdout.take().ok_or("no stdout")?;
    let (done_tx, done_rx) = mpsc::channel();
    {
        let progress = progress.clone();
        thread::spawn(move || {
            let mut lines = Lines {
                seen: 0,
                in_order: true,
            };
            // Lines are read where they lie in the reader's buffer (only one cut by the
            // buffer's end is copied) and found with `memchr`'s vector search: the reader
            // competes with the nodes for the two cores, and `read_until` (core's word-wise
            // search, then a copy of each line) cost it 600 instructions per line.
            let mut cut = Vec::with_capacity(1024);
            while lines.seen < m {
                let buf = match reader.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(buf) => buf,
                };
                let mut rest = buf;
                while lines.seen < m {
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        break;
                    };
                    let (line, after) = rest.split_at(nl + 1);
                    rest = after;
                    if cut.is_empty() {
                        lines.check(line);
                    } else {
                        cut.extend_from_slice(line);
                        lines.check(&cut);
                        cut.clear();
                    }
                    progress.store(lines.seen, Ordering::Relaxed);
                }
                cut.extend_from_slice(rest);
                let n = buf.len();
                reader.consume(n);
            }
            let _ = done_tx.send((Instant::now(), lines.seen, lines.in_order));
        });
    }
    let mut stdin = b.stdin.take().ok_or("no stdin")?;
    let start = Instant::now();
    let writer = thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut stdin);
        let mut buf = payload_template();
        buf[PAYLOAD - 1] = b'\n';
        for i in 0..m {
            payload(i, &mut buf);
            if w.write_all(&buf).is_err() {
                break;
            }
        }
        let _ = w.flush();
        drop(w);
        stdin
    });
    let mut last = (0usize, Instant::now());
    let result = loop {
        match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => break r,
            Err(mpsc::RecvTimeoutError::Disconnected) => break (Instant::now(), 0, false),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let p = progress.load(Ordering::Relaxed);
                if p != last.0 {
                    last = (p, Instant::now());
                } else if last.1.elapsed() > STALL {
                    // Lost messages: stop the nodes, which ends the reader.
                    let _ = a.child.kill();
                    let _ = b.child.kill();
                }
            }
        }
    };
    b.stdin = writer.join().ok();
    a.stop();
    b.stop();
    Ok(((result.0 - start).as_secs_f64(), result.1, result.2))
}

/// The `message` lines the reader of a CLI run has seen, and whether they came in order.
struct Lines {
    seen: usize,
    in_order: bool,
}

impl Lines {
    /// Counts `line` (with its newline) if it is a `message` line, checking its sequence
    /// number.
    fn check(&mut self, line: &[u8]) {
        if !line.starts_with(MESSAGE_START) && !contains(line, b"\"event\":\"message\"") {
            return;
        }
        let seq = payload_start(line).and_then(|i| line.get(i..).and_then(seq_of));
        if seq != Some(self.seen) {
            self.in_order = false;
        }
        self.seen += 1;
    }
}

/// How the CLI's `message` lines start (the event key first).
const MESSAGE_START: &[u8] = b"{\"event\":\"message\"";

/// Where the payload of a `message` line starts: where a line of one 199-byte packet has it
/// (`..."packets":["PAYLOAD"]}\n`, checked), else after a search for `"packets":["`. The
/// reader competes with the nodes for the two cores: a search over every line cost it
/// 0.3 µs per line.
fn payload_start(line: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"packets\":[\"";
    let tail = b"\"]}\n".len() + PAYLOAD - 1;
    if let Some(key_at) = line.len().checked_sub(tail + KEY.len()) {
        if line.get(key_at..key_at + KEY.len()) == Some(KEY) {
            return Some(key_at + KEY.len());
        }
    }
    find(line, KEY).map(|i| i + KEY.len())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn cli(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    if !opts.cli.exists() {
        return Err(format!(
            "{} not found (build it with `cargo build --release -p py2p-cli`, or pass --cli)",
            opts.cli.display()
        ));
    }
    let m = if opts.quick { 20_000 } else { 100_000 };
    let runs = 3;
    let mut results = Vec::new();
    for run in 0..runs {
        let r = cli_run(&opts.cli, m)?;
        eprintln!(
            "cli m={m} run {run}: {:.3}s {:.0} lines/s, {}/{m} printed{}",
            r.0,
            m as f64 / r.0,
            r.1,
            if r.2 { "" } else { " OUT OF ORDER" }
        );
        results.push(r);
    }
    let s = median(&results.iter().map(|r| r.0).collect::<Vec<_>>());
    out.insert("cli.m".into(), num(m as f64));
    out.insert("cli.runs".into(), num(runs as f64));
    out.insert(
        "cli.complete_runs".into(),
        num(results.iter().filter(|r| r.2 && r.1 == m).count() as f64),
    );
    out.insert("cli.secs".into(), num(round(s, 6)));
    out.insert("cli.msg_per_s".into(), num(round(m as f64 / s, 0)));
    out.insert("cli.us_per_msg".into(), num(round(s * 1e6 / m as f64, 3)));
    out.insert(
        "cli.delivered".into(),
        num(results.iter().map(|r| r.1).min().unwrap_or(0) as f64),
    );
    out.insert(
        "cli.complete_in_order".into(),
        Value::Bool(results.iter().all(|r| r.2 && r.1 == m)),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// latency

/// Round-trip-free one-way latencies (µs, sorted) of `samples` messages sent one at a time
/// from `from` and received at `to`, after `warmup` unmeasured ones.
fn one_at_a_time(
    from: &MeshSocket,
    to: &MeshSocket,
    samples: usize,
    warmup: usize,
) -> Result<Vec<f64>> {
    let mut buf = payload_template();
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples + warmup {
        payload(i, &mut buf);
        let t = Instant::now();
        from.send(&[&buf[..]]).map_err(e("send"))?;
        let m = to
            .recv_timeout(Duration::from_secs(10))
            .ok_or_else(|| format!("message {i} lost"))?;
        let dt = t.elapsed().as_secs_f64() * 1e6;
        if m.packets().first().and_then(seq_of) != Some(i) {
            return Err(format!("message {i}: unexpected payload"));
        }
        if i >= warmup {
            out.push(dt);
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// A line of `n` nodes, each dialling its predecessor, none dialling from peer lists.
fn chain(n: usize) -> Result<Vec<MeshSocket>> {
    let mut nodes: Vec<MeshSocket> = Vec::new();
    for i in 0..n {
        let node = MeshSocket::bind(local().max_outgoing(0).build()).map_err(e("bind"))?;
        if let Some(prev) = nodes.last() {
            node.connect(prev.local_addr()).map_err(e("connect"))?;
            node.wait_for_peers(1, CONNECT_TIMEOUT).map_err(e("wait"))?;
            prev.wait_for_peers(if i == 1 { 1 } else { 2 }, CONNECT_TIMEOUT)
                .map_err(e("wait"))?;
        }
        nodes.push(node);
    }
    // The nodes in between relay and drop their own copy.
    for node in &nodes[1..n - 1] {
        node.register_handler(|_, _| true).map_err(e("handler"))?;
    }
    Ok(nodes)
}

fn latency(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    let samples = 2000;
    let runs = 3;
    let _ = opts;
    let mut one = (Vec::new(), Vec::new());
    let mut five = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (a, b) = pair()?;
        let l = one_at_a_time(&a, &b, samples, 100)?;
        eprintln!(
            "latency 1 hop run {run}: p50 {:.1} us, p99 {:.1} us",
            quantile(&l, 0.5),
            quantile(&l, 0.99)
        );
        one.0.push(quantile(&l, 0.5));
        one.1.push(quantile(&l, 0.99));
        drop((a, b));

        let nodes = chain(6)?;
        let peers: Vec<usize> = nodes
            .iter()
            .map(|n| n.peers().map(|p| p.len()).unwrap_or(0))
            .collect();
        if peers != [1, 2, 2, 2, 2, 1] {
            return Err(format!("the chain is not a line: peer counts {peers:?}"));
        }
        let l = one_at_a_time(&nodes[0], &nodes[5], samples, 100)?;
        eprintln!(
            "latency 5 hops run {run}: p50 {:.1} us, p99 {:.1} us",
            quantile(&l, 0.5),
            quantile(&l, 0.99)
        );
        five.0.push(quantile(&l, 0.5));
        five.1.push(quantile(&l, 0.99));
    }
    out.insert("latency.samples".into(), num(samples as f64));
    out.insert("latency.runs".into(), num(runs as f64));
    for (key, (p50, p99)) in [("hop1", one), ("hop5", five)] {
        out.insert(format!("latency.{key}.p50_us"), num(round(median(&p50), 1)));
        out.insert(format!("latency.{key}.p99_us"), num(round(median(&p99), 1)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// memory

/// This process's resident set size, in bytes.
fn vm_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(e("/proc/self/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS in /proc/self/status".into())
}

/// Reads whatever the node sent on every client; returns the bytes read.
fn drain(clients: &mut [TcpStream], buf: &mut [u8]) -> usize {
    let mut total = 0;
    for c in clients.iter_mut() {
        loop {
            match c.read(buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(_) => break,
            }
        }
    }
    total
}

/// A raw client that sends a py2p handshake as client number `i` (its id made from `i`).
fn handshake_client(addr: SocketAddr, protocol_id: &str, i: usize, now: u64) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr).map_err(e("connect"))?;
    // An id like a real one: base-58 of a sha-384 digest.
    let id = base58::encode_be_bytes(&Sha384::digest(format!("bench client {i}")));
    let handshake = vec![
        vec![Flag::HANDSHAKE.0],
        id.clone().into_bytes(),
        protocol_id.as_bytes().to_vec(),
        br#"["127.0.0.1", 1]"#.to_vec(),
        b"[]".to_vec(),
    ];
    let frame = py2p_wire::Message::new(vec![Flag::WHISPER.0], id.into_bytes(), handshake, now)
        .encode(None);
    s.write_all(&frame).map_err(e("write"))?;
    s.set_nonblocking(true).map_err(e("nonblocking"))?;
    Ok(s)
}

/// Waits until `node` has `n` peers, reading what it sends to `clients` meanwhile; returns
/// the bytes read.
fn await_peers(
    node: &MeshSocket,
    n: usize,
    clients: &mut [TcpStream],
    buf: &mut [u8],
) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut read = 0;
    loop {
        read += drain(clients, buf);
        let status = node.status().map_err(e("status"))?;
        if status.peers == n {
            return Ok(read);
        }
        if Instant::now() > deadline {
            return Err(format!("{} of {n} handshakes completed", status.peers));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Lets `node` go idle: reads until it has nothing more to say to `clients`, takes its peer
/// events (as a user reading them would), and waits two of its ticks (the timer that gives
/// back an idle connection's buffers). Returns the bytes read.
fn settle(node: &MeshSocket, clients: &mut [TcpStream], buf: &mut [u8]) -> usize {
    let mut read = 0;
    let mut quiet = 0;
    while quiet < 5 {
        let n = drain(clients, buf);
        read += n;
        quiet = if n == 0 { quiet + 1 } else { 0 };
        thread::sleep(Duration::from_millis(50));
    }
    while node.next_event(Duration::ZERO).is_some() {}
    thread::sleep(2 * py2p::NetConfig::default().tick_interval + Duration::from_millis(100));
    read + drain(clients, buf)
}

/// Runs in a fresh process (so that memory freed by other measures cannot hide the node's):
/// one node, `conns` raw connections with a handshake each. Prints a JSON line.
///
/// The baseline is taken with one connection already open and idle (not counted): the
/// first handshake pages in the code of the whole path (about 250 KiB of the binary) and
/// makes the node's first allocations, once per process, not per connection.
fn memory_child(conns: usize) -> Result<String> {
    let node = MeshSocket::bind(local().max_connections(conns + 64).build()).map_err(e("bind"))?;
    let addr = node.local_addr();
    let protocol_id = Protocol::new("mesh", Encryption::Plaintext).id();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut buf = vec![0u8; 1 << 16];
    let mut warm = vec![handshake_client(addr, &protocol_id, conns, now)?];
    await_peers(&node, 1, &mut warm, &mut buf)?;
    settle(&node, &mut warm, &mut buf);
    let before = vm_rss()?;
    let mut clients = Vec::with_capacity(conns);
    let mut read = 0usize;
    let start = Instant::now();
    for i in 0..conns {
        clients.push(handshake_client(addr, &protocol_id, i, now)?);
        if i % 64 == 63 {
            read += drain(&mut clients, &mut buf);
        }
    }
    read += await_peers(&node, conns + 1, &mut clients, &mut buf)?;
    let handshaken = start.elapsed().as_secs_f64();
    read += settle(&node, &mut clients, &mut buf);
    drain(&mut warm, &mut buf);
    let after = vm_rss()?;
    let status = node.status().map_err(e("status"))?;
    let mut o = Map::new();
    o.insert("conns".into(), num(conns as f64));
    o.insert("peers".into(), num(status.peers.saturating_sub(1) as f64));
    o.insert("rss_before".into(), num(before as f64));
    o.insert("rss_after".into(), num(after as f64));
    o.insert(
        "bytes_per_conn".into(),
        num(round(
            (after as f64 - before as f64) / conns.max(1) as f64,
            0,
        )),
    );
    o.insert("bytes_read_by_clients".into(), num(read as f64));
    o.insert("handshake_secs".into(), num(round(handshaken, 3)));
    drop(clients);
    drop(warm);
    Ok(Value::Object(o).to_string())
}

/// Runs [`memory_child`] with `conns` connections in a fresh process; returns its JSON.
fn memory_child_run(conns: usize) -> Result<Value> {
    let exe = std::env::current_exe().map_err(e("current_exe"))?;
    let output = Command::new(&exe)
        .args(["--child-memory", &conns.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(e("memory child"))?;
    if !output.status.success() {
        return Err(format!("memory child failed: {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).map_err(e("memory child output"))
}

fn memory(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    let conns = 1000;
    let runs = if opts.quick { 1 } else { 3 };
    let mut per_conn = Vec::new();
    let mut read = Vec::new();
    for run in 0..runs {
        let v = memory_child_run(conns)?;
        eprintln!("memory run {run}: {v}");
        per_conn.push(v["bytes_per_conn"].as_f64().unwrap_or(f64::NAN));
        read.push(v["bytes_read_by_clients"].as_f64().unwrap_or(f64::NAN));
    }
    out.insert("memory.conns".into(), num(conns as f64));
    out.insert("memory.runs".into(), num(runs as f64));
    out.insert(
        "memory.bytes_per_conn".into(),
        num(round(median(&per_conn), 0)),
    );
    out.insert(
        "memory.bytes_sent_per_conn".into(),
        num(round(median(&read) / conns as f64, 0)),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// sync

/// One run: seconds from the first set until all five nodes hold all `k` keys.
fn sync_run(k: usize) -> Result<f64> {
    let config = || {
        SyncSocket::config()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
    };
    let nodes: Vec<SyncSocket> = (0..5)
        .map(|_| SyncSocket::bind(config(), true))
        .collect::<Result<_, _>>()
        .map_err(e("bind"))?;
    for node in &nodes[1..] {
        node.connect(nodes[0].local_addr()).map_err(e("connect"))?;
    }
    nodes[0]
        .wait_for_peers(4, CONNECT_TIMEOUT)
        .map_err(e("wait"))?;
    // The others mesh from node 0's peer list; give them a moment (up to 2 s) to settle.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && !nodes
            .iter()
            .all(|n| n.peers().map(|p| p.len()).unwrap_or(0) == 4)
    {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(100));
    let value = [b'v'; 100];
    let start = Instant::now();
    for i in 0..k {
        nodes[1]
            .set(format!("key{i:08}"), value)
            .map_err(e("set"))?;
    }
    let mut last_progress = (0usize, Instant::now());
    loop {
        let have: usize = nodes.iter().map(|n| n.len().min(k)).sum();
        if have == 5 * k {
            break;
        }
        if have != last_progress.0 {
            last_progress = (have, Instant::now());
        } else if last_progress.1.elapsed() > STALL {
            return Err(format!("stalled with {have} of {} keys", 5 * k));
        }
        thread::sleep(Duration::from_micros(50));
    }
    let secs = start.elapsed().as_secs_f64();
    let last = format!("key{:08}", k - 1);
    if nodes
        .iter()
        .any(|n| n.get(&last).as_deref() != Some(&value[..]))
    {
        return Err("a node holds a wrong value".into());
    }
    Ok(secs)
}

fn sync(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    let k = if opts.quick { 1000 } else { 2000 };
    let runs = if opts.quick { 3 } else { 5 };
    let mut secs = Vec::new();
    for run in 0..runs {
        let s = sync_run(k)?;
        eprintln!("sync k={k} run {run}: {s:.3}s, {:.0} sets/s", k as f64 / s);
        secs.push(s);
    }
    let s = median(&secs);
    out.insert("sync.k".into(), num(k as f64));
    out.insert("sync.runs".into(), num(runs as f64));
    out.insert("sync.secs".into(), num(round(s, 6)));
    out.insert("sync.sets_per_s".into(), num(round(k as f64 / s, 0)));
    Ok(())
}

// ---------------------------------------------------------------------------
// conns: memory against the number of connections

fn conns(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    let counts = [0usize, 10, 100, 250, 500, 1000];
    let runs = if opts.quick { 1 } else { 3 };
    // Rounds interleave the counts, as in `broadcast`.
    let mut growth: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    for run in 0..runs {
        for (i, &c) in counts.iter().enumerate() {
            let v = memory_child_run(c)?;
            let before = v["rss_before"].as_f64().unwrap_or(f64::NAN);
            let after = v["rss_after"].as_f64().unwrap_or(f64::NAN);
            eprintln!(
                "conns n={c:>5} run {run}: VmRSS {:.0} KiB -> {:.0} KiB (+{:.0} KiB)",
                before / 1024.0,
                after / 1024.0,
                (after - before) / 1024.0
            );
            growth[i].push(after - before);
            rss[i].push(after);
        }
    }
    out.insert("conns.runs".into(), num(runs as f64));
    for (i, &c) in counts.iter().enumerate() {
        let key = format!("conns.n{c}");
        out.insert(
            format!("{key}.rss_growth"),
            num(round(median(&growth[i]), 0)),
        );
        out.insert(format!("{key}.rss"), num(round(median(&rss[i]), 0)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// mesh: delivery in meshes of 2 to 64 nodes

/// What one run of the mesh measure saw.
struct MeshRun {
    /// Seconds from the first send to the last first-time delivery.
    secs: f64,
    /// First-time deliveries, over all nodes.
    delivered: usize,
    /// Deliveries expected: every broadcast at every node but its sender.
    expected: usize,
    /// Messages received a second time, over all nodes.
    duplicates: usize,
    /// Nodes that received every broadcast they did not send.
    complete_nodes: usize,
    /// Connections in the mesh when the broadcasts started.
    links: usize,
}

/// `n` nodes on loopback: every node dials node 0, then they connect from peer lists.
/// Returns once the network is whole: in one round, a probe broadcast by every node
/// reached every other node.
fn mesh_network(n: usize) -> Result<Vec<MeshSocket>> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(MeshSocket::bind(local().build()).map_err(e("bind"))?);
    }
    let seed = nodes[0].local_addr();
    for node in &nodes[1..] {
        node.connect(seed).map_err(e("connect"))?;
    }
    nodes[0]
        .wait_for_peers(n - 1, CONNECT_TIMEOUT)
        .map_err(e("wait"))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut round = 0u32;
    loop {
        round += 1;
        for (j, node) in nodes.iter().enumerate() {
            node.send(&[format!("probe {round} {j}")])
                .map_err(e("probe"))?;
        }
        // Probes of this round seen by each node.
        let mut heard = vec![0usize; n];
        let round_deadline = Instant::now() + Duration::from_millis(500);
        while heard.iter().any(|h| *h < n - 1) && Instant::now() < round_deadline {
            for (i, node) in nodes.iter().enumerate() {
                while let Some(m) = node.recv_timeout(Duration::from_millis(1)) {
                    let text = m
                        .packets()
                        .first()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                    let mut words = text.as_deref().unwrap_or("").split(' ');
                    if words.next() == Some("probe")
                        && words.next().and_then(|r| r.parse().ok()) == Some(round)
                    {
                        heard[i] += 1;
                    }
                }
            }
        }
        if heard.iter().all(|h| *h >= n - 1) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the mesh of {n} did not become whole within {CONNECT_TIMEOUT:?}: in the last \
                 round, {} nodes heard every other node",
                heard.iter().filter(|h| **h >= n - 1).count()
            ));
        }
    }
    // Let the last probes and peer lists pass, then empty the inboxes.
    thread::sleep(Duration::from_millis(100));
    for node in &nodes {
        while node.recv_timeout(Duration::ZERO).is_some() {}
    }
    Ok(nodes)
}

/// Tells on stderr what an incomplete node of a mesh run is missing: how many broadcasts,
/// from which senders, the range of their numbers, and the node's counters.
fn mesh_diagnose(node: &MeshSocket, j: usize, n: usize, seen: &[bool]) {
    let missing: Vec<usize> = (0..seen.len())
        .filter(|&seq| seq % n != j && !seen[seq])
        .collect();
    let mut by_sender = vec![0usize; n];
    for seq in &missing {
        by_sender[seq % n] += 1;
    }
    let senders: Vec<String> = by_sender
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect();
    let status = node.status().ok();
    eprintln!(
        "mesh n={n}: node {j} misses {} broadcasts (numbers {:?}..={:?}; by sender {}); \
         peers {:?}, received {:?}, in its inbox {:?}, duplicates dropped {:?}, expired {:?}, \
         decode errors {:?}",
        missing.len(),
        missing.first(),
        missing.last(),
        senders.join(" "),
        status.as_ref().map(|s| s.peers),
        status.as_ref().map(|s| s.received),
        status.as_ref().map(|s| s.inbox),
        status.as_ref().map(|s| s.duplicates),
        status.as_ref().map(|s| s.expired),
        status.as_ref().map(|s| s.decode_errors),
    );
}

/// Broadcasts of the mesh run sent by node `j` of `n`, out of `m`.
fn sent_by(j: usize, n: usize, m: usize) -> usize {
    (j..m).step_by(n).count()
}

/// One run: `m` broadcasts spread over an `n`-node mesh (broadcast `i` from node `i mod n`).
fn mesh_run(n: usize, m: usize) -> Result<MeshRun> {
    let nodes = mesh_network(n)?;
    let links = nodes
        .iter()
        .map(|s| s.peers().map(|p| p.len()).unwrap_or(0))
        .sum::<usize>()
        / 2;
    let expected = m * (n - 1);
    let delivered = AtomicUsize::new(0);
    let epoch = Instant::now();
    // Microseconds since `epoch` of the latest first-time delivery.
    let last_us = std::sync::atomic::AtomicU64::new(0);
    let (duplicates, complete_nodes, start_us) = thread::scope(|s| {
        let mut receivers = Vec::with_capacity(n);
        for (j, node) in nodes.iter().enumerate() {
            let (delivered, last_us) = (&delivered, &last_us);
            receivers.push(s.spawn(move || {
                let mut seen = vec![false; m];
                let mut got = 0usize;
                let mut dups = 0usize;
                let mine = sent_by(j, n, m);
                loop {
                    match node.recv_timeout(Duration::from_millis(100)) {
                        Some(msg) => {
                            let Some(seq) = msg.packets().first().and_then(seq_of) else {
                                continue;
                            };
                            if seq >= m || seq % n == j || seen[seq] {
                                // Its own broadcast coming back counts as a duplicate too.
                                dups += 1;
                                continue;
                            }
                            seen[seq] = true;
                            got += 1;
                            delivered.fetch_add(1, Ordering::Relaxed);
                            last_us
                                .fetch_max(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                        }
                        None => {
                            // Quiet for 100 ms: stop when everything arrived (late
                            // duplicates would have shown by now) or nothing did for STALL.
                            // Another receiver may have stored a later time since this
                            // one read the clock: saturate, do not wrap.
                            let since = (epoch.elapsed().as_micros() as u64)
                                .saturating_sub(last_us.load(Ordering::Relaxed));
                            if delivered.load(Ordering::Relaxed) >= expected
                                || since > STALL.as_micros() as u64
                            {
                                break;
                            }
                        }
                    }
                }
                let complete = got == m - mine;
                if !complete {
                    mesh_diagnose(node, j, n, &seen);
                }
                (dups, complete)
            }));
        }
        let start_us = epoch.elapsed().as_micros() as u64;
        last_us.store(start_us, Ordering::Relaxed);
        let senders: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(j, node)| {
                s.spawn(move || -> Result<()> {
                    let mut buf = payload_template();
                    for seq in (j..m).step_by(n) {
                        payload(seq, &mut buf);
                        node.send(&[&buf[..]]).map_err(e("send"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut send_error = None;
        for t in senders {
            if let Err(err) = t.join().unwrap_or_else(|_| Err("a sender panicked".into())) {
                send_error = Some(err);
            }
        }
        let mut duplicates = 0;
        let mut complete = 0;
        for r in receivers {
            let (d, c) = r.join().unwrap_or((usize::MAX, false));
            duplicates += d;
            complete += usize::from(c);
        }
        match send_error {
            Some(err) => Err(err),
            None => Ok((duplicates, complete, start_us)),
        }
    })?;
    let secs = last_us.load(Ordering::Relaxed).saturating_sub(start_us) as f64 * 1e-6;
    for node in &nodes {
        node.close();
    }
    Ok(MeshRun {
        secs,
        delivered: delivered.load(Ordering::Relaxed),
        expected,
        duplicates,
        complete_nodes,
        links,
    })
}

fn mesh(opts: &Opts, out: &mut Map<String, Value>) -> Result<()> {
    let default_sizes = [2usize, 4, 8, 16, 32, 64];
    let sizes: &[usize] = if opts.mesh_sizes.is_empty() {
        &default_sizes
    } else {
        &opts.mesh_sizes
    };
    let m = 10_000;
    let runs = if opts.quick { 1 } else { 3 };
    let mut results: Vec<Vec<MeshRun>> = sizes.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (i, &n) in sizes.iter().enumerate() {
            let r = mesh_run(n, m)?;
            eprintln!(
                "mesh n={n:>2} run {run}: {:.3}s, {:.0} broadcasts/s, {}/{} delivered, \
                 {} duplicates, {}/{n} nodes complete, {} links",
                r.secs,
                m as f64 / r.secs,
                r.delivered,
                r.expected,
                r.duplicates,
                r.complete_nodes,
                r.links
            );
            results[i].push(r);
        }
    }
    out.insert("mesh.m".into(), num(m as f64));
    out.insert("mesh.runs".into(), num(runs as f64));
    out.insert("mesh.senders".into(), Value::String("all".into()));
    let mut failures = Vec::new();
    for (&n, runs) in sizes.iter().zip(&results) {
        let key = format!("mesh.n{n}");
        let secs = median(&runs.iter().map(|r| r.secs).collect::<Vec<_>>());
        let delivered = runs.iter().map(|r| r.delivered).min().unwrap_or(0);
        let expected = m * (n - 1);
        let duplicates = runs.iter().map(|r| r.duplicates).max().unwrap_or(0);
        let complete = runs
            .iter()
            .all(|r| r.delivered == r.expected && r.duplicates == 0 && r.complete_nodes == n);
        out.insert(format!("{key}.secs"), num(round(secs, 6)));
        out.insert(
            format!("{key}.broadcasts_per_s"),
            num(round(m as f64 / secs, 0)),
        );
        out.insert(
            format!("{key}.deliveries_per_s"),
            num(round(expected as f64 / secs, 0)),
        );
        out.insert(format!("{key}.delivered"), num(delivered as f64));
        out.insert(format!("{key}.expected"), num(expected as f64));
        out.insert(format!("{key}.duplicates"), num(duplicates as f64));
        out.insert(format!("{key}.complete"), Value::Bool(complete));
        out.insert(
            format!("{key}.links"),
            num(median(
                &runs.iter().map(|r| r.links as f64).collect::<Vec<_>>(),
            )),
        );
        if !complete {
            failures.push(format!(
                "n={n}: fewest delivered {delivered}/{expected}, most duplicates {duplicates}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not every node got every broadcast exactly once: {}",
            failures.join("; ")
        ))
    }
}
