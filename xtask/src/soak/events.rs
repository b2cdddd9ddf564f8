//! The event loop: one channel of every node's lines, handled in order (links, messages,
//! log lines), and memory samples when due.

use std::fs;
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use super::account::{self, Delivery, Level, MemSample};
use super::node::{Ev, Out};
use super::state::{Soak, MEM_EVERY};
use crate::util;

impl Soak {
    // -- the event loop -------------------------------------------------------------------------

    /// Handles events for up to `timeout` (and reads memory when due).
    pub(super) fn step(&mut self, timeout: f64) {
        let now = self.now();
        if now >= self.next_mem {
            self.sample_memory(now);
            self.next_mem = now + MEM_EVERY;
        }
        let wait = timeout.min(self.next_mem - now).clamp(0.0, 1.0);
        match self.rx.recv_timeout(Duration::from_secs_f64(wait)) {
            Ok(ev) => self.handle(ev),
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for _ in 0..10_000 {
            match self.rx.try_recv() {
                Ok(ev) => self.handle(ev),
                Err(_) => break,
            }
        }
    }

    /// Handles events until `cond` holds or `secs` pass; returns whether it held.
    pub(super) fn wait_for(&mut self, secs: f64, cond: impl Fn(&Soak) -> bool) -> bool {
        let deadline = self.now() + secs;
        loop {
            if cond(self) {
                return true;
            }
            let left = deadline - self.now();
            if left <= 0.0 {
                return false;
            }
            self.step(left);
        }
    }

    pub(super) fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Out { inc, at, out } => {
                let at = at.duration_since(self.start).as_secs_f64();
                self.handle_out(inc, at, out);
            }
            Ev::Stderr { inc, line } => self.handle_stderr(inc, &line),
            Ev::Closed { inc } => {
                self.incs[inc].closed = true;
                if !self.incs[inc].stopped_by_us {
                    let now = self.now();
                    self.incs[inc].ended = Some(now);
                    let slot = self.incs[inc].slot;
                    let what = format!(
                        "{} (incarnation {inc}) exited on its own at {now:.1}s",
                        self.label(slot)
                    );
                    if self.incs[inc].python {
                        self.notes.push(what);
                    } else {
                        self.failures.push(what);
                    }
                }
            }
        }
    }

    pub(super) fn handle_out(&mut self, inc: usize, at: f64, out: Out) {
        let slot = self.incs[inc].slot;
        match out {
            Out::Ready { id, port } => {
                if self.slots[slot].port == 0 {
                    self.slots[slot].port = port.unwrap_or(0);
                }
                self.ids.insert(id.clone(), inc);
                self.incs[inc].id = Some(id);
            }
            Out::Connected(peer) => {
                self.incs[inc].peers.insert(peer);
            }
            Out::Disconnected(peer) => {
                self.incs[inc].peers.remove(&peer);
                // A link to a node that is up (from both ends' view) went down.
                if let Some(&other) = self.ids.get(&peer) {
                    if self.alive(other) && self.alive(inc) && self.end == 0.0 {
                        if self.disconnect_examples.len() < 5 {
                            let (a, b) = (self.label(slot), self.label(self.incs[other].slot));
                            self.disconnect_examples.push(format!(
                                "{at:.1}s: {a} (incarnation {inc}) lost {b} (incarnation {other})"
                            ));
                        }
                        if self.incs[inc].python || self.incs[other].python {
                            self.python_disconnects += 1;
                        } else {
                            self.rust_disconnects += 1;
                        }
                    }
                }
            }
            Out::Message {
                sender,
                payload,
                id,
                time,
            } => self.handle_message(inc, at, &sender, &payload, (&id, time)),
            Out::Error(message) => {
                self.node_errors.add(slot, &message);
            }
            Out::Other => {}
        }
    }

    pub(super) fn handle_message(
        &mut self,
        inc: usize,
        at: f64,
        sender: &str,
        payload: &str,
        (id, time): (&str, u64),
    ) {
        let seq = payload
            .strip_prefix("soak ")
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse::<u64>().ok());
        let Some(seq) = seq else {
            self.corrupt.push(format!(
                "{} printed a message that is not ours: {:.80}",
                self.label(self.incs[inc].slot),
                payload
            ));
            return;
        };
        if let Some(&(hash, from)) = self.payloads.get(&seq) {
            let right_sender = self.incs[from].id.as_deref() == Some(sender);
            if hash != util::fnv1a64(payload.as_bytes()) || !right_sender {
                self.corrupt.push(format!(
                    "{} printed message {seq} with {}",
                    self.label(self.incs[inc].slot),
                    if right_sender {
                        "another payload"
                    } else {
                        "another sender"
                    }
                ));
                return;
            }
        }
        if let Some(got) = self.markers.get_mut(&seq) {
            got.insert(inc);
        }
        // What a duplicate looked like: the same message again, or one stamped anew.
        let stamp = (time, util::fnv1a64(id.as_bytes()));
        if let Some(&(t1, id1)) = self.first_stamp.get(&(seq, inc)) {
            if self.duplicate_details.len() < 10 {
                let from = self
                    .payloads
                    .get(&seq)
                    .map_or_else(|| "?".to_string(), |&(_, f)| self.label(self.incs[f].slot));
                self.duplicate_details.push(format!(
                    "message {seq} (from {from}) printed again by {} at {at:.1} s: stamped {t1} \
                     then {time}, {}",
                    self.label(self.incs[inc].slot),
                    if id1 == stamp.1 {
                        "same id"
                    } else {
                        "another id"
                    }
                ));
            }
        } else {
            self.first_stamp.insert((seq, inc), stamp);
        }
        self.deliveries.push(Delivery {
            seq,
            receiver: inc,
            at,
        });
    }

    pub(super) fn handle_stderr(&mut self, inc: usize, line: &str) {
        let slot = self.incs[inc].slot;
        let label = self.label(slot);
        let file = self
            .log_files
            .entry(slot)
            .or_insert_with(|| fs::File::create(self.logs_dir.join(format!("{label}.log"))).ok());
        if let Some(file) = file {
            let _ = writeln!(file, "[inc {inc}] {line}");
        }
        let python = self.incs[inc].python;
        let level = if python {
            account::classify_python(line)
        } else {
            account::classify_rust(line)
        };
        let logs = if python {
            &mut self.python_logs
        } else {
            &mut self.rust_logs
        };
        match level {
            Some(Level::Error) => logs[0].add(slot, line),
            Some(Level::Warn) => logs[1].add(slot, line),
            None => {}
        }
    }

    // -- memory ---------------------------------------------------------------------------------

    pub(super) fn sample_one(&mut self, inc: usize, at: f64) {
        let Some(p) = self.incs[inc].proc.as_ref() else {
            return;
        };
        let pid = p.child.id();
        if let Some((rss_kib, hwm_kib)) = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|t| account::parse_status(&t))
        {
            self.incs[inc].mem.push(MemSample {
                at,
                rss_kib,
                hwm_kib,
            });
        }
    }

    pub(super) fn sample_memory(&mut self, at: f64) {
        for inc in 0..self.incs.len() {
            if self.alive(inc) {
                self.sample_one(inc, at);
            }
        }
    }
}
