//! A fingerprint of everything a run did, to tell whether two runs of a seed were the same.

use std::fmt::Write as _;
use std::time::Duration;

/// FNV-1a over a stream of facts; optionally the facts as text lines too.
#[derive(Debug)]
pub(super) struct Trace {
    hash: u64,
    lines: Option<Vec<String>>,
}

impl Trace {
    pub fn new(keep_lines: bool) -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: keep_lines.then(Vec::new),
        }
    }

    fn mix(&mut self, data: &[u8]) {
        for &b in data {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Records one fact: when, what, on which node and connection, and its bytes.
    pub fn record(&mut self, at: Duration, what: &str, node: usize, conn: u64, bytes: &[u8]) {
        self.record_with(at, what, node, conn, bytes, String::new);
    }

    /// Records a fact like [`Trace::record`]; `detail` (only called when lines are kept)
    /// adds words to its line.
    pub fn record_with(
        &mut self,
        at: Duration,
        what: &str,
        node: usize,
        conn: u64,
        bytes: &[u8],
        detail: impl FnOnce() -> String,
    ) {
        self.mix(&at.as_nanos().to_le_bytes());
        self.mix(what.as_bytes());
        self.mix(&(node as u64).to_le_bytes());
        self.mix(&conn.to_le_bytes());
        self.mix(&(bytes.len() as u64).to_le_bytes());
        self.mix(bytes);
        if let Some(lines) = &mut self.lines {
            let mut line = String::new();
            let node = if node == usize::MAX {
                "-".to_owned()
            } else {
                node.to_string()
            };
            let _ = write!(
                line,
                "{:>10.3}s node {node:>3} conn#{conn:<5} {what}",
                at.as_secs_f64()
            );
            if !bytes.is_empty() {
                let _ = write!(line, " ({} bytes)", bytes.len());
            }
            let detail = detail();
            if !detail.is_empty() {
                let _ = write!(line, ": {detail}");
            }
            lines.push(line);
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or_default()
    }
}

/// The first characters of an id, enough to tell ids apart in a trace.
pub(super) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A message in words.
pub(super) fn describe_message(m: &py2p_wire::Message) -> String {
    let name = |p: Option<&[u8]>| {
        p.and_then(py2p_wire::Flag::from_packet)
            .and_then(|f| f.name())
            .unwrap_or("?")
    };
    format!(
        "{} {} from {} id {} t={}",
        name(Some(m.msg_type())),
        name(m.payload().first()),
        short(&String::from_utf8_lossy(m.sender())),
        short(m.id()),
        m.time()
    )
}
