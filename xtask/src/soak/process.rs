//! The nodes' processes: starting one (with reader threads for its output), writing to it,
//! stopping it, and the links and components the run derives from what they printed.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use super::node::{parse_out, Ev, Inc, Proc};
use super::state::Soak;
use crate::util::{self, Context, Result};

impl Soak {
    pub(super) fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(super) fn label(&self, slot: usize) -> String {
        if self.slots[slot].python {
            format!("py{slot}")
        } else {
            format!("rs{slot}")
        }
    }

    // -- processes ----------------------------------------------------------------------------

    /// Starts a process for `slot`, dialling `connect` (ports); returns its incarnation.
    pub(super) fn spawn(&mut self, slot: usize, connect: &[u16]) -> Result<usize> {
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
    pub(super) fn write(&mut self, inc: usize, line: &str) -> bool {
        let Some(stdin) = self.incs[inc].proc.as_mut().and_then(|p| p.stdin.as_mut()) else {
            return false;
        };
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_ok()
    }

    pub(super) fn alive(&self, inc: usize) -> bool {
        let i = &self.incs[inc];
        i.ended.is_none() && !i.closed && i.proc.is_some()
    }

    pub(super) fn ready(&self, inc: usize) -> bool {
        self.alive(inc) && self.incs[inc].id.is_some()
    }

    /// Both ends have reported the link, and both are up.
    pub(super) fn linked(&self, a: usize, b: usize) -> bool {
        let (ia, ib) = (&self.incs[a], &self.incs[b]);
        match (&ia.id, &ib.id) {
            (Some(ida), Some(idb)) => {
                self.alive(a) && self.alive(b) && ia.peers.contains(idb) && ib.peers.contains(ida)
            }
            _ => false,
        }
    }

    /// Incarnations running now (and ready).
    pub(super) fn up(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter_map(|s| s.current)
            .filter(|&i| self.ready(i))
            .collect()
    }

    /// The other incarnations in `inc`'s connected component.
    pub(super) fn component(&self, inc: usize) -> Vec<usize> {
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
    pub(super) fn stop(&mut self, inc: usize, graceful: bool) {
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
    pub(super) fn exited(&mut self, inc: usize) -> bool {
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
}
