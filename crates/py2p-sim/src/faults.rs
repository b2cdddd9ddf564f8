//! Faults a [`Sim`] can inject: nodes dying and coming back, partitions, broken links,
//! peers that stop reading.

use std::collections::BTreeSet;
use std::time::Duration;

use py2p_net::ConnId;

use super::link::Segment;
use super::network::node_addr;
use super::node::Actor;
use super::Sim;

impl Sim {
    fn fault(&mut self, what: &str, node: usize) {
        self.network.faults.push(self.network.now);
        self.network
            .trace
            .record(self.network.now, what, node, 0, &[]);
    }

    /// Kills node `i` as a crashed process dies: it stops at once, and its kernel closes
    /// its connections (peers read an end of stream after what was in flight).
    pub fn kill(&mut self, i: usize) {
        if !self.is_alive(i) {
            return;
        }
        self.fault("killed", i);
        if let Some(slot) = self.slots.get_mut(i) {
            slot.alive = false;
            if let Some(mesh) = slot.actor.mesh() {
                mesh.shared.close();
            }
        }
        self.network.listeners.remove(&node_addr(i));
        let conns: Vec<ConnId> = self
            .network
            .node_ends
            .get(i)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for conn in conns {
            self.network.remove_end(conn, None);
        }
    }

    /// Starts node `i` again after [`Sim::kill`], at the same address with a new id (py2p
    /// makes a new id for every socket) and no connections: connect it to someone. Returns
    /// its new id (empty for a garbage peer).
    pub fn restart(&mut self, i: usize) -> String {
        if i >= self.slots.len() || self.is_alive(i) {
            return self.id(i).to_owned();
        }
        let incarnation = self.incarnation(i) + 1;
        let config = self.slots[i].config.clone();
        let leasing = self.slots[i].leasing;
        let mut endpoint = self.new_endpoint(i, incarnation, &config.net);
        let actor = match &self.slots[i].actor {
            Actor::Mesh(old) => {
                // A chord node comes back as a chord node (a new id, an empty table).
                let chord = old.core.chord.as_ref().map(|c| c.config().clone());
                let mut node = self.new_mesh_node(i, incarnation, &config, leasing, &mut endpoint);
                if let Some(chord) = chord {
                    node.core.chord = Some(py2p::internals::ChordTable::new(chord, &node.id));
                }
                Actor::Mesh(Box::new(node))
            }
            Actor::Garbage(g) => Actor::Garbage(Box::new(g.restarted(self.network.rng.fork()))),
            Actor::Scripted(_) => Actor::Scripted(Box::default()),
        };
        if let Some(slot) = self.slots.get_mut(i) {
            slot.actor = actor;
            slot.endpoint = endpoint;
            slot.alive = true;
            slot.incarnation = incarnation;
            slot.reading = true;
            slot.user_reading = true;
        }
        self.network.listeners.insert(node_addr(i), i);
        self.fault("restarted", i);
        self.id(i).to_owned()
    }

    /// Splits the network in two: `side` and everyone else (nodes added later are with
    /// everyone else). Nothing crosses the cut, as when a router fails: TCP keeps
    /// connections and retransmits, so what is in flight arrives if the cut heals in time;
    /// a connection whose bytes wait longer than [`SimConfig::tcp_timeout`](super::SimConfig::tcp_timeout)
    /// is given up by its sender, and one with more than the socket buffers' worth waiting
    /// hits the loop's write-stall timeout. Dials across the cut time out.
    pub fn partition(&mut self, side: &[usize]) {
        self.network.cut = Some(side.iter().copied().collect());
        self.fault("partition", usize::MAX);
    }

    /// Splits the network like [`Sim::partition`], and resets every connection across the
    /// cut at once (a firewall or NAT that forgets its connections): both ends see a
    /// socket error now.
    pub fn partition_with_reset(&mut self, side: &[usize]) {
        self.partition(side);
        let cut: Vec<ConnId> = self
            .network
            .ends
            .iter()
            .filter(|(_, e)| self.network.is_cut(e.node, e.peer_node))
            .map(|(&c, _)| c)
            .collect();
        for conn in cut {
            self.abort(conn, "connection reset");
        }
    }

