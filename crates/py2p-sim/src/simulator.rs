//! [`Sim`]: the simulated network, its nodes, and what users do on them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use py2p_wire::Flag;

use super::garbage::{Garbage, GarbagePeer};
use super::network::{node_addr, Network, PORT};
use super::node::{Actor, ActorCommand, Delivery, Maxima, MeshNode, SeenEvent, Slot};
use super::SimConfig;
use py2p::internals::Command;
use py2p::MeshConfig;
use py2p::{Message, PeerInfo, Status};
use py2p_testkit::Rng;

/// A broadcast made through [`Sim::broadcast`], and who should get it.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    pub id: String,
    pub sender: usize,
    pub at: Duration,
    /// Nodes (and their lives) in the sender's component when it was sent.
    pub expected: Vec<(usize, u32)>,
    /// Sent while the network was disturbed (partitioned, a node not reading).
    pub disturbed: bool,
}

/// A deterministic simulated mesh network: real [`MeshSocket`](py2p::MeshSocket) node
/// logic, no sockets, no threads, virtual time.
///
/// Nodes are numbered from 0 in the order they are added; node `i` listens at
/// `10.0.0.{i+1}:4444` (the addresses are only names: nothing touches a network). Time
/// moves only in [`Sim::run_for`] and [`Sim::step`], from event to event. Every random
/// choice (latencies, jitter, how frames are cut, faults) comes from the seed, so a seed
/// replays exactly: [`Sim::trace_hash`] fingerprints a run.
///
/// User actions ([`Sim::connect`], [`Sim::broadcast`], [`Sim::whisper`], handlers) act at
/// once, as calls on a `MeshSocket` would. What each node's user received is kept
/// ([`Sim::deliveries`]), and [`Sim::check_all`] checks the network's promises on it.
///
/// ```
/// use std::time::Duration;
/// use py2p_sim::{Sim, SimConfig};
///
/// let mut sim = Sim::new(42, SimConfig::default());
/// let nodes = sim.add_nodes(5);
/// for i in nodes.clone().skip(1) {
///     sim.connect(i, i - 1); // a chain; peer lists fill it in
/// }
/// sim.run_for(Duration::from_secs(5));
/// sim.broadcast(0, &["hello"]);
/// sim.run_for(Duration::from_secs(5));
/// for i in nodes.skip(1) {
///     assert_eq!(sim.received(i).len(), 1);
///     assert_eq!(sim.received(i)[0].message.packets(), [b"hello".to_vec()]);
/// }
/// assert!(sim.check_all().is_empty());
/// ```
pub struct Sim {
    pub(super) seed: u64,
    pub(super) slots: Vec<Slot>,
    pub(super) network: Network,
    pub(super) tracked: Vec<Tracked>,
    pub(super) tracked_ids: BTreeSet<String>,
    /// The rng for users' scenarios, apart from the network's.
    pub(super) user_rng: Rng,
    /// Ids of every life of every mesh node: the honest senders.
    pub(super) mesh_ids: BTreeSet<String>,
}

impl Sim {
    /// An empty network; everything random in it derives from `seed`.
    pub fn new(seed: u64, config: SimConfig) -> Sim {
        let mut network = Network::new(seed, config);
        let user_rng = network.rng.fork();
        Sim {
            seed,
            slots: Vec::new(),
            network,
            tracked: Vec::new(),
            tracked_ids: BTreeSet::new(),
            user_rng,
            mesh_ids: BTreeSet::new(),
        }
    }

    /// The seed the run derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The configuration of the run.
    pub fn config(&self) -> &SimConfig {
        &self.network.config
    }

