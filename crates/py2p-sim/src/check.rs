//! The network's promises, checked on what a [`Sim`] recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::Sim;
use py2p::MessageKind;

/// A broken promise found by one of the `Sim::check_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A user received the same message twice.
    Duplicate {
        /// The node.
        node: usize,
        /// The message id.
        id: String,
    },
    /// A user received a message older than the expiry (60 s by default).
    Stale {
        /// The node.
        node: usize,
        /// Broadcast or whisper.
        kind: MessageKind,
        /// The message id.
        id: String,
        /// Its age when delivered, in seconds.
        age: u64,
    },
    /// A broadcast sent while the network was undisturbed did not reach a node of its
    /// sender's component.
    Missing {
        /// The node that did not get it.
        node: usize,
        /// The sender.
        sender: usize,
        /// The message id.
        id: String,
    },
    /// The routing tables do not make one connected network.
    Split {
        /// The components, largest first.
        components: Vec<Vec<usize>>,
    },
    /// Two nodes disagree about their link: one routes to the other, which does not route
    /// back, or they hold more than one connection to each other.
    Inconsistent {
        /// One node.
        a: usize,
        /// The other.
        b: usize,
        /// What is wrong.
        detail: String,
    },
    /// A figure went past its bound.
    Unbounded {
        /// The node.
        node: usize,
        /// What grew.
        what: &'static str,
        /// How far.
        value: usize,
        /// The bound.
        limit: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Duplicate { node, id } => {
                write!(f, "node {node} received message {id} twice")
            }
            Violation::Stale {
                node,
                kind,
                id,
                age,
            } => write!(f, "node {node} received {kind} {id} {age} s old"),
            Violation::Missing { node, sender, id } => {
                write!(
                    f,
                    "node {node} never received broadcast {id} from node {sender}"
                )
            }
            Violation::Split { components } => {
                write!(f, "routing tables split the network: {components:?}")
            }
            Violation::Inconsistent { a, b, detail } => {
                write!(f, "nodes {a} and {b}: {detail}")
            }
            Violation::Unbounded {
                node,
                what,
                value,
                limit,
            } => write!(f, "node {node}: {what} reached {value} (bound {limit})"),
        }
    }
}

impl Sim {
    /// Every check: [`Sim::check_deliveries`], [`Sim::check_routing`] and
    /// [`Sim::check_memory`]. Run it after letting the network settle.
    pub fn check_all(&mut self) -> Vec<Violation> {
        let mut v = self.check_deliveries();
        v.extend(self.check_routing());
        v.extend(self.check_memory());
        v
    }

    /// What users received: no message twice in one life of a node, none older than the
    /// node's `message_expiry` (whispers only count when a mesh node sent them: py2p
    /// neither de-duplicates nor expires whispers, so a garbage peer can replay its own or
    /// stamp them as it likes), and every broadcast made through [`Sim::broadcast`] while the
    /// network was undisturbed delivered to every node of the sender's component then
    /// (still in the same life), once [`SimConfig::settle`](super::SimConfig::settle) has
    /// passed. A fault (kill, restart, partition, heal, broken link, a node stalling or
    /// resuming) within that window excuses the broadcast.
    pub fn check_deliveries(&mut self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut received: Vec<BTreeMap<u32, BTreeSet<String>>> = Vec::new();
        for (node, slot) in self.slots.iter().enumerate() {
            let expiry = slot.config.message_expiry.as_secs();
            let mut by_life: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
            for d in &slot.deliveries {
                let id = d.message.id().to_owned();
                let honest = d.message.kind() == MessageKind::Broadcast
                    || self.mesh_ids.contains(&d.message.sender());
                if !honest {
                    continue;
                }
                let age = d.unix_time.saturating_sub(d.message.time());
                if age > expiry {
                    out.push(Violation::Stale {
                        node,
                        kind: d.message.kind(),
                        id: id.clone(),
                        age,
                    });
                }
                if !by_life.entry(d.incarnation).or_default().insert(id.clone()) {
                    out.push(Violation::Duplicate { node, id });
                }
            }
            received.push(by_life);
        }
        let settle = self.network.config.settle;
        let now = self.network.now;
        for t in &self.tracked {
            if t.disturbed || now < t.at + settle {
                continue;
            }
            let window = t.at..=t.at + settle;
            if self.network.faults.iter().any(|f| window.contains(f)) {
                continue;
            }
            for &(node, life) in &t.expected {
                let Some(slot) = self.slots.get(node) else {
                    continue;
                };
                if !slot.alive || slot.incarnation != life {
                    continue;
                }
                let got = received
                    .get(node)
                    .and_then(|m| m.get(&life))
                    .is_some_and(|s| s.contains(&t.id));
                if !got {
                    out.push(Violation::Missing {
                        node,
                        sender: t.sender,
                        id: t.id.clone(),
                    });
                }
            }
        }
        out
    }

