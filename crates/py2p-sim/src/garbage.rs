//! Misbehaving peers: they dial a node and send it junk, to show that nothing a peer sends
//! can break a node or the network around it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use py2p_net::{CloseReason, ConnId, ConnInfo, Net, Service};
use py2p_wire::{Flag, Limits, Message};

use py2p_testkit::frame::frame;
use py2p_testkit::Rng;

/// How a garbage peer misbehaves. Each one dials its target, sends junk at every tick, and
/// dials again a few seconds after the target closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Garbage {
    /// Random bytes, frame headers included: the stream is out of step (or announces a
    /// frame over the limit) almost at once.
    RandomBytes,
    /// Well-formed frame headers around random bodies: every frame fails to decode.
    BadFrames,
    /// A valid handshake, then well-formed messages with nonsense inside: unknown
    /// sub-flags, malformed handshakes, peer lists naming addresses nobody listens on,
    /// requests and responses nobody asked for, renegotiation requests, replays of every
    /// broadcast it receives, and broadcasts stamped minutes in the past.
    Hostile,
    /// Like [`Garbage::Hostile`], and also broadcasts stamped in the future (a sender's
    /// clock that is wrong, or a lie). Kept apart because it tests how long the network
    /// remembers message ids.
    FutureStamps,
}

/// A peer that sends what `kind` says.
pub(super) struct GarbagePeer {
    kind: Garbage,
    target: SocketAddr,
    rng: Rng,
    id: String,
    protocol_id: String,
    out_addr: (String, u16),
    open: BTreeSet<ConnId>,
    dialing: Option<ConnId>,
    next_dial: Option<Instant>,
    /// Broadcast frames received, to replay.
    heard: Vec<Vec<u8>>,
}

/// How long a garbage peer waits to dial again.
const REDIAL: Duration = Duration::from_secs(2);

impl GarbagePeer {
    pub fn new(
        kind: Garbage,
        target: SocketAddr,
        mut rng: Rng,
        protocol_id: String,
        out_addr: (String, u16),
    ) -> GarbagePeer {
        let id = py2p_wire::base58::encode_be_bytes(&rng.bytes(48));
        GarbagePeer {
            kind,
            target,
            rng,
            id,
            protocol_id,
            out_addr,
            open: BTreeSet::new(),
            dialing: None,
            next_dial: None,
            heard: Vec::new(),
        }
    }

    fn message(&self, msg_type: Flag, payload: Vec<Vec<u8>>, time: u64) -> Vec<u8> {
        Message::new(vec![msg_type.0], self.id.as_bytes().to_vec(), payload, time).encode(None)
    }

    fn handshake(&self, net: &dyn Net) -> Vec<u8> {
        let addr = format!("[\"{}\", {}]", self.out_addr.0, self.out_addr.1);
        self.message(
            Flag::WHISPER,
            vec![
                vec![Flag::HANDSHAKE.0],
                self.id.as_bytes().to_vec(),
                self.protocol_id.as_bytes().to_vec(),
                addr.into_bytes(),
                b"[]".to_vec(),
            ],
            net.unix_time(),
        )
    }

    fn random_id(&mut self) -> String {
        py2p_wire::base58::encode_be_bytes(&self.rng.bytes(48))
    }

