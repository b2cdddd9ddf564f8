//! The plan of a run: the topology and the slots
//! ([`Soak::new`](super::state::Soak)), and each node's traffic rate and gaps.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use super::account::LogTally;
use super::args::SoakArgs;
use super::node::Slot;
use super::state::{Restart, Soak};
use crate::util::Result;
use py2p_testkit::Rng;

impl Soak {
    pub(super) fn new(
        args: &SoakArgs,
        bin: PathBuf,
        python: Option<PathBuf>,
        out_dir: &Path,
    ) -> Result<Soak> {
        let mut rng = Rng::new(args.seed ^ 0x50a4_50a4_50a4_50a4);
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
                let j = rng.index(i - 2);
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
            let first = rng.index(rust);
            link(&mut slots, p, first);
            if rust > 1 {
                let second = (first + 1 + rng.index(rust - 1)) % rust;
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

    pub(super) fn rate_of(&self, slot: usize) -> f64 {
        if self.slots[slot].python {
            self.python_rate
        } else {
            self.rate
        }
    }

    pub(super) fn next_gap(&mut self, rate: f64) -> f64 {
        if rate <= 0.0 {
            f64::INFINITY
        } else {
            self.rng.exp(1.0 / rate)
        }
    }
}
