//! Test harness: nodes as child processes speaking the `py2p mesh` / `py2p sync` line
//! protocol, whether they are our binary or py2p 0.5.607 through `interop/py_node.py`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any single wait in these tests may take before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python interpreter of the interop venv, or `None` when interop tests are not set up.
/// With `PY2P_INTEROP=required` (set by `cargo xtask test`) a missing venv is a failure.
pub fn python() -> Option<PathBuf> {
    let required = std::env::var("PY2P_INTEROP").is_ok_and(|v| v == "required");
    let candidates = [
        std::env::var_os("PY2P_PYTHON").map(PathBuf::from),
        Some(repo_root().join("target/interop-venv/bin/python")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.exists() {
            return Some(c);
        }
    }
    assert!(
        !required,
        "PY2P_INTEROP=required but no interop venv: run `cargo xtask venv`"
    );
    eprintln!("SKIPPED: no py2p 0.5.607 venv (run `cargo xtask test`, which sets it up)");
    None
}

/// Lines a node printed, shared with the thread that reads them.
#[derive(Default)]
struct Log {
    lines: Vec<Value>,
    closed: bool,
    /// The exceptions py2p's daemon reported on stderr (their last line, e.g.
    /// `RuntimeError: deque mutated during iteration`): each dropped a connection.
    faults: Vec<String>,
}

/// A node running as a child process.
pub struct Node {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<(Mutex<Log>, Condvar)>,
    pub id: String,
    pub addr: String,
    pub protocol: String,
}

impl Node {
    /// Our `py2p` binary with these arguments (e.g. `["mesh", "--bind", "127.0.0.1:0"]`).
    pub fn rust(name: &str, args: &[&str]) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_py2p"));
        cmd.args(args).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        Node::spawn(name, cmd)
    }

    /// py2p 0.5.607 through `interop/py_node.py`.
    pub fn python(name: &str, python: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("interop/py_node.py")).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Node::spawn(name, cmd)
    }

    fn spawn(name: &str, mut cmd: Command) -> Node {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        {
            let log = log.clone();
            let name = name.to_owned();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                        panic!("{name}: stdout line is not JSON ({e}): {line}")
                    });
                    let (m, cv) = &*log;
                    m.lock().unwrap().lines.push(v);
                    cv.notify_all();
                }
                let (m, cv) = &*log;
                m.lock().unwrap().closed = true;
                cv.notify_all();
            });
        }
        {
            let name = name.to_owned();
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if std::env::var_os("PY2P_TEST_VERBOSE").is_some() {
                        eprintln!("[{name}] {line}");
                    }
                    if is_exception_line(&line) {
                        let (m, _) = &*log;
                        m.lock().unwrap().faults.push(line);
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        let mut node = Node {
            name: name.to_owned(),
            child,
            stdin,
            log,
            id: String::new(),
            addr: String::new(),
            protocol: String::new(),
        };
        let ready = node.wait_for("ready", |v| v["event"] == "ready");
        node.id = ready["id"].as_str().expect("id").to_owned();
        node.addr = ready["addr"].as_str().expect("addr").to_owned();
        node.protocol = ready["protocol"].as_str().expect("protocol").to_owned();
        node
    }

    /// Writes one line to the node's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: stdin: {e}", self.name));
    }

    /// Writes `bytes` to the node's stdin as they are (many lines in one write, a line
    /// without its newline, bytes that are not UTF-8).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: stdin: {e}", self.name));
    }

    /// Closes the node's stdin (the end of its input; the node keeps running).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a printed line matching `pred` (looking at every line so far), returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_n(what, 1, pred).pop().expect("one")
    }

    /// Waits until `n` printed lines match `pred`; returns them.
    pub fn wait_for_n(&self, what: &str, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.wait_lines(n, pred)
            .unwrap_or_else(|seen| panic!("{}: waited for {n} × {what}, {seen}", self.name))
    }

    /// Waits for a printed line matching `pred`, as [`Node::wait_for`], but returns what it
    /// saw instead of failing when [`WAIT`] passes (or the output closes) without one.
    pub fn try_wait_for(&self, pred: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let mut found = self.wait_lines(1, pred)?;
        Ok(found.swap_remove(0))
    }

    /// Waits until `n` printed lines match `pred` and returns them, or says what it saw
    /// once [`WAIT`] passed or the output closed.
    fn wait_lines(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Result<Vec<Value>, String> {
        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*self.log;
        let mut log = m.lock().unwrap();
        // Lines are only ever appended: each wake-up checks the new ones (with thousands of
        // long lines, re-reading and copying them all at every line printed made the waiter
        // the bottleneck, and a wait time out under load).
        let mut checked = 0;
        let mut count = 0;
        loop {
            count += log.lines.iter().skip(checked).filter(|v| pred(v)).count();
            checked = log.lines.len();
            if count >= n {
                return Ok(log.lines.iter().filter(|v| pred(v)).cloned().collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || log.closed {
                return Err(format!(
                    "saw {} (output {}):\n{}",
                    count,
                    if log.closed { "closed" } else { "open" },
                    log.lines
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
            log = cv.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Waits until `n` printed lines match `pred`, without copying them (for waits repeated
    /// thousands of times over long logs); returns how many match.
    pub fn wait_count(&self, what: &str, n: usize, pred: impl Fn(&Value) -> bool) -> usize {
        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*self.log;
        let mut log = m.lock().unwrap();
        let mut checked = 0;
        let mut found = 0;
        loop {
            found += log.lines.iter().skip(checked).filter(|v| pred(v)).count();
            checked = log.lines.len();
            if found >= n {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || log.closed {
                let tail: Vec<String> = log
                    .lines
                    .iter()
                    .rev()
                    .take(50)
                    .map(|v| v.to_string())
                    .collect();
                panic!(
                    "{}: waited for {n} × {what}, saw {found} (output {}); last lines:\n{}",
                    self.name,
                    if log.closed { "closed" } else { "open" },
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            log = cv.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Every line printed so far that matches `pred`.
    /// The exceptions a py2p node's daemon reported so far (see `Log::faults`).
    #[allow(dead_code)]
    pub fn faults(&self) -> Vec<String> {
        self.log.0.lock().unwrap().faults.clone()
    }

    pub fn lines(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.log
            .0
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter(|v| pred(v))
            .cloned()
            .collect()
    }

    /// Waits for a `connected` event naming `peer`.
    pub fn wait_connected(&self, peer: &Node) {
        let id = peer.id.clone();
        self.wait_for(&format!("connected to {}", peer.name), move |v| {
            v["event"] == "connected" && v["peer"] == id.as_str()
        });
    }

    /// Waits for `n` messages whose first packet is `text`.
    pub fn wait_message(&self, text: &str) -> Value {
        let t = text.to_owned();
        self.wait_for(&format!("message {text:?}"), move |v| {
            v["event"] == "message" && v["packets"][0] == t.as_str()
        })
    }

    /// Messages received so far whose first packet is `text`.
    pub fn messages(&self, text: &str) -> usize {
        self.lines(|v| v["event"] == "message" && v["packets"][0] == text)
            .len()
    }

    /// Asks for `/quit` and waits for a clean exit.
    pub fn quit(mut self) {
        self.send("/quit");
        self.stdin = None;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "{}: exit status {status}", self.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: did not exit after /quit",
                self.name
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (a crash, as far as its peers can tell).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (for memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a process in bytes (`VmHWM`), from /proc.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A Python traceback's last line: `SomeError: text` (or `SomeException: text`).
fn is_exception_line(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(head, _)| {
        !head.contains(' ')
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && (head.ends_with("Error") || head.ends_with("Exception"))
    })
}
