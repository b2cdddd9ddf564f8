//! The bookkeeping of `cargo xtask soak`, kept apart from processes and sockets so that it can
//! be tested on made-up runs: which deliveries were owed, which arrived, which came twice, how
//! memory moved, and how log lines are classified.
//!
//! Times are seconds since the start of the run (`f64`); nodes are known by the index of their
//! *incarnation* (one process run of a node slot: a restart makes a new incarnation).

use std::collections::{BTreeMap, HashMap, HashSet};

/// One process run of a node slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Incarnation {
    /// The node slot (its port) this process ran as.
    pub node: usize,
    /// Whether it is the py2p 0.5.607 node.
    pub python: bool,
    /// When it was started.
    pub started: f64,
    /// When it stopped before the end of the run (killed by the soak test, or crashed);
    /// `None` if it was up until the end.
    pub ended: Option<f64>,
}

/// One broadcast handed to a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The message's number, unique in the run (it is in the payload).
    pub seq: u64,
    /// The sending incarnation.
    pub sender: usize,
    /// When it was written to the sender's stdin.
    pub at: f64,
    /// The other incarnations in the sender's connected component at that time (links that both
    /// ends had reported as connected); these, and only these, are owed the message if they stay
    /// up until the end.
    pub reachable: Vec<usize>,
    /// How many other incarnations were up at that time (more than `reachable` means the mesh
    /// was split when the message was sent).
    pub up: usize,
}

/// One message line printed by a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The message's number.
    pub seq: u64,
    /// The receiving incarnation.
    pub receiver: usize,
    /// When the line was read.
    pub at: f64,
}

/// Owed and missing deliveries of one kind of pair.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pairs {
    /// Deliveries owed (sender, receiver) under the rule in [`account`].
    pub owed: u64,
    /// Owed deliveries that arrived.
    pub delivered: u64,
    /// Owed deliveries that never arrived.
    pub lost: u64,
}

impl Pairs {
    fn add(&mut self, delivered: bool) {
        self.owed += 1;
        if delivered {
            self.delivered += 1;
        } else {
            self.lost += 1;
        }
    }
}

/// A delivery that was owed and did not arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The message's number.
    pub seq: u64,
    /// Sending node slot.
    pub from: usize,
    /// Receiving node slot.
    pub to: usize,
}

/// What [`account`] found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Messages sent.
    pub sent: u64,
    /// Of which by the Python node.
    pub sent_by_python: u64,
    /// Message lines printed (every delivery, owed or not, first or repeated).
    pub lines: u64,
    /// Lines that repeated a message the same incarnation had already printed.
    pub duplicates: u64,
    /// Of which repeated a message the Python node sent. py2p answers a `renegotiate resend`
    /// (which any node sends after a frame it could not decode) by sending its last message
    /// again stamped anew (py2p 0.5.607 `base.py`: `self.send(*self.last_sent)`): a new id, so
    /// no node can tell it from a new message. Counted apart to tell where a duplicate came
    /// from; the run fails on every duplicate all the same.
    pub duplicates_from_python: u64,
    /// Some of them: (message, receiving slot, sending slot).
    pub duplicate_examples: Vec<(u64, usize, usize)>,
    /// Lines of a message printed by its own sender.
    pub to_self: u64,
    /// Lines naming a message number that was never sent.
    pub unknown: u64,
    /// First deliveries that were not owed (the receiver joined after the send, was
    /// unreachable then, or stopped before the end): fine, counted for the record.
    pub extra: u64,
    /// Rust node to Rust node.
    pub rust_rust: Pairs,
    /// Python node to Rust nodes.
    pub from_python: Pairs,
    /// Rust nodes to the Python node.
    pub to_python: Pairs,
    /// Rust to Rust, receivers stopped before the end: messages sent while the receiver was
    /// reachable, no later than the last message of the same sender that it printed. Links are
    /// FIFO and broadcasts flooded, so it should have printed them all (not owed under the main
    /// rule, which needs the receiver up until the end).
    pub rust_rust_stopped: Pairs,
    /// Some lost deliveries, Rust-to-Rust first.
    pub lost_examples: Vec<Lost>,
    /// Messages sent while some up node was not reachable from the sender.
    pub sent_while_split: u64,
    /// Send-to-print latency of owed first deliveries, seconds: 50th, 99th percentile, max.
    pub latency: Option<(f64, f64, f64)>,
}

