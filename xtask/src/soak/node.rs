//! What the run knows of each node: its slot (port, planned neighbours), its incarnations
//! (one process run each), and what it prints, parsed in a reader thread.

use std::collections::HashSet;
use std::process::{Child, ChildStdin};
use std::time::Instant;

use serde_json::Value;

use super::account::MemSample;
use crate::util;

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
