//! The node a `MeshSocket` runs (and the simulator too): the mesh core, the sync or chord
//! table, and what the core leaves to the node: the user's handlers, the inbox and peer
//! events, the answers to `connect`, the copies of the routing table and status that
//! users' threads read ([`Shared`]), and host-name lookups on the resolver's thread. It is
//! the [`Service`] the connection machine (`py2p_net::Endpoint`) calls; after each call it
//! carries out the core's [`Effect`]s, in order. The tables are state machines too: the
//! node applies the sync table's changes to the copy users read ([`SyncView`]) and sends
//! the chord table's answers to whoever waits for them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, warn};
use py2p_net::{CloseReason, ConnId, ConnInfo, Net, Service};
use py2p_wire::Flag;

use super::command::{Command, ConnectReply, Handler};
use super::core::{dropped_note, Connecting, Effect, HeldRelays, MeshCore, Out, Tables, Taken};
use super::link::MeshLink;
use super::resolver::{Resolution, Resolver, Sink};
use super::shared::Shared;
use super::status::Status;
use crate::chord::{ChordCommand, ChordEffect, ChordReply, ChordTable, RequestId};
use crate::config::MeshConfig;
use crate::connection::{is_user_sub_flag, Connection, SendOn};
use crate::error::ConnectError;
use crate::inbox::Staged;
use crate::message::{Message, MessageKind, PeerEvent};
use crate::sync::{SyncCommand, SyncTable, SyncView};

#[cfg(test)]
mod batch_tests;
mod broadcasts;
#[cfg(test)]
mod tests;

use broadcasts::{Broadcasts, Packets};

/// A mesh node: the core and everything around it that is not py2p's rules.
pub struct MeshNode {
    /// The protocol logic.
    core: MeshCore,
    /// The sync table of a sync node.
    pub sync: Option<SyncTable>,
    /// The sync table's copy that users' threads read, kept equal to `sync`.
    sync_view: Option<Arc<SyncView>>,
    /// The chord table of a chord node.
    pub chord: Option<ChordTable>,
    /// Who waits for the answer to each chord request, and the next request's name.
    chord_replies: HashMap<RequestId, ChordReply>,
    next_request: RequestId,
    /// What users' threads share with the loop.
    shared: Arc<Shared>,
    handlers: Vec<Handler>,
    /// Host names peers advertise, looked up off the loop's thread.
    resolver: Resolver,
    /// Who waits for each `connect` the core is dialling.
    replies: HashMap<ConnId, ConnectReply>,
    /// The handles handlers get, by connection: made once per connection (and again after
    /// its handshake), not once per message.
    conn_handles: HashMap<ConnId, Connection>,
    /// When the status was last published.
    published_at: Option<Instant>,
    /// The relays held back for the rest of the loop's turn (see `Out`). Each callback
    /// takes them out beside the net it is given, so everything the node sends goes out
    /// after them; boxed, so that is a pointer's move. (A callback that panics loses them;
    /// the loop stops then anyway.)
    held: Option<Box<HeldRelays>>,
    /// Bytes of users' sends handled since the last `on_backlog`, released there with the
    /// queued total in one update of the counters the senders read (one per turn, or per
    /// flush of a long run of commands), not one per send: those counters' cache line
    /// went back and forth between the sender's thread and the loop's for every message.
    sends_done: usize,
    /// Messages for the inbox not handed over yet: they go in together (see [`Staged`]),
    /// at the latest at the end of the loop's turn (`on_backlog`).
    staged: Staged<Message>,
    /// The users' broadcasts waiting to have their ids hashed together: sent before
    /// anything else the node does (see `broadcasts.rs`).
    broadcasts: Broadcasts,
}