impl Tally {
    /// Lost deliveries of every kind.
    pub fn lost(&self) -> u64 {
        self.rust_rust.lost + self.from_python.lost + self.to_python.lost
    }
}

/// How many examples of each kind a tally keeps.
const EXAMPLES: usize = 10;

/// Counts deliveries against what was owed.
///
/// A delivery of message `m` to incarnation `r` is **owed** when: `r` belongs to another node
/// slot than `m`'s sender; `r` was in the sender's connected component when `m` was sent
/// (`Sent::reachable`: up, and linked through connections that both ends had reported); and `r`
/// stayed up from then until the end of the run (`Incarnation::ended` is `None`). Every owed
/// delivery that did not arrive is **lost**; a second line of the same message from the same
/// incarnation is a **duplicate**, whether owed or not.
pub fn account(incs: &[Incarnation], sent: &[Sent], deliveries: &[Delivery]) -> Tally {
    let mut t = Tally {
        sent: sent.len() as u64,
        lines: deliveries.len() as u64,
        ..Tally::default()
    };
    let by_seq: HashMap<u64, &Sent> = sent.iter().map(|s| (s.seq, s)).collect();
    // First delivery time of each (message, receiver).
    let mut first: HashMap<(u64, usize), f64> = HashMap::new();
    for d in deliveries {
        let Some(s) = by_seq.get(&d.seq) else {
            t.unknown += 1;
            continue;
        };
        if incs.get(d.receiver).map(|i| i.node) == incs.get(s.sender).map(|i| i.node) {
            t.to_self += 1;
            continue;
        }
        if first.insert((d.seq, d.receiver), d.at).is_some() {
            t.duplicates += 1;
            let sender = incs.get(s.sender);
            if sender.is_some_and(|i| i.python) {
                t.duplicates_from_python += 1;
            }
            if t.duplicate_examples.len() < EXAMPLES {
                t.duplicate_examples.push((
                    d.seq,
                    incs.get(d.receiver).map_or(usize::MAX, |i| i.node),
                    sender.map_or(usize::MAX, |i| i.node),
                ));
            }
        }
    }
    let mut owed_pairs: HashSet<(u64, usize)> = HashSet::new();
    let mut latencies = Vec::new();
    let mut lost_rust = Vec::new();
    let mut lost_python = Vec::new();
    for s in sent {
        let Some(sender) = incs.get(s.sender) else {
            continue;
        };
        if sender.python {
            t.sent_by_python += 1;
        }
        if s.reachable.len() < s.up {
            t.sent_while_split += 1;
        }
        for &r in &s.reachable {
            let Some(receiver) = incs.get(r) else {
                continue;
            };
            if receiver.node == sender.node || receiver.ended.is_some() {
                continue;
            }
            owed_pairs.insert((s.seq, r));
            let got = first.get(&(s.seq, r));
            if let Some(at) = got {
                latencies.push((at - s.at).max(0.0));
            }
            let pairs = match (sender.python, receiver.python) {
                (false, false) => &mut t.rust_rust,
                (true, _) => &mut t.from_python,
                (false, true) => &mut t.to_python,
            };
            pairs.add(got.is_some());
            if got.is_none() {
                let lost = Lost {
                    seq: s.seq,
                    from: sender.node,
                    to: receiver.node,
                };
                if sender.python || receiver.python {
                    lost_python.push(lost);
                } else {
                    lost_rust.push(lost);
                }
            }
        }
    }
    t.extra = first.keys().filter(|k| !owed_pairs.contains(k)).count() as u64;
    // For receivers stopped before the end: the send time of the last message of each sender
    // that they printed.
    let mut last_from: HashMap<(usize, usize), f64> = HashMap::new();
    for &(seq, r) in first.keys() {
        if let Some(s) = by_seq.get(&seq) {
            let e = last_from.entry((r, s.sender)).or_insert(s.at);
            *e = e.max(s.at);
        }
    }
    for s in sent {
        let Some(sender) = incs.get(s.sender).filter(|i| !i.python) else {
            continue;
        };
        for &r in &s.reachable {
            let Some(receiver) = incs.get(r) else {
                continue;
            };
            if receiver.python || receiver.ended.is_none() || receiver.node == sender.node {
                continue;
            }
            if last_from
                .get(&(r, s.sender))
                .is_some_and(|&last| s.at <= last)
            {
                t.rust_rust_stopped.add(first.contains_key(&(s.seq, r)));
            }
        }
    }
    t.lost_examples = lost_rust
        .into_iter()
        .take(EXAMPLES)
        .chain(lost_python.into_iter().take(EXAMPLES))
        .collect();
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        t.latency = Some((pick(0.5), pick(0.99), latencies[latencies.len() - 1]));
    }
    t
}

