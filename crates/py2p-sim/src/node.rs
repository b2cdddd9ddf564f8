//! The nodes of a simulation: real mesh nodes (the [`MeshNode`](py2p::internals::MeshNode) a
//! `MeshSocket` runs) and misbehaving peers, each
//! with what its user saw.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use py2p_net::{CloseReason, ConnId, ConnInfo, Endpoint, Net, Service};

use super::garbage::GarbagePeer;
use super::scripted::ScriptedPeer;
use py2p::internals::{Command, Path, Shared, SyncTable, SyncView};
use py2p::{MeshConfig, Message, PeerEvent, PeerInfo, Status};

/// A message a simulated node delivered: to its handlers and inbox (see
/// [`Sim::deliveries`](super::Sim::deliveries)), or as its user took it from the inbox (see
/// [`Sim::received`](super::Sim::received)).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Virtual time of the delivery.
    pub at: Duration,
    /// Unix time of the delivery (the simulation's clock).
    pub unix_time: u64,
    /// The life of the node it was delivered to (0 until its first restart).
    pub incarnation: u32,
    /// The message.
    pub message: Message,
}

/// A peer event as a simulated node's user saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// Virtual time of the event.
    pub at: Duration,
    /// The life of the node.
    pub incarnation: u32,
    /// The event.
    pub event: PeerEvent,
}

/// A real mesh node and the state it shares with its (simulated) user.
pub(super) struct MeshNode {
    /// The node as a `MeshSocket`'s event loop runs it: core, table, handlers, inbox.
    pub core: py2p::internals::MeshNode,
    pub shared: Arc<Shared>,
    pub id: String,
    /// Messages the node delivered (to handlers and inbox) since the simulator last looked:
    /// a first handler, registered before any of the user's, notes them.
    pub delivered: Arc<Mutex<Vec<Message>>>,
    /// The copy of the sync table its user reads, and the change events, for a sync node.
    pub sync_view: Option<Arc<SyncView>>,
    /// Frames by the way they went through the node (indexed by `Path as usize`), counted
    /// by the observer the simulator gives its core.
    paths: Arc<[AtomicU64; Path::ALL.len()]>,
}