impl MeshNode {
    /// A node with id `id` advertising `out_addr`; with `sync`, a sync node (its table, and
    /// the copy of it that users read).
    pub fn new(
        config: MeshConfig,
        id: String,
        out_addr: (String, u16),
        shared: Arc<Shared>,
        sync: Option<(SyncTable, Arc<SyncView>)>,
    ) -> MeshNode {
        let (sync, sync_view) = sync.unzip();
        MeshNode {
            core: MeshCore::new(config, id, out_addr),
            sync,
            sync_view,
            chord: None,
            chord_replies: HashMap::new(),
            next_request: 0,
            shared,
            handlers: Vec::new(),
            resolver: Resolver::new(),
            replies: HashMap::new(),
            conn_handles: HashMap::new(),
            published_at: None,
            held: Some(Box::new(HeldRelays::new())),
            sends_done: 0,
            staged: Staged::default(),
            broadcasts: Broadcasts::default(),
        }
    }

    /// Runs `f` with the net wrapped in [`Out`]: whatever it sends, closes or dials goes out
    /// after the relays held in this turn.
    fn with_out(&mut self, net: &mut dyn Net, f: impl FnOnce(&mut MeshNode, &mut Out<'_>)) {
        let mut held = self
            .held
            .take()
            .unwrap_or_else(|| Box::new(HeldRelays::new()));
        f(self, &mut Out::new(net, &mut held));
        self.held = Some(held);
    }

    /// Sends the users' broadcasts waiting in the batch, in order, as their commands would
    /// have one by one: every callback with a net does so before anything else.
    #[inline]
    fn finish_broadcasts(&mut self, net: &mut dyn Net) {
        if !self.broadcasts.is_empty() {
            // The bytes are in the write queues now: senders see them at the end of the
            // turn (`on_backlog`).
            self.sends_done += self.broadcasts.send(&mut self.core, net);
            self.run_effects(net);
        }
    }

    /// Finishes what waits for a batched hash, the users' broadcasts then the parked
    /// received ones: what a callback does first, before its own work.
    fn finish_waiting(&mut self, net: &mut Out<'_>) {
        self.finish_broadcasts(net);
        self.finish_parked(net);
    }

    /// A user's broadcast joins the batch; a full batch is sent.
    fn wait(&mut self, net: &mut dyn Net, sub_flag: u8, packets: Packets, bytes: usize) {
        if self.broadcasts.push(net, sub_flag, packets, bytes) {
            self.finish_broadcasts(net);
        }
    }

    /// Has `observer` told of every path a frame takes through this node (see
    /// [`Path`](super::core::Path)): the fuzz harness counts them; users' nodes have none.
    #[cfg(feature = "internals")]
    pub fn observe_paths(&mut self, observer: super::core::PathObserver) {
        self.core.observe_paths(observer);
    }

    /// Hands the messages queued for the inbox to it now, and wakes its readers (the loop
    /// does so at the end of every turn): a driver that stands in for the loop and takes
    /// the user's messages in the same turn (the simulator) calls it first.
    pub fn flush_inbox(&mut self) {
        self.shared.inbox.flush(&mut self.staged);
    }

    fn tables(&self) -> Tables {
        Tables {
            sync: self.sync.is_some(),
            chord: self.chord.is_some(),
        }
    }

    /// Carries out the core's effects, oldest first (the tables may add more).
    fn run_effects(&mut self, net: &mut dyn Net) {
        self.run_table_effects();
        while let Some(effect) = self.core.poll_effect() {
            self.apply(net, effect);
            self.run_table_effects();
        }
    }

    /// Carries out the tables' effects, oldest first: the sync table's changes reach the
    /// users' copy and events (before anything else happens, so a handler or a `set`'s
    /// caller reads what the table holds), the chord table's answers their waiters.
    fn run_table_effects(&mut self) {
        if let (Some(sync), Some(view)) = (&mut self.sync, &self.sync_view) {
            while let Some(effect) = sync.poll_effect() {
                view.apply(effect);
            }
        }
        if let Some(chord) = &mut self.chord {
            while let Some(effect) = chord.poll_effect() {
                match effect {
                    ChordEffect::Answer { req, answer } => {
                        if let Some(reply) = self.chord_replies.remove(&req) {
                            reply.send(answer);
                        }
                    }
                }
            }
        }
    }

    /// A user's write to the sync table: answered once the change is in the users' copy.
    fn sync_command(&mut self, net: &mut dyn Net, cmd: SyncCommand) {
        let Some(sync) = &mut self.sync else { return };
        match cmd {
            SyncCommand::Set { key, value, reply } => {
                let result = sync.set(&mut self.core, net, key, value);
                self.run_table_effects();
                let _ = reply.send(result);
            }
        }
    }

    /// A user's request to the chord table: its waiter is kept under a new request id
    /// until the table answers.
    fn chord_command(&mut self, net: &mut dyn Net, cmd: ChordCommand) {
        let Some(chord) = &mut self.chord else { return };
        let (request, reply) = cmd.split();
        let req = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        if let Some(reply) = reply {
            self.chord_replies.insert(req, reply);
        }
        chord.on_request(&mut self.core, net, req, request);
        self.run_table_effects();
    }

    fn apply(&mut self, net: &mut dyn Net, effect: Effect) {
        match effect {
            Effect::Deliver { conn, msg } => self.deliver(conn, msg),
            Effect::PeerUp {
                conn,
                id,
                addr,
                newly_routed,
            } => {
                if let Some(sync) = &self.sync {
                    sync.send_all_keys(&mut self.core, net, conn);
                }
                if newly_routed {
                    if let Some(chord) = &mut self.chord {
                        chord.on_peer_up(&mut self.core, net, &id);
                    }
                    self.shared.push_event(PeerEvent::Connected { id, addr });
                }
            }
            Effect::PeerDown { id } => {
                if let Some(chord) = &mut self.chord {
                    chord.on_peer_down(&mut self.core, net, &id);
                }
                self.shared.push_event(PeerEvent::Disconnected { id });
                self.core.after_peer_down(net);
            }
            Effect::ConnectDone { conn, addr, result } => {
                if let Some(reply) = self.replies.remove(&conn) {
                    self.answer_connect(addr, reply, result);
                }
            }
            Effect::PeersChanged => self.publish_peers(),
            Effect::Error(text) => self.shared.note_error(text),
            Effect::Resolve {
                host,
                port,
                then,
                purpose,
            } => {
                let handle = self.shared.handle.get().cloned();
                let sink = move || -> Option<Sink> {
                    let handle = handle?;
                    Some(Box::new(move |lookup| {
                        handle
                            .send(Command::Resolved(Box::new((lookup, purpose))))
                            .is_ok()
                    }))
                };
                match self.resolver.resolve(&host, port, then, sink) {
                    Resolution::Now(addr, then) => {
                        self.core.dial_resolved(net, addr, then, purpose)
                    }
                    Resolution::Later => debug!("looking up {host}:{port} ({purpose:?})"),
                    Resolution::Refused(then) => warn!(
                        "cannot look up {host}:{port} now ({} lookups waiting; {purpose:?}){}",
                        self.resolver.pending(),
                        dropped_note(&then)
                    ),
                }
            }
            Effect::Store { conn, msg } => {
                if let Some(sync) = &mut self.sync {
                    let via = self.core.peer_label_of(conn);
                    sync.handle_store(net.unix_time(), &msg, &via);
                }
            }
            Effect::Chord { conn, msg } => {
                if let Some(chord) = &mut self.chord {
                    chord.on_message(&mut self.core, net, conn, &msg.payload().to_vec());
                }
            }
        }
    }

    /// Tells whoever waits on a `connect` to `addr` how it ended: the waiting thread or the
    /// callback either way, the event stream only of a failure.
    fn answer_connect(
        &self,
        addr: SocketAddr,
        reply: ConnectReply,
        result: Result<String, ConnectError>,
    ) {
        match (reply, result) {
            (ConnectReply::Wait(tx), result) => {
                let _ = tx.send(result);
            }
            (ConnectReply::Notify(tell), result) => tell(result),
            (ConnectReply::Event, Err(error)) => self
                .shared
                .push_event(PeerEvent::ConnectFailed { addr, error }),
            _ => {}
        }
    }

    /// The user's `connect`.
    fn connect(
        &mut self,
        net: &mut dyn Net,
        addr: SocketAddr,
        expected_id: Option<String>,
        reply: ConnectReply,
    ) {
        match self.core.connect(net, addr, expected_id) {
            Connecting::Done(result) => {
                // Errors the core noted go to `status()` first.
                self.run_effects(net);
                self.answer_connect(addr, reply, result);
            }
            Connecting::Dialling(conn) => {
                self.replies.insert(conn, reply);
            }
        }
    }

    /// Publishes the routing table for `peers()` (before any peer event that changes it).
    fn publish_peers(&mut self) {
        // The status copy counts the peers too: it is made again at the next chance.
        self.published_at = None;
        self.core
            .update_peer_infos(&mut self.shared.published().peers);
    }

    /// Publishes the status for `status()` calls made while the loop is busy in a handler.
    /// Unless the published copy is younger than `max_age` and the routing table did not
    /// change since: a loop turning fast (a flood of small messages) spends its time on them,
    /// not on copies of the status.
    fn publish_status(&mut self, max_age: Duration) {
        let dirty = self.core.take_peers_dirty();
        let routing_changed = dirty || self.published_at.is_none();
        if dirty {
            self.publish_peers();
        }
        let now = Instant::now();
        if !routing_changed
            && self
                .published_at
                .is_some_and(|t| now.duration_since(t) < max_age)
        {
            return;
        }
        self.published_at = Some(now);
        let status = self.status();
        self.shared.published().status = Some(status);
    }

    fn status(&self) -> Status {
        let mut status = self.core.status();
        status.inbox = self.shared.inbox.len() + self.staged.len();
        status
    }

    /// The handle handlers get on `conn`: made again once the peer's handshake names it.
    fn make_connection(&mut self, conn: ConnId) {
        let id = self.core.peer_id_ref(conn);
        let stale = self
            .conn_handles
            .get(&conn)
            .is_none_or(|c| c.peer_id.as_deref() != id);
        if stale {
            let mut handle = self.core.connection(conn);
            handle.handle = self
                .shared
                .handle
                .get()
                .map(|h| Arc::new(h.clone()) as Arc<dyn SendOn>);
            self.conn_handles.insert(conn, handle);
        }
    }

    /// A message for the user: each handler in turn until one takes it, then the inbox.
    fn deliver(&mut self, conn: ConnId, msg: py2p_wire::Message) {
        // How it travelled: a broadcast went through the waterfall (and was de-duplicated);
        // anything else came to this node alone. A broadcast sub-flag in a message sent to
        // this node alone does not make it a broadcast: a peer could otherwise hand the user
        // a copy of a broadcast it already has.
        let kind = if Flag::from_packet(msg.msg_type()) == Some(Flag::BROADCAST) {
            MessageKind::Broadcast
        } else {
            MessageKind::Whisper
        };
        // Users' messages, their own sub-flags included, reach `recv`; the protocol's
        // (a `store` on a node without a table, say) reach only the handlers, as in py2p.
        let queued = msg.payload().first().is_some_and(is_user_sub_flag);
        let message = Message { wire: msg, kind };
        if !self.handlers.is_empty() {
            // A handler that calls `recv` finds the messages queued before this one.
            self.shared.inbox.flush(&mut self.staged);
            // While the handlers run, `status()` is answered from the published copy.
            self.publish_status(Duration::from_millis(1));
            self.make_connection(conn);
            let Some(connection) = self.conn_handles.get(&conn) else {
                return;
            };
            self.shared.in_handler.store(true, Ordering::Release);
            let mut panics = 0;
            let mut taken = false;
            for handler in self.handlers.iter_mut() {
                match catch_unwind(AssertUnwindSafe(|| handler(&message, connection))) {
                    Ok(true) => {
                        taken = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) => {
                        panics += 1;
                        let text = format!(
                            "a message handler panicked on message {} from {}",
                            message.id(),
                            message.sender()
                        );
                        error!("{text}; the node goes on");
                        self.shared.note_error(text);
                    }
                }
            }
            self.shared.in_handler.store(false, Ordering::Release);
            for _ in 0..panics {
                self.core.count_handler_panic();
            }
            if taken {
                return;
            }
        }
        if queued {
            self.core.count_queued();
            let bytes = message.wire.body_len();
            // Handed over in batches; readers are woken once at the end of the loop's
            // turn (`on_backlog`).
            self.shared.inbox.stage(&mut self.staged, message, bytes);
        } else {
            self.core.count_unknown();
            debug!(
                "ignoring message with sub-flag {:?} from {}",
                message.payload().first(),
                message.sender()
            );
        }
    }
}

impl Service for MeshNode {
    type Command = Command;

    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
        self.with_out(net, |node, net| {
            node.finish_waiting(net);
            node.core.on_open(net, conn, info);
            node.run_effects(net);
        });
    }

    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8]) {
        self.with_out(net, |node, net| {
            node.finish_broadcasts(net);
            match node.core.take_frame(net, conn, body) {
                Taken::Done => {}
                Taken::Parked => {
                    if node.core.parked().is_full() || !node.room_for_parked() {
                        node.finish_parked(net);
                    }
                }
                Taken::Ready { decoded, received } => {
                    // The frames before it first: each connection's order is kept.
                    node.finish_parked(net);
                    let tables = node.tables();
                    node.core.handle_ready(net, conn, decoded, received, tables);
                }
            }
            node.run_effects(net);
        });
    }

    fn on_frames_done(&mut self, net: &mut dyn Net) {
        if !self.core.parked().is_empty() {
            self.with_out(net, |node, net| node.finish_parked(net));
        }
    }

    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason) {
        self.with_out(net, |node, net| {
            node.finish_waiting(net);
            node.conn_handles.remove(&conn);
            node.core.on_close(net, conn, reason);
            node.run_effects(net);
        });
    }

    fn on_command(&mut self, net: &mut dyn Net, cmd: Command) {
        self.with_out(net, |node, net| {
            node.finish_parked(net);
            node.command(net, cmd)
        });
    }

    fn on_commands_done(&mut self, net: &mut dyn Net) {
        // Called at every turn of the loop: nothing to do unless broadcasts wait.
        if !self.broadcasts.is_empty() {
            self.with_out(net, |node, net| node.finish_broadcasts(net));
        }
    }

    fn on_tick(&mut self, net: &mut dyn Net) {
        self.with_out(net, |node, net| {
            node.finish_waiting(net);
            node.tick(net);
        });
    }

    fn make_room(&mut self) -> Option<ConnId> {
        self.core.make_room()
    }

    fn wants_input(&self) -> bool {
        let room = self.shared.inbox.has_room_with(&self.staged);
        // Asked before every frame: the flag the reader checks is written when it changes.
        self.shared.inbox.set_paused(!room);
        room
    }

    fn before_write(&mut self, net: &mut dyn Net) {
        self.with_out(net, |node, net| {
            node.finish_waiting(net);
            net.release();
        });
    }

    // `on_backlog` and `on_shutdown` find no broadcast parked: the loop and the simulator
    // call them after `before_write`, and after the closes, which finish them.
    fn on_backlog(&mut self, queued_bytes: usize) {
        self.flush_inbox();
        self.shared
            .command_done(std::mem::take(&mut self.sends_done), queued_bytes);
        self.publish_status(Duration::from_millis(10));
    }

    fn on_shutdown(&mut self) {
        if let Some(chord) = &mut self.chord {
            chord.on_shutdown();
        }
        self.run_table_effects();
        // Requests the table will never answer: their waiters hear the node closed.
        self.chord_replies.clear();
        if let Some(view) = &self.sync_view {
            view.events.close();
        }
        // Readers take what arrived before the close.
        self.flush_inbox();
        self.shared.close();
    }
}

