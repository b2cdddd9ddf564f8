//! The restart machine: one Rust node at a time is flushed (its marker reaches every Rust
//! node), stopped, kept down, started again and waited for until it has rejoined.

use std::collections::HashSet;

use super::state::{Restart, RestartRecord, Soak, MARKER_TIMEOUT, STEP_TIMEOUT};

impl Soak {
    pub(super) fn restarting(&self) -> Option<usize> {
        match self.restart {
            Restart::Idle { .. } => None,
            Restart::Flushing { slot, .. }
            | Restart::Down { slot, .. }
            | Restart::Joining { slot, .. } => Some(slot),
        }
    }

    /// One move of the restart machine, when its time or its event has come.
    pub(super) fn restart_step(&mut self, now: f64) {
        match self.restart {
            Restart::Idle { at } => {
                if now < at {
                    return;
                }
                let candidates: Vec<usize> = (0..self.slots.len())
                    .filter(|&s| {
                        !self.slots[s].python
                            && self.slots[s].current.is_some_and(|i| self.ready(i))
                    })
                    .collect();
                if candidates.is_empty() {
                    self.restart = Restart::Idle { at: now + 1.0 };
                    return;
                }
                let slot = candidates[self.rng.index(candidates.len())];
                let inc = self.slots[slot].current.unwrap_or_default();
                match self.broadcast(inc, "flush") {
                    Some(marker) => {
                        self.markers.insert(marker, HashSet::new());
                        self.restart = Restart::Flushing {
                            slot,
                            inc,
                            marker,
                            deadline: now + MARKER_TIMEOUT,
                        };
                    }
                    None => self.restart = Restart::Idle { at: now + 1.0 },
                }
            }
            Restart::Flushing {
                slot,
                inc,
                marker,
                deadline,
            } => {
                if !self.marker_reached_rust(marker) && now < deadline {
                    return;
                }
                if now >= deadline {
                    self.notes.push(format!(
                        "the flush marker of {} did not reach every Rust node within {MARKER_TIMEOUT} s",
                        self.label(slot)
                    ));
                }
                let graceful = self.rng.index(2) == 0;
                self.stop(inc, graceful);
                let down = 0.2 + self.rng.unit() * 2.8;
                self.restarts.push(RestartRecord {
                    slot,
                    graceful,
                    down_s: down,
                    rejoin_s: None,
                });
                self.restart = Restart::Down {
                    slot,
                    inc,
                    until: now + down,
                    deadline: now + STEP_TIMEOUT,
                    attempts: 0,
                };
            }
            Restart::Down {
                slot,
                inc,
                until,
                deadline,
                attempts,
            } => {
                if now < until {
                    return;
                }
                if !self.exited(inc) {
                    if now < deadline {
                        return;
                    }
                    self.failures.push(format!(
                        "{} did not exit within {STEP_TIMEOUT} s of /quit",
                        self.label(slot)
                    ));
                    if let Some(p) = self.incs[inc].proc.as_mut() {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                    }
                }
                let connect: Vec<u16> = self.slots[slot]
                    .neighbours
                    .clone()
                    .into_iter()
                    .filter(|&n| self.slots[n].current.is_some_and(|i| self.ready(i)))
                    .map(|n| self.slots[n].port)
                    .collect();
                match self.spawn(slot, &connect) {
                    Ok(new) => {
                        self.restart = Restart::Joining {
                            slot,
                            inc: new,
                            since: now,
                            deadline: now + STEP_TIMEOUT,
                        }
                    }
                    Err(e) if attempts < 3 => {
                        self.notes
                            .push(format!("restart of {}: {e}", self.label(slot)));
                        self.restart = Restart::Down {
                            slot,
                            inc,
                            until: now + 1.0,
                            deadline,
                            attempts: attempts + 1,
                        };
                    }
                    Err(e) => {
                        self.failures
                            .push(format!("cannot restart {}: {e}", self.label(slot)));
                        self.restart = Restart::Idle { at: f64::INFINITY };
                    }
                }
            }
            Restart::Joining {
                slot,
                inc,
                since,
                deadline,
            } => {
                let joined = self.ready(inc)
                    && self.slots[slot].neighbours.iter().all(|&n| {
                        self.slots[n].python
                            || self.slots[n]
                                .current
                                .is_none_or(|i| !self.ready(i) || self.linked(inc, i))
                    });
                if joined {
                    if let Some(r) = self.restarts.last_mut() {
                        r.rejoin_s = Some(now - since);
                    }
                } else if self.incs[inc].closed || now >= deadline {
                    self.failures.push(format!(
                        "{} (incarnation {inc}) did not rejoin its neighbours within {STEP_TIMEOUT} s of its restart",
                        self.label(slot)
                    ));
                } else {
                    return;
                }
                let gap = self.rng.exp(self.restart_every);
                self.restart = Restart::Idle {
                    at: if now >= self.traffic.1 {
                        f64::INFINITY
                    } else {
                        now + gap
                    },
                };
            }
        }
    }

    /// Whether every Rust node that the marker's sender could reach has printed it.
    pub(super) fn marker_reached_rust(&self, marker: u64) -> bool {
        let Some(got) = self.markers.get(&marker) else {
            return true;
        };
        let Some(s) = self.sent.iter().rev().find(|s| s.seq == marker) else {
            return true;
        };
        s.reachable
            .iter()
            .all(|&r| self.incs[r].python || !self.alive(r) || got.contains(&r))
    }

    /// After the traffic: a restart under way is finished (a node about to be stopped is not).
    pub(super) fn finish_restart(&mut self) {
        if let Restart::Flushing { .. } | Restart::Idle { .. } = self.restart {
            self.restart = Restart::Idle { at: f64::INFINITY };
            return;
        }
        let deadline = self.now() + 2.0 * STEP_TIMEOUT;
        while !matches!(self.restart, Restart::Idle { .. }) && self.now() < deadline {
            let now = self.now();
            self.restart_step(now);
            self.step(0.05);
        }
        self.restart = Restart::Idle { at: f64::INFINITY };
    }
}