impl MeshNode {
    /// A mesh node; with `leasing` set, a sync node (leasing or not), as `SyncSocket` runs.
    pub fn new(
        config: MeshConfig,
        id: String,
        out_addr: (String, u16),
        leasing: Option<bool>,
        net: &mut dyn Net,
    ) -> MeshNode {
        let shared = Arc::new(Shared::new(&config));
        let sync_view = leasing.map(|_| Arc::new(SyncView::new(config.inbox_capacity)));
        let table = leasing
            .zip(sync_view.clone())
            .map(|(leasing, view)| (SyncTable::new(leasing, config.max_table_bytes), view));
        let mut core =
            py2p::internals::MeshNode::new(config, id.clone(), out_addr, shared.clone(), table);
        let paths: Arc<[AtomicU64; Path::ALL.len()]> = Arc::default();
        let counts = paths.clone();
        core.observe_paths(Box::new(move |path| {
            if let Some(n) = counts.get(path as usize) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let delivered: Arc<Mutex<Vec<Message>>> = Arc::default();
        let notes = delivered.clone();
        core.on_command(
            net,
            Command::RegisterHandler(Box::new(move |msg: &Message, _: &py2p::Connection| {
                notes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(msg.clone());
                false
            })),
        );
        MeshNode {
            core,
            shared,
            id,
            delivered,
            sync_view,
            paths,
        }
    }

    /// How many frames went each way through the node since it started (see [`Path`]).
    pub fn paths(&self) -> Vec<(Path, u64)> {
        Path::ALL
            .iter()
            .map(|&p| {
                let n = self
                    .paths
                    .get(p as usize)
                    .map_or(0, |n| n.load(Ordering::Relaxed));
                (p, n)
            })
            .collect()
    }

    /// Takes the messages delivered since the last call.
    pub fn take_delivered(&self) -> Vec<Message> {
        std::mem::take(&mut *self.delivered.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Asks the core for its status, as `MeshSocket::status` does.
    pub fn status(&mut self, net: &mut dyn Net) -> Option<Status> {
        let (tx, rx) = mpsc::channel();
        self.core.on_command(net, Command::Status(tx));
        rx.try_recv().ok()
    }

    /// Asks the core for its routing table, as `MeshSocket::peers` does.
    pub fn peers(&mut self, net: &mut dyn Net) -> Vec<PeerInfo> {
        let (tx, rx) = mpsc::channel();
        self.core.on_command(net, Command::Peers(tx));
        rx.try_recv().unwrap_or_default()
    }
}

/// What runs at a node's address.
pub(super) enum Actor {
    Mesh(Box<MeshNode>),
    Garbage(Box<GarbagePeer>),
    Scripted(Box<ScriptedPeer>),
}

impl Actor {
    pub fn mesh(&self) -> Option<&MeshNode> {
        match self {
            Actor::Mesh(m) => Some(m),
            Actor::Garbage(_) | Actor::Scripted(_) => None,
        }
    }

    pub fn mesh_mut(&mut self) -> Option<&mut MeshNode> {
        match self {
            Actor::Mesh(m) => Some(m),
            Actor::Garbage(_) | Actor::Scripted(_) => None,
        }
    }
}

/// What a simulated user asks of a node, through its endpoint as a socket's commands go
/// through the event loop.
pub(super) enum ActorCommand {
    /// A `MeshSocket` call, for a mesh node.
    Mesh(Command),
    /// What a fuzz target makes a scripted peer do.
    Scripted(ScriptedAct),
}

/// One act of a scripted peer, run in its turn with its endpoint as the network.
pub(super) type ScriptedAct = Box<dyn FnOnce(&mut ScriptedPeer, &mut dyn Net) + Send>;

/// Whatever runs at an address is the service of that node's [`Endpoint`](py2p_net::Endpoint):
/// commands go to mesh nodes (the other actors take none).
impl Service for Actor {
    type Command = ActorCommand;

    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
        match self {
            Actor::Mesh(m) => m.core.on_open(net, conn, info),
            Actor::Garbage(g) => g.on_open(net, conn, info),
            Actor::Scripted(s) => s.on_open(net, conn, info),
        }
    }
    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        match self {
            Actor::Mesh(m) => m.core.on_frame(net, conn, body),
            Actor::Garbage(g) => g.on_frame(net, conn, body),
            Actor::Scripted(s) => s.on_frame(net, conn, body),
        }
    }
    fn on_frames_done(&mut self, net: &mut dyn Net) {
        match self {
            Actor::Mesh(m) => m.core.on_frames_done(net),
            Actor::Garbage(g) => g.on_frames_done(net),
            Actor::Scripted(s) => s.on_frames_done(net),
        }
    }
    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason) {
        match self {
            Actor::Mesh(m) => m.core.on_close(net, conn, reason),
            Actor::Garbage(g) => g.on_close(net, conn, reason),
            Actor::Scripted(s) => s.on_close(net, conn, reason),
        }
    }
    fn on_command(&mut self, net: &mut dyn Net, cmd: ActorCommand) {
        match (self, cmd) {
            (Actor::Mesh(m), ActorCommand::Mesh(cmd)) => m.core.on_command(net, cmd),
            (Actor::Scripted(s), ActorCommand::Scripted(f)) => f(s, net),
            _ => {}
        }
    }
    fn on_commands_done(&mut self, net: &mut dyn Net) {
        match self {
            Actor::Mesh(m) => m.core.on_commands_done(net),
            Actor::Garbage(g) => g.on_commands_done(net),
            Actor::Scripted(s) => s.on_commands_done(net),
        }
    }
    fn on_tick(&mut self, net: &mut dyn Net) {
        match self {
            Actor::Mesh(m) => m.core.on_tick(net),
            Actor::Garbage(g) => g.on_tick(net),
            Actor::Scripted(s) => s.on_tick(net),
        }
    }
    fn wants_input(&self) -> bool {
        match self {
            Actor::Mesh(m) => m.core.wants_input(),
            Actor::Garbage(g) => g.wants_input(),
            Actor::Scripted(s) => s.wants_input(),
        }
    }
    fn make_room(&mut self) -> Option<ConnId> {
        match self {
            Actor::Mesh(m) => m.core.make_room(),
            Actor::Garbage(g) => g.make_room(),
            Actor::Scripted(s) => s.make_room(),
        }
    }
    fn on_shutdown(&mut self) {
        match self {
            Actor::Mesh(m) => m.core.on_shutdown(),
            Actor::Garbage(g) => g.on_shutdown(),
            Actor::Scripted(s) => s.on_shutdown(),
        }
    }
    fn before_write(&mut self, net: &mut dyn Net) {
        match self {
            Actor::Mesh(m) => m.core.before_write(net),
            Actor::Garbage(g) => g.before_write(net),
            Actor::Scripted(s) => s.before_write(net),
        }
    }
    fn on_backlog(&mut self, queued_bytes: usize) {
        match self {
            Actor::Mesh(m) => m.core.on_backlog(queued_bytes),
            Actor::Garbage(g) => g.on_backlog(queued_bytes),
            Actor::Scripted(s) => s.on_backlog(queued_bytes),
        }
    }
}

/// Highest values seen at a node's ticks, for the memory checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maxima {
    /// Broadcast ids remembered (`Status::seen_ids`).
    pub seen_ids: usize,
    /// Whispers waiting for a route (`Status::pending_requests`).
    pub pending_requests: usize,
    /// Bytes queued to all peers together.
    pub queued_bytes: usize,
    /// Bytes queued to one peer.
    pub conn_queue: usize,
    /// Connections held at once.
    pub connections: usize,
    /// Messages waiting in the inbox.
    pub inbox: usize,
}

impl Maxima {
    pub(super) fn update(&mut self, other: Maxima) {
        self.seen_ids = self.seen_ids.max(other.seen_ids);
        self.pending_requests = self.pending_requests.max(other.pending_requests);
        self.queued_bytes = self.queued_bytes.max(other.queued_bytes);
        self.conn_queue = self.conn_queue.max(other.conn_queue);
        self.connections = self.connections.max(other.connections);
        self.inbox = self.inbox.max(other.inbox);
    }
}

/// One address of the simulated network, through the lives of what runs there.
pub(super) struct Slot {
    pub actor: Actor,
    /// The node's connections and every rule they obey: the same endpoint a `MeshSocket`'s
    /// event loop drives, here driven by the simulator.
    pub endpoint: Endpoint,
    /// The configuration it was started with (restarts reuse it).
    pub config: MeshConfig,
    /// For a sync node, whether its table leases keys (restarts keep it).
    pub leasing: Option<bool>,
    pub alive: bool,
    pub incarnation: u32,
    /// Whether the node's loop reads its sockets (a frozen node does not).
    pub reading: bool,
    /// Whether its user takes messages from the inbox.
    pub user_reading: bool,
    /// Messages delivered (handlers and inbox).
    pub deliveries: Vec<Delivery>,
    /// Messages the user took from the inbox.
    pub received: Vec<Delivery>,
    pub events: Vec<SeenEvent>,
    pub maxima: Maxima,
}