/// One reading of a process's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemSample {
    /// When it was read.
    pub at: f64,
    /// Resident set (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set so far (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` (KiB) from the text of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Mean resident memory of the first and of the last quarter of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Mean `VmRSS` of the samples in the first quarter, KiB.
    pub first_kib: f64,
    /// Mean `VmRSS` of the samples in the last quarter, KiB.
    pub last_kib: f64,
}

impl Trend {
    /// Growth from the first to the last quarter, KiB (negative: it shrank).
    pub fn growth_kib(&self) -> f64 {
        self.last_kib - self.first_kib
    }

    /// Whether the growth is beyond both limits (a leak, not allocator noise).
    pub fn grew(&self, max_kib: f64, max_fraction: f64) -> bool {
        let g = self.growth_kib();
        g > max_kib && g > self.first_kib * max_fraction
    }
}

/// The memory trend of one process over `[from, to]`: the samples in that window are split by
/// time into quarters. `None` when either end quarter has no sample.
pub fn trend(samples: &[MemSample], from: f64, to: f64) -> Option<Trend> {
    if to <= from {
        return None;
    }
    let q = (to - from) / 4.0;
    let mean = |lo: f64, hi: f64| {
        let v: Vec<u64> = samples
            .iter()
            .filter(|s| s.at >= lo && s.at <= hi)
            .map(|s| s.rss_kib)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64)
    };
    Some(Trend {
        first_kib: mean(from, from + q)?,
        last_kib: mean(to - q, to)?,
    })
}

/// The steady part of a process's life for the memory trend: from `warm` seconds after it
/// started (or after the traffic began, if later) to its stop or the end of the traffic;
/// `None` when that is shorter than `min_len`.
pub fn steady_window(
    started: f64,
    ended: Option<f64>,
    traffic: (f64, f64),
    warm: f64,
    min_len: f64,
) -> Option<(f64, f64)> {
    let from = started.max(traffic.0) + warm;
    let to = ended.unwrap_or(traffic.1).min(traffic.1);
    (to - from >= min_len).then_some((from, to))
}

/// How bad a logged line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `ERROR`, a panic, a Python exception.
    Error,
    /// `WARN`.
    Warn,
}

/// Classifies one stderr line of a Rust node (env_logger's `[time LEVEL target] text`, or a
/// panic message).
pub fn classify_rust(line: &str) -> Option<Level> {
    if line.contains("panicked at") {
        return Some(Level::Error);
    }
    let head = line.strip_prefix('[')?.split(']').next()?;
    match head.split_whitespace().nth(1)? {
        "ERROR" => Some(Level::Error),
        "WARN" => Some(Level::Warn),
        _ => None,
    }
}

/// Classifies one stderr line of the Python node. `interop/py_node.py` writes py2p's daemon
/// exceptions there as tracebacks; each counts once, by its last line (`BrokenPipeError: ...`,
/// at the start of a line, unlike the indented frames). py2p's own debug output is off.
pub fn classify_python(line: &str) -> Option<Level> {
    if line.starts_with("py_node:") {
        return Some(Level::Error);
    }
    let (head, _) = line.split_once(':')?;
    let is_name = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !is_name {
        None
    } else if head.ends_with("Error") || head.ends_with("Exception") {
        Some(Level::Error)
    } else if head.ends_with("Warning") {
        Some(Level::Warn)
    } else {
        None
    }
}