    /// One frame of junk, whole (header included) unless the kind is `RandomBytes`.
    fn junk(&mut self, net: &dyn Net) -> Vec<u8> {
        let now = net.unix_time();
        match self.kind {
            Garbage::RandomBytes => {
                let len = 1 + self.rng.index(200);
                self.rng.bytes(len)
            }
            Garbage::BadFrames => {
                let len = self.rng.index(200);
                frame(&self.rng.bytes(len))
            }
            Garbage::Hostile | Garbage::FutureStamps => {
                let choices = if self.kind == Garbage::FutureStamps {
                    10
                } else {
                    9
                };
                match self.rng.below(choices) {
                    0 if !self.heard.is_empty() => {
                        let i = self.rng.index(self.heard.len());
                        self.heard.get(i).cloned().unwrap_or_default()
                    }
                    0 | 1 => {
                        // A broadcast from long enough ago that nobody may deliver it.
                        let age = 61 + self.rng.below(3600);
                        let tag = self.rng.bytes(8);
                        self.message(
                            Flag::BROADCAST,
                            vec![vec![Flag::BROADCAST.0], b"stale".to_vec(), tag],
                            now.saturating_sub(age),
                        )
                    }
                    2 => {
                        let flag = 0x0E + self.rng.below(0xF0) as u8;
                        let len = self.rng.index(40);
                        let junk = self.rng.bytes(len);
                        self.message(Flag::WHISPER, vec![vec![flag], junk], now)
                    }
                    3 => {
                        // A handshake with its packets wrong.
                        let n = self.rng.index(4);
                        let payload = std::iter::once(vec![Flag::HANDSHAKE.0])
                            .chain((0..n).map(|_| self.rng.bytes(8)))
                            .collect();
                        self.message(Flag::WHISPER, payload, now)
                    }
                    4 => {
                        // Peers nobody can reach, and nonsense entries.
                        let mut entries = Vec::new();
                        for _ in 0..1 + self.rng.index(4) {
                            let host =
                                format!("10.99.{}.{}", self.rng.below(256), self.rng.below(256));
                            entries.push(format!("[[\"{host}\", 4444], \"{}\"]", self.random_id()));
                        }
                        entries.push("[1, 2]".into());
                        let list = format!("[{}]", entries.join(", "));
                        self.message(
                            Flag::WHISPER,
                            vec![vec![Flag::PEERS.0], list.into_bytes()],
                            now,
                        )
                    }
                    5 => {
                        let target = self.random_id();
                        let rid = self.random_id();
                        self.message(
                            Flag::BROADCAST,
                            vec![vec![Flag::REQUEST.0], rid.into_bytes(), target.into_bytes()],
                            now,
                        )
                    }
                    6 => {
                        let rid = self.random_id();
                        let answer = format!("[[\"10.99.0.1\", 4444], \"{}\"]", self.random_id());
                        self.message(
                            Flag::BROADCAST,
                            vec![
                                vec![Flag::RESPONSE.0],
                                rid.into_bytes(),
                                answer.into_bytes(),
                            ],
                            now,
                        )
                    }
                    7 => {
                        let payload = if self.rng.chance(0.5) {
                            vec![vec![Flag::RESEND.0]]
                        } else {
                            vec![vec![Flag::COMPRESSION.0], b"[\"nonsense\", 7]".to_vec()]
                        };
                        self.message(Flag::RENEGOTIATE, payload, now)
                    }
                    8 => self.message(
                        Flag::WHISPER,
                        vec![vec![Flag::REQUEST.0], b"*".to_vec()],
                        now,
                    ),
                    _ => {
                        // A broadcast from the future.
                        let ahead = 1 + self.rng.below(7200);
                        let tag = self.rng.bytes(8);
                        self.message(
                            Flag::BROADCAST,
                            vec![vec![Flag::BROADCAST.0], b"future".to_vec(), tag],
                            now + ahead,
                        )
                    }
                }
            }
        }
    }
}

impl Service for GarbagePeer {
    type Command = ();

    fn on_open(&mut self, net: &mut dyn Net, conn: ConnId, _info: &ConnInfo) {
        if self.dialing == Some(conn) {
            self.dialing = None;
        }
        self.open.insert(conn);
        if matches!(self.kind, Garbage::Hostile | Garbage::FutureStamps) {
            let hs = self.handshake(net);
            net.send(conn, hs.into());
        }
    }

    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, body: &[u8]) {
        if !matches!(self.kind, Garbage::Hostile | Garbage::FutureStamps) {
            return;
        }
        // It offered no compression, so frames come plain.
        if let Ok(msg) = Message::decode_body(body, &[], &Limits::default()) {
            if Flag::from_packet(msg.msg_type()) == Some(Flag::BROADCAST) && self.heard.len() < 64 {
                self.heard.push(frame(body));
            }
        }
    }

    fn on_close(&mut self, net: &mut dyn Net, conn: ConnId, _reason: &CloseReason) {
        self.open.remove(&conn);
        if self.dialing == Some(conn) {
            self.dialing = None;
        }
        if self.open.is_empty() && self.dialing.is_none() {
            self.next_dial = Some(net.now() + REDIAL);
        }
    }

    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}

    fn on_tick(&mut self, net: &mut dyn Net) {
        if self.open.is_empty() && self.dialing.is_none() {
            if self.next_dial.is_none_or(|t| net.now() >= t) {
                self.dialing = net.dial(self.target).ok();
                self.next_dial = None;
            }
            return;
        }
        let conns: Vec<ConnId> = self.open.iter().copied().collect();
        for conn in conns {
            for _ in 0..1 + self.rng.index(3) {
                let frame = self.junk(net);
                net.send(conn, frame.into());
            }
        }
    }
}

impl GarbagePeer {
    /// The same misbehaviour, started afresh (a new id, nothing heard).
    pub fn restarted(&self, rng: Rng) -> GarbagePeer {
        GarbagePeer::new(
            self.kind,
            self.target,
            rng,
            self.protocol_id.clone(),
            self.out_addr.clone(),
        )
    }
}
