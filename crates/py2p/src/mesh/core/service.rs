//! The event loop's callbacks ([`Service`]): each hands its input to the concern that handles it.

use log::{debug, info, warn};
use py2p_net::{CloseReason, ConnId, ConnInfo, Net, Service};
use py2p_wire::Flag;

use crate::error::ConnectError;
use crate::mesh::peer::Peer;
use crate::mesh::Command;
use crate::message::{MessageKind, PeerEvent};

use super::dial::dropped_note;
use super::path::Path;
use super::state::{LostPeer, MeshCore, SCRATCH_KEEP};

impl Service for MeshCore {
    type Command = Command;

    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, info: &ConnInfo) {
        let dial = self.dials.remove(&conn);
        let mut peer = Peer::new(conn, info.peer_addr, info.outgoing, net.now());
        peer.tls_version = info.tls_version;
        self.peers.insert(conn, peer);
        let handshake = self.handshake_payload();
        self.send_to(net, conn, Flag::WHISPER, handshake);
        if let Some(dial) = dial {
            for payload in dial.deferred {
                self.send_to(net, conn, Flag::WHISPER, payload);
            }
        }
    }

    fn on_frame(&mut self, net: &mut dyn Net, conn: ConnId, body: Vec<u8>) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let plain = py2p_wire::PlainBody::unpack_in(
            &body,
            &peer.compression,
            &self.limits,
            &mut self.scratch,
        );
        // The waterfall brings most broadcasts several times: a copy whose id was seen is
        // dropped before the checksum and the packet copies. (A forged frame claiming a seen
        // id is dropped here too: the genuine message was delivered already.)
        if let Some(head) = plain.head() {
            if Flag::from_packet(head.msg_type) == Some(Flag::BROADCAST)
                && self.seen.contains_bytes(head.id)
            {
                self.counters.duplicates += 1;
                self.counters.hit(Path::DuplicateBroadcast);
                return;
            }
        }
        let decoded = plain.decode(&self.limits);
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => return self.handle_decode_error(net, conn, e),
        };
        if let Some(p) = self.peers.get_mut(&conn) {
            p.decode_errors = 0;
        }
        match Flag::from_packet(msg.msg_type()) {
            Some(Flag::BROADCAST) => {
                let now = net.unix_time();
                if self.too_old(&msg, now) {
                    return;
                }
                // Stamped further ahead than the expiry: a clock that is badly wrong, or a
                // lie. py2p takes these; here they would have to be remembered until their
                // time comes, so they are refused like the old ones.
                if msg.time() > now.saturating_add(self.config.message_expiry.as_secs()) {
                    self.counters.expired += 1;
                    self.counters.hit(Path::Expired);
                    warn!(
                        "dropping broadcast {} from {}: stamped {} s in the future",
                        msg.id(),
                        String::from_utf8_lossy(msg.sender()),
                        msg.time() - now
                    );
                    return;
                }
                if !self.seen.insert(msg.id(), msg.time()) {
                    self.counters.duplicates += 1;
                    self.counters.hit(Path::DuplicateBroadcast);
                    return;
                }
                self.counters.hit(Path::Broadcast);
                let origin = std::str::from_utf8(msg.sender())
                    .ok()
                    .and_then(|s| self.routing.get(s))
                    .copied();
                let except: Vec<ConnId> = std::iter::once(conn).chain(origin).collect();
                let n = self.send_all(net, &msg, &except);
                self.counters.relayed += n as u64;
            }
            Some(Flag::RENEGOTIATE) => return self.handle_renegotiate(net, conn, msg.payload()),
            _ => {}
        }
        let whisper = Flag::from_packet(msg.msg_type()) == Some(Flag::WHISPER);
        if self.chord.is_some() && crate::chord::is_chord(msg.payload()) {
            return self.with_chord(|chord, core| chord.on_message(core, net, conn, msg.payload()));
        }
        let sub = msg.payload().first().and_then(|p| Flag::from_packet(p));
        match sub {
            // Handshakes and peer lists describe the connection they arrive on: py2p sends
            // them as whispers, and a relayed broadcast copy must not pass for one.
            Some(Flag::HANDSHAKE) if msg.payload().len() == 5 && whisper => {
                self.handle_handshake(net, conn, msg.payload())
            }
            Some(Flag::PEERS) if whisper => self.handle_peers(net, conn, msg.payload()),
            Some(Flag::HANDSHAKE | Flag::PEERS) => {
                self.counters.hit(Path::IgnoredHandshakeOrPeers);
                debug!(
                    "ignoring a handshake or peers list sent as a broadcast by {}",
                    String::from_utf8_lossy(msg.sender())
                );
            }
            Some(Flag::RESPONSE) => self.handle_response(net, msg.payload()),
            Some(Flag::REQUEST) => self.handle_request(net, conn, msg.payload()),
            Some(Flag::STORE) if self.sync.is_some() => {
                self.counters.hit(Path::Store);
                if let Some(mut sync) = self.sync.take() {
                    let via = self
                        .peers
                        .get(&conn)
                        .map_or_else(|| conn.to_string(), Peer::label);
                    sync.handle_store(net.unix_time(), &msg, &via);
                    self.sync = Some(sync);
                }
            }
            _ => {
                // Broadcasts were checked above; an old whisper (held up by a partition, say)
                // is dropped by the same rule, so users never see a message past the expiry.
                if self.too_old(&msg, net.unix_time()) {
                    return;
                }
                self.deliver(conn, msg)
            }
        }
    }

    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, reason: &CloseReason) {
        self.conn_handles.remove(&conn);
        self.finish_connect(conn, Err(ConnectError::from_close(reason)));
        if let Some(dial) = self.dials.remove(&conn) {
            info!(
                "dial {conn} to {} failed: {reason}{}",
                dial.expected_id.as_deref().unwrap_or("a new peer"),
                if dial.deferred.is_empty() {
                    String::new()
                } else {
                    format!("; {} whisper(s) dropped", dial.deferred.len())
                }
            );
            return;
        }
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        if peer.superseded.is_some() {
            return;
        }
        let Some(id) = peer.id.clone() else {
            debug!("{}: closed before its handshake: {reason}", peer.label());
            return;
        };
        if self.routing.get(&id) == Some(&conn) {
            // A spare connection to the same node (a second one it dialled) takes over.
            let spare = self
                .peers
                .values()
                .filter(|p| p.superseded.is_none() && p.id.as_deref() == Some(id.as_str()))
                .map(|p| p.conn)
                .min();
            if let Some(spare) = spare {
                debug!(
                    "{}: closed; {spare} to the same peer takes over",
                    peer.label()
                );
                self.routing.insert(id, spare);
                self.peers_dirty = true;
                return;
            }
            self.routing.remove(&id);
            self.publish_peers();
            if matches!(reason, CloseReason::PeerClosed | CloseReason::Io(_))
                && !self.config.reconnect_for.is_zero()
            {
                if let Some(addr) = peer.addr.clone() {
                    let now = net.now();
                    self.forget_lost_beyond(self.config.max_lost_peers.saturating_sub(1));
                    self.lost.insert(
                        id.clone(),
                        LostPeer {
                            addr,
                            since: now,
                            next_try: now + self.config.reconnect_interval,
                            attempts: 0,
                        },
                    );
                }
            }
            info!("{}: disconnected: {reason}", peer.label());
            self.with_chord(|chord, core| chord.on_peer_down(core, net, &id));
            self.shared.push_event(PeerEvent::Disconnected { id });
            // py2p asks its remaining peers for theirs after a loss.
            self.request_peers(net);
        }
    }

    fn on_command(&mut self, net: &mut dyn Net, cmd: Command) {
        match cmd {
            Command::Broadcast { packets, bytes } => {
                let mut payload = Vec::with_capacity(packets.len() + 1);
                payload.push(vec![Flag::BROADCAST.0]);
                payload.extend(packets);
                self.broadcast(net, payload);
                // The bytes are in the write queues now: senders see them at once.
                self.shared.command_done(bytes, net.total_queued());
            }
            Command::Whisper { target, packets } => self.whisper(net, target, packets),
            Command::Connect {
                addr,
                expected_id,
                reply,
            } => self.user_connect(net, addr, expected_id, reply),
            Command::SendWith {
                kind,
                sub_flag,
                packets,
                bytes,
            } => {
                let mut payload = Vec::with_capacity(packets.len() + 1);
                payload.push(vec![sub_flag]);
                payload.extend(packets);
                match kind {
                    MessageKind::Broadcast => self.broadcast(net, payload),
                    // py2p's `send(flag=whisper)`: to every peer it is connected to.
                    MessageKind::Whisper => {
                        let mut conns: Vec<ConnId> = self.routing.values().copied().collect();
                        conns.sort_unstable();
                        for conn in conns {
                            self.send_to(net, conn, Flag::WHISPER, payload.clone());
                        }
                    }
                }
                self.shared.command_done(bytes, net.total_queued());
            }
            Command::WhisperWith {
                target,
                sub_flag,
                packets,
            } => self.whisper_with(net, target, sub_flag, packets),
            Command::SendOn {
                conn,
                kind,
                payload,
            } => {
                let flag = match kind {
                    MessageKind::Broadcast => Flag::BROADCAST,
                    MessageKind::Whisper => Flag::WHISPER,
                };
                self.send_to(net, conn, flag, payload);
            }
            Command::RequestPeers => self.request_peers(net),
            Command::Disconnect { id } => {
                if let Some(&conn) = self.routing.get(&id) {
                    net.close(conn);
                }
            }
            Command::RegisterHandler(h) => self.handlers.push(h),
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Sync(cmd) => {
                if let Some(mut sync) = self.sync.take() {
                    sync.on_command(self, net, cmd);
                    self.sync = Some(sync);
                }
            }
            Command::Chord(cmd) => self.with_chord(|chord, core| chord.on_command(core, net, cmd)),
            Command::Resolved((lookup, purpose)) => match lookup.addr {
                Some(addr) => self.dial_resolved(net, addr, lookup.then, purpose),
                None => warn!(
                    "cannot resolve {}:{} ({purpose:?}){}",
                    lookup.host,
                    lookup.port,
                    dropped_note(&lookup.then)
                ),
            },
        }
    }

    fn on_tick(&mut self, net: &mut dyn Net) {
        let now = net.now();
        self.redial_lost(net, now);
        self.seen.expire(net.unix_time());
        let deadline = self.config.handshake_timeout;
        let mut stale: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.id.is_none() && now.duration_since(p.opened) > deadline)
            .map(|p| p.conn)
            .collect();
        stale.sort_unstable();
        for conn in stale {
            if let Some(p) = self.peers.get(&conn) {
                warn!("{}: no handshake within {:?}; closing", p.label(), deadline);
            }
            self.finish_connect(conn, Err(ConnectError::HandshakeTimeout));
            net.close(conn);
        }
        let grace = self.config.conflict_grace;
        let mut superseded: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.superseded.is_some_and(|t| now.duration_since(t) >= grace))
            .map(|p| p.conn)
            .collect();
        superseded.sort_unstable();
        for conn in superseded {
            debug!("{conn}: closing the connection not kept after a conflict");
            net.close(conn);
        }
        let timeout = self.config.request_timeout;
        let shared = &self.shared;
        self.requests.retain(|rid, r| {
            let keep = now.duration_since(r.created) <= timeout;
            if !keep {
                let text = format!(
                    "no route to {} within {timeout:?} (request {rid}): {} whisper(s) dropped",
                    r.target,
                    r.messages.len()
                );
                warn!("{text}");
                shared.note_error(text);
            }
            keep
        });
        self.with_chord(|chord, core| chord.on_tick(core, net));
    }

    /// At the connection limit, the oldest incoming connection still waiting for its
    /// handshake gives way: half-open connections cannot lock honest peers out.
    fn make_room(&mut self) -> Option<ConnId> {
        self.peers
            .values()
            .filter(|p| p.id.is_none() && !p.outgoing)
            .min_by_key(|p| (p.opened, p.conn))
            .map(|p| p.conn)
    }

    fn wants_input(&self) -> bool {
        let room = self.shared.inbox.has_room();
        self.shared
            .inbox
            .paused
            .store(!room, std::sync::atomic::Ordering::Release);
        room
    }

    fn on_backlog(&mut self, queued_bytes: usize) {
        self.shared.inbox.wake_waiters();
        self.shared.set_backlog(queued_bytes);
        self.publish_status(std::time::Duration::from_millis(10));
    }

    fn on_shutdown(&mut self) {
        if let Some(sync) = &self.sync {
            sync.events.close();
        }
        if let Some(chord) = &mut self.chord {
            chord.on_shutdown();
        }
        self.shared.close();
    }
}

impl MeshCore {
    /// Runs `f` on the chord table, if this is a chord node.
    pub(super) fn with_chord(
        &mut self,
        f: impl FnOnce(&mut crate::chord::ChordTable, &mut MeshCore),
    ) {
        if let Some(mut chord) = self.chord.take() {
            f(&mut chord, self);
            self.chord = Some(chord);
        }
    }
}

impl MeshCore {
    /// How many frames went each way through the handlers (see [`Path`]).
    pub(crate) fn paths(&self) -> Vec<(Path, u64)> {
        Path::ALL
            .iter()
            .map(|&p| (p, self.counters.paths.get(p as usize).copied().unwrap_or(0)))
            .collect()
    }
}
