//! The plan of a run: the seeded generator that fixes it, the topology and the slots
//! ([`Soak::new`]), and each node's traffic rate and gaps.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use super::process::Slot;
use super::restarts::Restart;
use super::{LogTally, Soak, SoakArgs};
use crate::util::Result;

/// A seeded generator (splitmix64), so that a seed fixes the plan of a run.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Exponentially distributed with this mean.
    pub(super) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

impl Soak {
    pub(super) fn new(
        args: &SoakArgs,
        bin: PathBuf,
        python: Option<PathBuf>,
        out_dir: &Path,
    ) -> Result<Soak> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
