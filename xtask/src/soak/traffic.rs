//! The run from start to end: starting the mesh, the traffic, the final markers, and
//! stopping every node.

use std::collections::HashSet;

use super::account::Sent;
use super::state::{Restart, Soak, MARKER_TIMEOUT, STEP_TIMEOUT};
use crate::err;
use crate::util::{self, Result};

impl Soak {
    // -- the run --------------------------------------------------------------------------------

    pub(super) fn run_all(&mut self) -> Result<()> {
        self.start_mesh()?;
        self.run_traffic();
        self.finish_restart();
        self.final_markers();
        Ok(())
    }

    /// Starts every node (each dialling its earlier neighbours) and waits until every planned
    /// link is up at both ends.
    pub(super) fn start_mesh(&mut self) -> Result<()> {
        for slot in 0..self.slots.len() {
            let connect: Vec<u16> = self.slots[slot]
                .neighbours
                .iter()
                .filter(|&&n| n < slot)
                .map(|&n| self.slots[n].port)
                .collect();
            let inc = self.spawn(slot, &connect)?;
            if !self.wait_for(STEP_TIMEOUT, |s| s.ready(inc) || s.incs[inc].closed)
                || !self.ready(inc)
            {
                return Err(err!(
                    "{} did not print `ready` (see {})",
                    self.label(slot),
                    self.logs_dir.display()
                ));
            }
        }
        let edges: Vec<(usize, usize)> = (0..self.slots.len())
            .flat_map(|a| {
                self.slots[a]
                    .neighbours
                    .iter()
                    .filter(move |&&b| b > a)
                    .map(move |&b| (a, b))
            })
            .collect();
        let all_linked = |s: &Soak, python: bool| {
            edges.iter().all(|&(a, b)| {
                (!python && (s.slots[a].python || s.slots[b].python))
                    || s.linked(
                        s.slots[a].current.unwrap_or(0),
                        s.slots[b].current.unwrap_or(0),
                    )
            })
        };
        if !self.wait_for(STEP_TIMEOUT, |s| all_linked(s, true)) {
            if !all_linked(self, false) {
                return Err(err!(
                    "the Rust nodes did not link up within {STEP_TIMEOUT} s"
                ));
            }
            self.notes
                .push("the Python node's planned links were not all up at the start".into());
        }
        let now = self.now();
        self.traffic = (now, now + self.traffic.1);
        for slot in 0..self.slots.len() {
            let rate = self.rate_of(slot);
            self.slots[slot].next_send = now + self.next_gap(rate);
        }
        self.restart = Restart::Idle {
            at: now + self.next_gap(1.0 / self.restart_every.max(f64::MIN_POSITIVE)),
        };
        if self.restart_every == 0.0 {
            self.restart = Restart::Idle { at: f64::INFINITY };
        }
        println!(
            "soak: {} nodes up and linked in {:.1}s; traffic for {:.0}s",
            self.slots.len(),
            now,
            self.traffic.1 - self.traffic.0
        );
        Ok(())
    }

    /// Hands a broadcast to `inc`; returns its number.
    pub(super) fn broadcast(&mut self, inc: usize, kind: &str) -> Option<u64> {
        let seq = self.next_seq;
        let slot = self.incs[inc].slot;
        let size = self.rng.index(self.max_size.max(1) + 1);
        let mut payload = format!("soak {seq} {slot} {kind} ");
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        while payload.len() < size {
            payload.push(CHARS[self.rng.index(CHARS.len())] as char);
        }
        let at = self.now();
        let reachable = self.component(inc);
        let up = self.up().len().saturating_sub(1);
        if !self.write(inc, &payload) {
            return None;
        }
        self.next_seq += 1;
        self.payloads
            .insert(seq, (util::fnv1a64(payload.as_bytes()), inc));
        self.sent.push(Sent {
            seq,
            sender: inc,
            at,
            reachable,
            up,
        });
        Some(seq)
    }