impl MeshNode {
    /// Finishes the broadcasts parked for their id checks (see `core/checks.rs`), in the
    /// order they came, carrying out each one's effects before the next.
    fn finish_parked(&mut self, net: &mut Out<'_>) {
        if self.core.parked().is_empty() {
            return;
        }
        let tables = self.tables();
        while self.core.finish_next(net, tables) {
            self.run_effects(net);
        }
    }

    /// Whether the inbox has room with the parked broadcasts in it too, as if they were
    /// staged: when it may not, they are finished now, and `wants_input` answers after
    /// them exactly as if each had been handled when it came.
    fn room_for_parked(&self) -> bool {
        let parked = self.core.parked();
        self.shared
            .inbox
            .has_room_with_more(&self.staged, parked.len(), parked.bytes())
    }

    /// A command from a user's thread. The user's broadcasts wait in the batch; any other
    /// command is handled after the batch is sent.
    fn command(&mut self, net: &mut dyn Net, cmd: Command) {
        let waits = matches!(
            cmd,
            Command::Broadcast { .. }
                | Command::BroadcastPacked { .. }
                | Command::BroadcastMany { .. }
                | Command::SendWith {
                    kind: MessageKind::Broadcast,
                    ..
                }
        );
        if !waits {
            self.finish_broadcasts(net);
        }
        match cmd {
            Command::Broadcast { packets, bytes } => {
                self.wait(net, Flag::BROADCAST.0, Packets::List(packets), bytes);
            }
            Command::BroadcastPacked { packets, bytes } => {
                self.wait(net, Flag::BROADCAST.0, Packets::Packed(packets), bytes);
            }
            Command::Whisper { target, packets } => self.core.whisper(net, target, packets),
            Command::BroadcastMany { messages, bytes } => {
                // The bytes are released with the last message.
                let last = messages.len().saturating_sub(1);
                if messages.is_empty() {
                    self.sends_done += bytes;
                }
                for (i, packets) in messages.into_iter().enumerate() {
                    let bytes = if i == last { bytes } else { 0 };
                    self.wait(net, Flag::BROADCAST.0, Packets::List(packets), bytes);
                }
            }
            Command::BroadcastLines { block, ends, bytes } => {
                // All the lines are here: hashed a batch at a time, none waits.
                self.broadcasts
                    .send_lines(&mut self.core, net, &block, &ends);
                self.sends_done += bytes;
            }
            Command::Connect {
                addr,
                expected_id,
                reply,
            } => self.connect(net, addr, expected_id, reply),
            Command::SendWith {
                kind: MessageKind::Broadcast,
                sub_flag,
                packets,
                bytes,
            } => self.wait(net, sub_flag, Packets::List(packets), bytes),
            Command::SendWith {
                kind,
                sub_flag,
                packets,
                bytes,
            } => {
                self.core.send_packets(net, kind, sub_flag, packets);
                self.sends_done += bytes;
            }
            Command::WhisperWith {
                target,
                sub_flag,
                packets,
            } => self.core.whisper_with(net, target, sub_flag, packets),
            Command::SendOn {
                conn,
                kind,
                payload,
            } => self.core.send_on(net, conn, kind, payload),
            Command::RequestPeers => self.core.request_peers(net),
            Command::Disconnect { id } => self.core.disconnect(net, &id),
            Command::RegisterHandler(h) => self.handlers.push(h),
            Command::Peers(reply) => {
                let _ = reply.send(self.core.peer_infos());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Sync(cmd) => self.sync_command(net, cmd),
            Command::Chord(cmd) => self.chord_command(net, cmd),
            Command::Resolved(resolved) => {
                let (lookup, purpose) = *resolved;
                match lookup.addr {
                    Some(addr) => self.core.dial_resolved(net, addr, lookup.then, purpose),
                    None => warn!(
                        "cannot resolve {}:{} ({purpose:?}){}",
                        lookup.host,
                        lookup.port,
                        dropped_note(&lookup.then)
                    ),
                }
            }
        }
        self.run_effects(net);
    }

    /// Time passed.
    fn tick(&mut self, net: &mut dyn Net) {
        self.core.on_tick(net);
        self.run_effects(net);
        if let Some(chord) = &mut self.chord {
            chord.on_tick(&mut self.core, net);
        }
        self.run_effects(net);
        // The room of a burst the user has taken in the meantime.
        self.shared.inbox.trim();
    }
}