    /// Ends a partition: what waited crosses now (after the links' latency).
    pub fn heal(&mut self) {
        let Some(side) = self.network.cut.take() else {
            return;
        };
        self.fault("heal", usize::MAX);
        let waiting: Vec<(ConnId, Duration)> = self
            .network
            .ends
            .iter()
            .filter(|(_, e)| {
                side.contains(&e.node) != side.contains(&e.peer_node)
                    && !e.inbound.segments.is_empty()
            })
            .map(|(&c, e)| (c, e.latency))
            .collect();
        for (conn, latency) in waiting {
            self.network
                .queue
                .push(self.network.now + latency, super::queue::Event::Wake(conn));
        }
    }

    /// Whether a partition is in place.
    pub fn is_partitioned(&self) -> bool {
        self.network.cut.is_some()
    }

    /// Resets every connection between nodes `a` and `b`: both ends see a socket error at
    /// once, and bytes in flight are lost (what loss looks like over TCP).
    pub fn break_link(&mut self, a: usize, b: usize) {
        self.fault("link broken", a);
        let conns: Vec<ConnId> = self
            .network
            .ends
            .iter()
            .filter(|(_, e)| (e.node == a && e.peer_node == b) || (e.node == b && e.peer_node == a))
            .map(|(&c, _)| c)
            .collect();
        for conn in conns {
            self.abort(conn, "connection reset");
        }
    }

    /// Node `conn`'s kernel reports an error on it now.
    fn abort(&mut self, conn: ConnId, why: &'static str) {
        let Some(end) = self.network.ends.get_mut(&conn) else {
            return;
        };
        end.inbound.clear();
        end.finished = true;
        let now = self.network.now;
        end.inbound.push(now, Segment::Abort(why));
        self.network.read_blocked.remove(&conn);
        self.network
            .queue
            .push(now, super::queue::Event::Wake(conn));
    }

    /// Sets the one-way latency between two nodes for connections made from now on.
    pub fn set_latency(&mut self, a: usize, b: usize, latency: Duration) {
        self.network.set_latency(a, b, latency);
    }

    /// Node `i`'s loop stops reading its sockets (a process stuck, or starved): what peers
    /// send piles up in their queues, and the loop's limits deal with it.
    pub fn stop_reading(&mut self, i: usize) {
        self.fault("stops reading", i);
        if let Some(slot) = self.slots.get_mut(i) {
            slot.reading = false;
        }
    }

    /// Node `i` reads again.
    pub fn resume_reading(&mut self, i: usize) {
        self.fault("reads again", i);
        if let Some(slot) = self.slots.get_mut(i) {
            slot.reading = true;
        }
        self.after_turn(i);
        self.network.wake_node(i, Duration::ZERO);
    }

    /// Node `i`'s user stops taking messages: its inbox fills, then its loop stops reading
    /// (backpressure), as with a `MeshSocket` nobody calls `recv` on.
    pub fn pause_user(&mut self, i: usize) {
        self.fault("user pauses", i);
        if let Some(slot) = self.slots.get_mut(i) {
            slot.user_reading = false;
        }
    }

    /// Node `i`'s user takes messages again (everything waiting in the inbox first).
    pub fn resume_user(&mut self, i: usize) {
        self.fault("user resumes", i);
        if let Some(slot) = self.slots.get_mut(i) {
            slot.user_reading = true;
        }
        self.after_turn(i);
        self.network.wake_node(i, Duration::ZERO);
    }

    /// Nodes that stopped reading or whose users paused.
    pub fn stalled_nodes(&self) -> BTreeSet<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                self.slots
                    .get(i)
                    .is_some_and(|s| s.alive && (!s.reading || !s.user_reading))
            })
            .collect()
    }
}