    /// The routing tables: the live mesh nodes make one connected network, every link is
    /// known at both ends, and two nodes hold at most one connection to each other.
    pub fn check_routing(&mut self) -> Vec<Violation> {
        let mut out = Vec::new();
        let graph = self.routing_table();
        let components = super::simulator::components(&graph);
        if components.len() > 1 {
            out.push(Violation::Split { components });
        }
        for (&a, routed) in &graph {
            for &b in routed {
                if !graph.get(&b).is_some_and(|r| r.contains(&a)) {
                    out.push(Violation::Inconsistent {
                        a,
                        b,
                        detail: format!("{a} routes to {b}, which does not route back"),
                    });
                }
                let n = self.connections_between(a, b);
                if a < b && n != 1 {
                    out.push(Violation::Inconsistent {
                        a,
                        b,
                        detail: format!("{a} holds {n} connections to {b}, not one"),
                    });
                }
            }
        }
        out
    }

    /// Memory: at every tick, no connection's write queue past `max_write_queue` plus
    /// one frame, all of them together not past `max_total_write_queue` plus one frame, no
    /// more connections than `max_connections`, no more remembered ids than
    /// `seen_capacity`.
    pub fn check_memory(&mut self) -> Vec<Violation> {
        let mut out = Vec::new();
        for (node, slot) in self.slots.iter().enumerate() {
            if slot.actor.mesh().is_none() {
                continue;
            }
            let c = &slot.config;
            let m = slot.maxima;
            let bounds = [
                (
                    "write queue of one connection",
                    m.conn_queue,
                    c.net.max_write_queue + c.net.limits.max_frame_len,
                ),
                (
                    "write queues of all connections",
                    m.queued_bytes,
                    c.net.max_total_write_queue + c.net.limits.max_frame_len,
                ),
                ("connections", m.connections, c.net.max_connections),
                ("remembered broadcast ids", m.seen_ids, c.seen_capacity),
            ];
            for (what, value, limit) in bounds {
                if value > limit {
                    out.push(Violation::Unbounded {
                        node,
                        what,
                        value,
                        limit,
                    });
                }
            }
        }
        out
    }

    /// That nodes forget: after a quiet spell longer than the message expiry (no user
    /// sends, no faults), every live mesh node remembers no broadcast id, has no whisper
    /// waiting for a route, nothing queued to peers, and no connection waiting for a
    /// handshake. Memory that does not drain when traffic stops grows with traffic.
    pub fn check_drained(&mut self) -> Vec<Violation> {
        let mut out = Vec::new();
        for node in self.live_nodes() {
            let queued = self.queued_bytes(node);
            let Some(st) = self.status(node) else {
                continue;
            };
            let figures = [
                ("remembered broadcast ids when quiet", st.seen_ids),
                (
                    "whispers waiting for a route when quiet",
                    st.pending_requests,
                ),
                (
                    "connections without a handshake when quiet",
                    st.awaiting_handshake,
                ),
                ("bytes queued to peers when quiet", queued),
            ];
            for (what, value) in figures {
                if value > 0 {
                    out.push(Violation::Unbounded {
                        node,
                        what,
                        value,
                        limit: 0,
                    });
                }
            }
        }
        out
    }
}
