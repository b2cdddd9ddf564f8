//! The report: collected from the run's state ([`Soak::report`]), rendered as Markdown, and
//! spliced into docs/reliability.md.

use std::fmt::Write as _;
use std::fs;
use std::thread;

use super::account::{self, Incarnation, LogTally, Tally};
use super::args::SoakArgs;
use super::node::Inc;
use super::state::{Soak, WARM_UP};
use crate::err;
use crate::util::{self, Context, Result};

impl Soak {
    // -- the report -----------------------------------------------------------------------------

    pub(super) fn report(&self, args: &SoakArgs, error: Option<crate::util::Error>) -> Report {
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
            failures.push(format!(
                "{} duplicate deliveries ({} of messages the Python node sent)",
                tally.duplicates, tally.duplicates_from_python
            ));
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

pub(super) fn command_line(args: &SoakArgs) -> String {
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

pub(super) fn utc_now() -> String {
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

pub(super) fn machine() -> String {
    let cpu = util::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores (shared with other work)")
}

/// One node's memory figures.
pub(super) struct MemRow {
    pub(super) label: String,
    pub(super) python: bool,
    pub(super) incarnations: usize,
    pub(super) peak_kib: u64,
    pub(super) trend: Option<account::Trend>,
    /// The window of the trend, seconds of traffic.
    pub(super) window: Option<(f64, f64)>,
}

/// Everything the report says.
pub(super) struct Report {
    pub(super) command: String,
    pub(super) date: String,
    pub(super) machine: String,
    pub(super) slots: usize,
    pub(super) python: bool,
    pub(super) traffic_s: f64,
    pub(super) settle_s: f64,
    pub(super) warm: f64,
    pub(super) tally: Tally,
    pub(super) restarts: Vec<(usize, bool, f64, Option<f64>)>,
    pub(super) memory: Vec<MemRow>,
    pub(super) rust_logs: [LogTally; 2],
    pub(super) python_logs: [LogTally; 2],
    pub(super) node_errors: LogTally,
    pub(super) rust_disconnects: u64,
    pub(super) python_disconnects: u64,
    pub(super) corrupt: Vec<String>,
    pub(super) notes: Vec<String>,
    pub(super) failures: Vec<String>,
    pub(super) max_growth_kib: u64,
    /// Why the run stopped before its end, if it did.
    pub(super) stopped_early: Option<String>,
}

pub(super) fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

impl Report {
    /// The report as Markdown, its sections under headings `h` (`##` or `###`).
    pub(super) fn render(&self, h: &str) -> String {
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
            let _ = writeln!(
                o,
                "\nDuplicates, some of them (message, printed by, sent by); {} of the {} repeat \
                 a message of the Python node, which py2p sends again stamped anew when a peer \
                 asks it to resend (a new id: no node can tell it from a new message):",
                t.duplicates_from_python, t.duplicates
            );
            for (seq, node, sender) in &t.duplicate_examples {
                let _ = writeln!(o, "- {seq}, node {node}, from node {sender}");
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
pub(super) fn write_docs(body: &str) -> Result<()> {
    let path = util::repo_root().join("docs/reliability.md");
    let old = fs::read_to_string(&path).context(format_args!("cannot read {}", path.display()))?;
    let new = splice_docs(&old, body)
        .ok_or_else(|| err!("{} has no `<!-- soak figures -->` marker", path.display()))?;
    fs::write(&path, new).context(format_args!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

pub(super) const BEGIN: &str = "<!-- soak figures -->";
pub(super) const END: &str = "<!-- /soak figures -->";

/// The text with everything between the soak markers replaced by `body`; `None` without the
/// begin marker. Without an end marker the block ends at the next `## ` heading (or the end).
pub(super) fn splice_docs(old: &str, body: &str) -> Option<String> {
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
}
