//! The nodes' processes: what they print (parsed in reader threads), starting and
//! stopping them, and what the run knows of each (incarnations, slots, links).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::Instant;

use serde_json::Value;

use super::{MemSample, Soak};
use crate::util::{self, Context, Result};

/// What a node printed, parsed in its reader thread.
#[derive(Debug)]
pub(super) enum Out {
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
pub(super) enum Ev {
    Out { inc: usize, at: Instant, out: Out },
    Stderr { inc: usize, line: String },
    Closed { inc: usize },
}

pub(super) fn parse_out(line: &str) -> Out {
    let v = match util::parse_json(line) {
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
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
}

/// One process run of a node slot.
pub(super) struct Inc {
    pub(super) slot: usize,
    pub(super) python: bool,
    pub(super) started: f64,
    /// Stopped before the end (killed by us, or crashed).
    pub(super) ended: Option<f64>,
    /// Stopped by us (not a crash).
    pub(super) stopped_by_us: bool,
    /// Its stdout is closed.
    pub(super) closed: bool,
    pub(super) id: Option<String>,
    /// Peers it reported as connected (ids).
    pub(super) peers: HashSet<String>,
    pub(super) proc: Option<Proc>,
    pub(super) mem: Vec<MemSample>,
}

/// A node: a port, and the processes that ran on it.
pub(super) struct Slot {
    pub(super) python: bool,
    pub(super) port: u16,
    /// Neighbours in the planned topology (both directions).
    pub(super) neighbours: Vec<usize>,
    /// The incarnation running now.
    pub(super) current: Option<usize>,
    pub(super) next_send: f64,
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