/// A line reduced to its kind, for grouping: each run of letters and digits that holds a
/// digit (ids, ports, counts, times) becomes `#`, and the env_logger header is dropped.
pub fn line_kind(line: &str) -> String {
    let text = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Logged lines of one level, grouped by [`line_kind`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogTally {
    /// Lines in all.
    pub count: u64,
    /// Kind → (lines of that kind, first such line as printed, the slot that printed it).
    pub kinds: BTreeMap<String, (u64, String, usize)>,
}

impl LogTally {
    /// Adds a line printed by node slot `node`.
    pub fn add(&mut self, node: usize, line: &str) {
        self.count += 1;
        let e = self
            .kinds
            .entry(line_kind(line))
            .or_insert_with(|| (0, line.to_owned(), node));
        e.0 += 1;
    }

    /// The most frequent kinds first, at most `n`.
    pub fn top(&self, n: usize) -> Vec<(u64, &str, usize)> {
        let mut v: Vec<(u64, &str, usize)> = self
            .kinds
            .values()
            .map(|(c, l, node)| (*c, l.as_str(), *node))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(node: usize, python: bool, ended: Option<f64>) -> Incarnation {
        Incarnation {
            node,
            python,
            started: 0.0,
            ended,
        }
    }

    fn sent(seq: u64, sender: usize, at: f64, reachable: &[usize], up: usize) -> Sent {
        Sent {
            seq,
            sender,
            at,
            reachable: reachable.to_vec(),
            up,
        }
    }

    fn d(seq: u64, receiver: usize, at: f64) -> Delivery {
        Delivery { seq, receiver, at }
    }

    #[test]
    fn every_owed_delivery_arrived() {
        let incs = vec![
            inc(0, false, None),
            inc(1, false, None),
            inc(2, false, None),
        ];
        let s = vec![sent(1, 0, 1.0, &[1, 2], 2), sent(2, 1, 2.0, &[0, 2], 2)];
        let ds = vec![d(1, 1, 1.1), d(1, 2, 1.3), d(2, 0, 2.2), d(2, 2, 2.4)];
        let t = account(&incs, &s, &ds);
        assert_eq!(t.sent, 2);
        assert_eq!(t.lines, 4);
        assert_eq!(
            t.rust_rust,
            Pairs {
                owed: 4,
                delivered: 4,
                lost: 0
            }
        );
        assert_eq!((t.duplicates, t.lost(), t.extra, t.unknown), (0, 0, 0, 0));
        let (p50, _, max) = t.latency.unwrap();
        assert!((max - 0.4).abs() < 1e-9, "{max}");
        assert!(p50 > 0.1 && p50 < 0.4);
    }

    #[test]
    fn a_repeat_of_a_python_message_is_counted_apart() {
        // Node 0 is the Python node: its message 9 printed twice by node 1 (py2p's resend
        // stamps it anew), and Rust node 2's message 10 printed twice by node 1.
        let incs = vec![inc(0, true, None), inc(1, false, None), inc(2, false, None)];
        let s = vec![sent(9, 0, 1.0, &[1, 2], 2), sent(10, 2, 1.0, &[0, 1], 2)];
        let ds = vec![d(9, 1, 1.1), d(9, 1, 1.2), d(10, 1, 1.1), d(10, 1, 1.3)];
        let t = account(&incs, &s, &ds);
        assert_eq!((t.duplicates, t.duplicates_from_python), (2, 1));
        assert_eq!(t.duplicate_examples, vec![(9, 1, 0), (10, 1, 2)]);
    }

    #[test]
    fn a_missing_delivery_is_lost_and_a_repeat_is_a_duplicate() {
        let incs = vec![
            inc(0, false, None),
            inc(1, false, None),
            inc(2, false, None),
        ];
        let s = vec![sent(7, 0, 1.0, &[1, 2], 2)];
        let ds = vec![d(7, 1, 1.1), d(7, 1, 1.2)];
        let t = account(&incs, &s, &ds);
        assert_eq!(t.rust_rust.lost, 1);
        assert_eq!(t.rust_rust.delivered, 1);
        assert_eq!(
            t.lost_examples,
            vec![Lost {
                seq: 7,
                from: 0,
                to: 2
            }]
        );
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.duplicate_examples, vec![(7, 1, 0)]);
        assert_eq!(t.duplicates_from_python, 0);
    }

    #[test]
    fn nodes_down_or_unreachable_are_not_owed() {
        // Slot 1 ran twice: incarnation 1 was killed, incarnation 3 started after the send.
        // Slot 2 was up but cut off from the sender (not reachable), and it is up.
        let incs = vec![
            inc(0, false, None),
            inc(1, false, Some(5.0)),
            inc(2, false, None),
            Incarnation {
                node: 1,
                python: false,
                started: 6.0,
                ended: None,
            },
        ];
        let s = vec![sent(1, 0, 1.0, &[1], 2), sent(2, 0, 7.0, &[3, 2], 2)];
        // Incarnation 1 got message 1 before it was killed; slot 2 got 1 anyway; incarnation 3
        // got message 2 but slot 2 did not.
        let ds = vec![d(1, 1, 1.1), d(1, 2, 1.1), d(2, 3, 7.1)];
        let t = account(&incs, &s, &ds);
        assert_eq!(
            t.rust_rust,
            Pairs {
                owed: 2,
                delivered: 1,
                lost: 1
            }
        );
        assert_eq!(
            t.lost_examples,
            vec![Lost {
                seq: 2,
                from: 0,
                to: 2
            }]
        );
        // Message 1 to the killed incarnation and to the unreachable slot 2: not owed.
        assert_eq!(t.extra, 2);
        assert_eq!(t.sent_while_split, 1);
    }

    #[test]
    fn gaps_before_a_receiver_stopped() {
        // Slot 1 stops at 10 s. From slot 0 it printed 1 and 3 but not 2 (a gap), and not 4,
        // sent after the last one it printed (it may have been stopped before it arrived).
        let incs = vec![inc(0, false, None), inc(1, false, Some(10.0))];
        let s = vec![
            sent(1, 0, 1.0, &[1], 1),
            sent(2, 0, 2.0, &[1], 1),
            sent(3, 0, 3.0, &[1], 1),
            sent(4, 0, 9.9, &[1], 1),
        ];
        let ds = vec![d(1, 1, 1.1), d(3, 1, 3.1)];
        let t = account(&incs, &s, &ds);
        assert_eq!(
            t.rust_rust_stopped,
            Pairs {
                owed: 3,
                delivered: 2,
                lost: 1
            }
        );
        // Not owed under the main rule.
        assert_eq!(t.rust_rust.owed, 0);
        assert_eq!(t.extra, 2);
    }

    #[test]
    fn python_pairs_are_counted_apart() {
        let incs = vec![inc(0, false, None), inc(1, false, None), inc(2, true, None)];
        let s = vec![sent(1, 0, 1.0, &[1, 2], 2), sent(2, 2, 2.0, &[0, 1], 2)];
        // The Python node misses message 1; slot 1 misses the Python node's message 2.
        let ds = vec![d(1, 1, 1.1), d(2, 0, 2.1)];
        let t = account(&incs, &s, &ds);
        assert_eq!(t.rust_rust.lost, 0);
        assert_eq!(t.rust_rust.owed, 1);
        assert_eq!(t.to_python.lost, 1);
        assert_eq!(t.from_python.lost, 1);
        assert_eq!(t.from_python.delivered, 1);
        assert_eq!(t.sent_by_python, 1);
        assert_eq!(t.lost(), 2);
        assert_eq!(
            t.lost_examples,
            vec![
                Lost {
                    seq: 1,
                    from: 0,
                    to: 2
                },
                Lost {
                    seq: 2,
                    from: 2,
                    to: 1
                }
            ]
        );
    }

    #[test]
    fn unknown_messages_and_echoes_are_flagged() {
        let incs = vec![inc(0, false, None), inc(1, false, None)];
        let s = vec![sent(1, 0, 1.0, &[1], 1)];
        let ds = vec![d(1, 1, 1.1), d(1, 0, 1.1), d(99, 1, 1.2)];
        let t = account(&incs, &s, &ds);
        assert_eq!((t.to_self, t.unknown, t.duplicates), (1, 1, 0));
        assert_eq!(t.rust_rust.lost, 0);
    }

    #[test]
    fn status_and_trend() {
        let status = "Name:\tpy2p\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\nThreads:\t5\n";
        assert_eq!(parse_status(status), Some((8192, 10240)));
        assert_eq!(parse_status("Name: x\n"), None);

        let flat: Vec<MemSample> = (0..100)
            .map(|i| MemSample {
                at: f64::from(i),
                rss_kib: 8000 + (i % 3) as u64,
                hwm_kib: 8100,
            })
            .collect();
        let t = trend(&flat, 0.0, 99.0).unwrap();
        assert!(t.growth_kib().abs() < 2.0);
        assert!(!t.grew(1024.0, 0.1));

        // 100 KiB a second: 7.5 MiB from the first to the last quarter.
        let leak: Vec<MemSample> = (0..100)
            .map(|i| MemSample {
                at: f64::from(i),
                rss_kib: 8000 + 100 * i as u64,
                hwm_kib: 0,
            })
            .collect();
        let t = trend(&leak, 0.0, 99.0).unwrap();
        assert!((t.growth_kib() - 7500.0).abs() < 200.0, "{t:?}");
        assert!(t.grew(1024.0, 0.1));
        // The window leaves out the warm-up; an empty quarter gives no trend.
        assert!(trend(&leak, 200.0, 300.0).is_none());
        assert!(trend(&leak, 5.0, 5.0).is_none());
    }

    #[test]
    fn steady_windows() {
        // Up the whole run: from the warm-up to the end of the traffic.
        assert_eq!(
            steady_window(1.0, None, (2.0, 602.0), 70.0, 60.0),
            Some((72.0, 602.0))
        );
        // Restarted at 300 s, stopped at 500 s.
        assert_eq!(
            steady_window(300.0, Some(500.0), (2.0, 602.0), 70.0, 60.0),
            Some((370.0, 500.0))
        );
        // Too short a life.
        assert_eq!(
            steady_window(300.0, Some(400.0), (2.0, 602.0), 70.0, 60.0),
            None
        );
        // Stopped after the traffic: the window ends with the traffic.
        assert_eq!(
            steady_window(0.0, Some(700.0), (0.0, 200.0), 70.0, 60.0),
            Some((70.0, 200.0))
        );
    }

    #[test]
    fn log_lines() {
        let w = "[2026-11-26T18:00:00Z WARN  py2p::mesh::core] 127.0.0.1:4242: handshake with a new id 5xYz9; closing";
        assert_eq!(classify_rust(w), Some(Level::Warn));
        assert_eq!(
            classify_rust("[2026-11-26T18:00:00Z ERROR py2p] boom"),
            Some(Level::Error)
        );
        assert_eq!(classify_rust("[2026-11-26T18:00:00Z INFO  py2p] hi"), None);
        assert_eq!(
            classify_rust("thread 'main' panicked at src/x.rs:1:1:"),
            Some(Level::Error)
        );
        assert_eq!(classify_rust("plain text"), None);
        assert_eq!(classify_python("py2p daemon exception:"), None);
        assert_eq!(classify_python("Traceback (most recent call last):"), None);
        assert_eq!(classify_python("  File \"x.py\", line 3"), None);
        assert_eq!(
            classify_python("BrokenPipeError: [Errno 32] Broken pipe"),
            Some(Level::Error)
        );
        assert_eq!(
            classify_python("ConnectionResetError: [Errno 104] Connection reset by peer"),
            Some(Level::Error)
        );
        assert_eq!(classify_python("some text: with a colon"), None);
        assert_eq!(
            classify_python("ResourceWarning: unclosed socket"),
            Some(Level::Warn)
        );

        assert_eq!(
            line_kind(w),
            "#.#.#.#:#: handshake with a new id #; closing"
        );
        let mut logs = LogTally::default();
        logs.add(3, w);
        logs.add(4, &w.replace("5xYz9", "7abQ1"));
        logs.add(5, "[t ERROR x] other");
        assert_eq!(logs.count, 3);
        let top = logs.top(5);
        assert_eq!(top[0], (2, w, 3));
        assert_eq!(top.len(), 2);
    }
}