    /// A random generator for the scenario's own choices (which node fails, who sends),
    /// derived from the seed and apart from the network's.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.user_rng
    }

    // ----- nodes -----

    /// Adds a mesh node with the run's configuration and starts it (it connects to nobody
    /// until told to). Returns its number.
    pub fn add_node(&mut self) -> usize {
        let config = self.network.config.mesh.clone();
        self.add_node_with(config)
    }

    /// Adds `n` mesh nodes; returns their numbers.
    pub fn add_nodes(&mut self, n: usize) -> std::ops::Range<usize> {
        let first = self.slots.len();
        for _ in 0..n {
            self.add_node();
        }
        first..self.slots.len()
    }

    /// Adds a mesh node with its own configuration (`bind` and `out_addr` are replaced by
    /// its simulated address).
    pub fn add_node_with(&mut self, mut config: MeshConfig) -> usize {
        let index = self.slots.len();
        let addr = node_addr(index);
        config.bind = addr;
        config.out_addr = Some((addr.ip().to_string(), PORT));
        let mut endpoint = self.new_endpoint(index, 0, &config.net);
        let node = self.new_mesh_node(index, 0, &config, None, &mut endpoint);
        self.push_slot(Actor::Mesh(Box::new(node)), endpoint, config, None)
    }

    /// Adds a sync-table node, as [`SyncSocket`](py2p::SyncSocket) runs one: the run's
    /// mesh configuration with py2p's leasing digit appended to its subnet (`"mesh"`
    /// becomes `"mesh1"` with leases), so it only talks to sync nodes of the same kind.
    /// Returns its number; [`Sim::sync_set`] and [`Sim::sync_entry`] act on its table.
    pub fn add_sync_node(&mut self, leasing: bool) -> usize {
        let mut config = self.network.config.mesh.clone();
        let subnet = format!("{}{}", config.protocol.subnet, u8::from(leasing));
        config.protocol = py2p_wire::Protocol::new(subnet, config.protocol.encryption);
        let index = self.slots.len();
        let addr = node_addr(index);
        config.bind = addr;
        config.out_addr = Some((addr.ip().to_string(), PORT));
        let mut endpoint = self.new_endpoint(index, 0, &config.net);
        let node = self.new_mesh_node(index, 0, &config, Some(leasing), &mut endpoint);
        self.push_slot(Actor::Mesh(Box::new(node)), endpoint, config, Some(leasing))
    }

    /// Adds a peer that dials `target` and misbehaves as `kind` says, again and again.
    pub fn add_garbage_peer(&mut self, target: usize, kind: Garbage) -> usize {
        let index = self.slots.len();
        let config = self.network.config.mesh.clone();
        let actor = Actor::Garbage(Box::new(self.new_garbage(index, target, kind, &config)));
        let endpoint = self.new_endpoint(index, 0, &config.net);
        self.push_slot(actor, endpoint, config, None)
    }

    pub(super) fn new_mesh_node(
        &mut self,
        index: usize,
        incarnation: u32,
        config: &MeshConfig,
        leasing: Option<bool>,
        endpoint: &mut py2p_net::Endpoint,
    ) -> MeshNode {
        let addr = node_addr(index);
        let host = addr.ip().to_string();
        let salt = format!("sim seed {:#x} node {index} life {incarnation}", self.seed);
        let id = py2p::internals::node_id(&host, PORT, &config.protocol.id(), &salt);
        self.mesh_ids.insert(id.clone());
        endpoint.set_unix_time(self.network.unix_time());
        MeshNode::new(config.clone(), id, (host, PORT), leasing, endpoint)
    }

    fn new_garbage(
        &mut self,
        index: usize,
        target: usize,
        kind: Garbage,
        config: &MeshConfig,
    ) -> GarbagePeer {
        let addr = node_addr(index);
        let rng = self.network.rng.fork();
        GarbagePeer::new(
            kind,
            node_addr(target),
            rng,
            config.protocol.id(),
            (addr.ip().to_string(), PORT),
        )
    }

    pub(super) fn push_slot(
        &mut self,
        actor: Actor,
        endpoint: py2p_net::Endpoint,
        config: MeshConfig,
        leasing: Option<bool>,
    ) -> usize {
        let index = self.slots.len();
        self.network.node_ends.push(BTreeSet::new());
        self.network.listeners.insert(node_addr(index), index);
        self.slots.push(Slot {
            actor,
            endpoint,
            config,
            leasing,
            alive: true,
            incarnation: 0,
            reading: true,
            user_reading: true,
            deliveries: Vec::new(),
            received: Vec::new(),
            events: Vec::new(),
            maxima: Maxima::default(),
        });
        let id = self.id(index).to_owned();
        self.network
            .trace
            .record_with(self.network.now, "node starts", index, 0, &[], || {
                format!("id {}", super::trace::short(&id))
            });
        index
    }

    /// How many nodes were ever added (dead ones included).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no node was added yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether node `i` runs (it was added and is not killed).
    pub fn is_alive(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.alive)
    }

    /// Whether node `i` is a mesh node (not a garbage peer).
    pub fn is_mesh(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.actor.mesh().is_some())
    }

    /// The live mesh nodes, in order.
    pub fn live_nodes(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.is_alive(i) && self.is_mesh(i))
            .collect()
    }

    /// Node `i`'s id in its current life ("" for a garbage peer or an unknown node).
    pub fn id(&self, i: usize) -> &str {
        self.slots
            .get(i)
            .and_then(|s| s.actor.mesh())
            .map_or("", |m| m.id.as_str())
    }

    /// The node whose current life has this id.
    pub fn node_of(&self, id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.actor.mesh().is_some_and(|m| m.id == id))
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        node_addr(i)
    }

    /// How many times node `i` was restarted.
    pub fn incarnation(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.incarnation)
    }

    // ----- time -----

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.network.now
    }

    /// The simulated Unix time (whole seconds), as nodes stamp messages.
    pub fn unix_time(&self) -> u64 {
        self.network.unix_time()
    }

    /// Runs the next event; returns `false` when nothing is left to happen (no node runs).
    pub fn step(&mut self) -> bool {
        match self.network.queue.pop() {
            Some((at, event)) => {
                self.dispatch(at, event);
                true
            }
            None => false,
        }
    }

    /// Runs every event up to `now + d`, then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.network.now + d;
        self.run_until(until);
    }

    /// Runs every event up to virtual time `t`, then sets the clock there.
    pub fn run_until(&mut self, t: Duration) {
        while self.network.queue.peek_time().is_some_and(|at| at <= t) {
            self.step();
        }
        self.network.now = self.network.now.max(t);
    }

    // ----- user actions -----

    /// Runs a command on node `i` as its event loop would, then finishes the turn.
    pub(super) fn command(&mut self, i: usize, cmd: Command) -> bool {
        let Some((endpoint, actor @ Actor::Mesh(_), _)) = self.parts(i) else {
            return false;
        };
        endpoint.command(ActorCommand::Mesh(cmd), actor);
        // One command per turn: the run of commands ends here (a broadcast waits for it).
        endpoint.commands_done(actor);
        self.after_turn(i);
        true
    }

    /// Node `from` dials node `to` (`MeshSocket::connect`).
    pub fn connect(&mut self, from: usize, to: usize) {
        let addr = node_addr(to);
        self.network.trace.record(
            self.network.now,
            &format!("user: connect to {to}"),
            from,
            0,
            &[],
        );
        self.command(
            from,
            Command::Connect {
                addr,
                expected_id: None,
                reply: py2p::internals::ConnectReply::None,
            },
        );
    }

    /// Node `from` dials an address (which need not belong to any node).
    pub fn connect_addr(&mut self, from: usize, addr: SocketAddr) {
        self.command(
            from,
            Command::Connect {
                addr,
                expected_id: None,
                reply: py2p::internals::ConnectReply::None,
            },
        );
    }

    /// Node `from` closes its connection to node `to` (`MeshSocket::disconnect`).
    pub fn disconnect(&mut self, from: usize, to: usize) {
        let id = self.id(to).to_owned();
        self.command(from, Command::Disconnect { id });
    }

    /// Node `from` broadcasts `packets` (`MeshSocket::send`); returns the message id.
    ///
    /// The broadcast is remembered for [`Sim::check_deliveries`]: every node in the
    /// sender's component now must deliver it once. py2p's ids depend only on the packets
    /// and the second they are sent, so make the packets unique (a counter will do): two
    /// broadcasts with the same packets in the same second are one message to the network.
    pub fn broadcast<P: AsRef<[u8]>>(&mut self, from: usize, packets: &[P]) -> String {
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        let mut payload = vec![vec![Flag::BROADCAST.0]];
        payload.extend(packets.iter().cloned());
        let sender_id = self.id(from).to_owned();
        let id = py2p_wire::Message::new(
            vec![Flag::BROADCAST.0],
            sender_id.into_bytes(),
            payload,
            self.unix_time(),
        )
        .id()
        .to_owned();
        if self.is_alive(from) && self.is_mesh(from) && self.tracked_ids.insert(id.clone()) {
            let component = self.component_of(from);
            let expected = component
                .into_iter()
                .filter(|&n| n != from)
                .map(|n| (n, self.incarnation(n)))
                .collect();
            let disturbed = self.is_disturbed();
            self.tracked.push(Tracked {
                id: id.clone(),
                sender: from,
                at: self.network.now,
                expected,
                disturbed,
            });
        }
        self.network.trace.record_with(
            self.network.now,
            "user: broadcast",
            from,
            0,
            id.as_bytes(),
            || format!("id {}", super::trace::short(&id)),
        );
        self.command(from, Command::Broadcast { packets, bytes: 0 });
        id
    }

    /// Node `from` whispers `packets` to node `to` (`MeshSocket::whisper`): directly when
    /// connected, else through the network's request/response.
    pub fn whisper<P: AsRef<[u8]>>(&mut self, from: usize, to: usize, packets: &[P]) {
        let packets = packets.iter().map(|p| p.as_ref().to_vec()).collect();
        let target = self.id(to).to_owned();
        self.network.trace.record(
            self.network.now,
            &format!("user: whisper to {to}"),
            from,
            0,
            &[],
        );
        self.command(from, Command::Whisper { target, packets });
    }

    /// Registers a message handler on node `i` (`MeshSocket::register_handler`); it runs
    /// inside the node's turn, as on the event-loop thread. (The handler's `Connection`
    /// cannot send in a simulation: it needs a real event loop.)
    pub fn register_handler(
        &mut self,
        i: usize,
        handler: impl FnMut(&Message, &py2p::Connection) -> bool + Send + 'static,
    ) {
        self.command(i, Command::RegisterHandler(Box::new(handler)));
    }

    /// Stores `value` at `key` in sync node `i`'s table, as [`SyncSocket::set`](py2p::SyncSocket::set)
    /// does (an empty value deletes); `None` when `i` is not a live sync node.
    pub fn sync_set(
        &mut self,
        i: usize,
        key: &[u8],
        value: &[u8],
    ) -> Option<Result<Option<Vec<u8>>, py2p::Error>> {
        self.sync_table(i)?;
        let (reply, answer) = std::sync::mpsc::channel();
        let cmd = py2p::internals::SyncCommand::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            reply,
        };
        self.command(i, Command::Sync(cmd));
        answer.try_recv().ok()
    }

    fn sync_table(&self, i: usize) -> Option<&py2p::internals::SyncTable> {
        let slot = self.slots.get(i)?;
        if !slot.alive {
            return None;
        }
        slot.actor.mesh()?.core.sync.as_ref()
    }

    /// The entry at `key` of sync node `i`'s table (`SyncSocket::entry`).
    pub fn sync_entry(&self, i: usize, key: &[u8]) -> Option<py2p::Entry> {
        let table = self.sync_table(i)?;
        table.data.get(key).cloned()
    }

    /// How many keys sync node `i`'s table holds (0 for any other node).
    pub fn sync_len(&self, i: usize) -> usize {
        self.sync_table(i).map_or(0, |t| t.data.len())
    }

    /// How many frames took each way through node `i`'s handlers, and how many `store`
    /// messages had each outcome on a sync node: (name, count) pairs.
    pub(super) fn handler_paths(&self, i: usize) -> Vec<(&'static str, u64)> {
        let Some(mesh) = self.slots.get(i).and_then(|s| s.actor.mesh()) else {
            return Vec::new();
        };
        let mut out: Vec<(&'static str, u64)> = mesh
            .paths()
            .into_iter()
            .map(|(p, n)| (p.name(), n))
            .collect();
        if let Some(chord) = &mesh.core.chord {
            for o in py2p::internals::ChordOutcome::ALL {
                out.push((
                    o.name(),
                    chord.outcomes.get(o as usize).copied().unwrap_or(0),
                ));
            }
        }
        if let Some(table) = &mesh.core.sync {
            for o in py2p::internals::StoreOutcome::ALL {
                out.push((
                    o.name(),
                    table.outcomes.get(o as usize).copied().unwrap_or(0),
                ));
            }
        }
        out
    }

    // ----- what nodes know -----

    /// Node `i`'s status (`MeshSocket::status`); `None` for a dead node or a garbage peer.
    pub fn status(&mut self, i: usize) -> Option<Status> {
        let (endpoint, actor, _) = self.parts(i)?;
        actor.mesh_mut()?.status(endpoint)
    }

    /// Node `i`'s routing table (`MeshSocket::peers`); empty for a dead node.
    pub fn peers(&mut self, i: usize) -> Vec<PeerInfo> {
        let Some((endpoint, actor, _)) = self.parts(i) else {
            return Vec::new();
        };
        actor
            .mesh_mut()
            .map_or_else(Vec::new, |mesh| mesh.peers(endpoint))
    }

    /// The routing graph: for every live mesh node, the live mesh nodes it routes to.
    pub fn routing_table(&mut self) -> BTreeMap<usize, BTreeSet<usize>> {
        let live = self.live_nodes();
        let ids: BTreeMap<String, usize> =
            live.iter().map(|&i| (self.id(i).to_owned(), i)).collect();
        let mut graph = BTreeMap::new();
        for &i in &live {
            let routed = self
                .peers(i)
                .into_iter()
                .filter_map(|p| ids.get(&p.id).copied())
                .collect();
            graph.insert(i, routed);
        }
        graph
    }

    /// The connected components of the routing graph (links count when both ends route
    /// them), each sorted, largest first.
    pub fn routing_components(&mut self) -> Vec<Vec<usize>> {
        let graph = self.routing_table();
        components(&graph)
    }

    /// The live mesh nodes `i` can reach through routing tables, itself included.
    pub fn component_of(&mut self, i: usize) -> Vec<usize> {
        self.routing_components()
            .into_iter()
            .find(|c| c.contains(&i))
            .unwrap_or_default()
    }

    /// Messages node `i` delivered, in order, over all its lives: what its handlers saw
    /// and its inbox took, when they did (whether or not its user took them yet). The
    /// checks of [`Sim::check_deliveries`] are made on these.
    pub fn deliveries(&self, i: usize) -> &[Delivery] {
        self.slots.get(i).map_or(&[], |s| s.deliveries.as_slice())
    }

    /// Messages node `i`'s user took from the inbox (what `recv` would have returned),
    /// when it took them. A user keeps taking them at once unless [`Sim::pause_user`]
    /// paused it; handlers that return `true` keep messages from here.
    pub fn received(&self, i: usize) -> &[Delivery] {
        self.slots.get(i).map_or(&[], |s| s.received.as_slice())
    }

    /// Peer events node `i`'s user saw, over all its lives.
    pub fn events(&self, i: usize) -> &[SeenEvent] {
        self.slots.get(i).map_or(&[], |s| s.events.as_slice())
    }

    /// The highest memory figures node `i` showed at its ticks.
    pub fn maxima(&self, i: usize) -> Maxima {
        self.slots.get(i).map_or_else(Maxima::default, |s| s.maxima)
    }

    /// Bytes node `i` has queued to peers and not yet written (its loop's write queues).
    pub fn queued_bytes(&self, i: usize) -> usize {
        self.slots
            .get(i)
            .filter(|s| s.alive)
            .map_or(0, |s| s.endpoint.total_queued())
    }

    /// Open connections node `i` holds towards node `j` (dials in progress not counted).
    pub fn connections_between(&self, i: usize, j: usize) -> usize {
        self.network.node_ends.get(i).map_or(0, |set| {
            set.iter()
                .filter(|c| {
                    self.network
                        .ends
                        .get(c)
                        .is_some_and(|e| e.peer_node == j && !e.finished && !e.connecting)
                })
                .count()
        })
    }

    /// Connections (and dials) node `i` holds.
    pub fn connections(&self, i: usize) -> usize {
        self.slots
            .get(i)
            .filter(|s| s.alive)
            .map_or(0, |s| s.endpoint.len())
    }

    /// A fingerprint of everything that happened so far: two runs of a seed with the same
    /// actions give the same value.
    pub fn trace_hash(&self) -> u64 {
        self.network.trace.hash()
    }

    /// The events of the run as text, when [`SimConfig::trace_lines`] is set.
    pub fn trace_lines(&self) -> &[String] {
        self.network.trace.lines()
    }

    /// Whether a partition is in place or a node does not read.
    pub(super) fn is_disturbed(&self) -> bool {
        self.network.cut.is_some()
            || self
                .slots
                .iter()
                .any(|s| s.alive && (!s.reading || !s.user_reading))
    }
}

/// Connected components of `graph`, counting only links both ends route (a link one end
/// does not know yet carries nothing to it), largest first.
pub(super) fn components(graph: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    let mut undirected: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (&a, bs) in graph {
        undirected.entry(a).or_default();
        for &b in bs {
            if graph.get(&b).is_some_and(|r| r.contains(&a)) {
                undirected.entry(a).or_default().insert(b);
                undirected.entry(b).or_default().insert(a);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &start in undirected.keys() {
        if !seen.insert(start) {
            continue;
        }
        let mut comp = vec![start];
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in undirected.get(&n).into_iter().flatten() {
                if seen.insert(m) {
                    comp.push(m);
                    stack.push(m);
                }
            }
        }
        comp.sort_unstable();
        out.push(comp);
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out
}