    pub(super) fn run_traffic(&mut self) {
        let mut last_print = self.now();
        loop {
            let now = self.now();
            if now >= self.traffic.1 {
                break;
            }
            let busy = self.restarting();
            for slot in 0..self.slots.len() {
                if self.slots[slot].next_send > now {
                    continue;
                }
                let rate = self.rate_of(slot);
                self.slots[slot].next_send = now + self.next_gap(rate);
                let Some(inc) = self.slots[slot].current else {
                    continue;
                };
                if busy == Some(slot) || !self.ready(inc) || self.incs[inc].peers.is_empty() {
                    continue;
                }
                self.broadcast(inc, "m");
            }
            self.restart_step(now);
            if now - last_print >= 30.0 {
                last_print = now;
                println!(
                    "soak: {:.0}s of {:.0}s, {} sent, {} lines, {} restarts",
                    now - self.traffic.0,
                    self.traffic.1 - self.traffic.0,
                    self.sent.len(),
                    self.deliveries.len(),
                    self.restarts.len()
                );
            }
            let mut next = self.traffic.1;
            for s in &self.slots {
                next = next.min(s.next_send);
            }
            next = next.min(match self.restart {
                Restart::Idle { at } => at,
                Restart::Down { until, .. } => until,
                _ => now + 0.05,
            });
            self.step((next - self.now()).max(0.0));
        }
    }

    /// Every node broadcasts a marker; waits until the markers have gone everywhere.
    pub(super) fn final_markers(&mut self) {
        let mut finals = Vec::new();
        for inc in self.up() {
            if let Some(seq) = self.broadcast(inc, "final") {
                self.markers.insert(seq, HashSet::new());
                finals.push(seq);
            }
        }
        let all_in = |s: &Soak, with_python: bool| {
            finals.iter().all(|m| {
                let Some(sent) = s.sent.iter().rev().find(|x| x.seq == *m) else {
                    return true;
                };
                let from_python = s.incs[sent.sender].python;
                let got = &s.markers[m];
                sent.reachable.iter().all(|&r| {
                    (!with_python && (from_python || s.incs[r].python))
                        || !s.alive(r)
                        || got.contains(&r)
                })
            })
        };
        let started = self.now();
        if !self.wait_for(MARKER_TIMEOUT, |s| all_in(s, false)) {
            self.failures.push(format!(
                "the final markers did not reach every Rust node within {MARKER_TIMEOUT} s"
            ));
        } else if !self.wait_for(10.0, |s| all_in(s, true)) {
            self.notes.push(
                "the final markers to or from the Python node did not all arrive within 10 s \
                 of the Rust ones"
                    .into(),
            );
        }
        self.end = self.now();
        println!(
            "soak: traffic stopped; final markers settled in {:.1}s",
            self.end - started
        );
    }

    /// Stops every node (`/quit`, then SIGKILL for stragglers) and drains their output.
    pub(super) fn stop_all(&mut self) {
        if self.end == 0.0 {
            self.end = self.now();
        }
        let running: Vec<usize> = (0..self.incs.len())
            .filter(|&i| self.incs[i].proc.is_some() && self.incs[i].ended.is_none())
            .collect();
        let now = self.now();
        self.sample_memory(now);
        for &inc in &running {
            self.incs[inc].stopped_by_us = true;
            self.write(inc, "/quit");
            if let Some(p) = self.incs[inc].proc.as_mut() {
                p.stdin = None;
            }
        }
        let deadline = self.now() + 10.0;
        let mut waiting = running.clone();
        while !waiting.is_empty() && self.now() < deadline {
            waiting.retain(|&inc| !self.exited_at_end(inc));
            self.step(0.05);
        }
        for inc in waiting {
            let label = self.label(self.incs[inc].slot);
            if !self.incs[inc].python {
                self.failures
                    .push(format!("{label} did not exit within 10 s of /quit"));
            } else {
                self.notes
                    .push(format!("{label} did not exit within 10 s of /quit"));
            }
            if let Some(p) = self.incs[inc].proc.as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        for i in 0..self.incs.len() {
            if let Some(p) = self.incs[i].proc.as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        self.wait_for(5.0, |s| s.incs.iter().all(|i| i.closed));
    }

    pub(super) fn exited_at_end(&mut self, inc: usize) -> bool {
        let label = self.label(self.incs[inc].slot);
        let python = self.incs[inc].python;
        let Some(p) = self.incs[inc].proc.as_mut() else {
            return true;
        };
        match p.child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    let what = format!(
                        "{label} exited with {} after the final /quit",
                        util::describe_status(status)
                    );
                    if python {
                        self.notes.push(what);
                    } else {
                        self.failures.push(what);
                    }
                }
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}
