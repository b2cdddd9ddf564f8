//! Bodies of the `mesh_node` and `sync_node` fuzz targets: one real node under a peer that
//! the fuzzer scripts byte by byte, in a [`Sim`].
//!
//! The cargo-fuzz targets in `fuzz/` (nightly only) are one-line calls into this module, and
//! the stable test `crates/py2p-sim/tests/node_fuzz_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through exactly the same code on every `cargo test`, as
//! `py2p_testkit::wire` does for the wire targets. [`seed_corpus`] generates the hand-made
//! part of that corpus (`cargo xtask fuzz --seed-corpus`).
//!
//! # The script
//!
//! Three simulated nodes: node 0 is the node under test (a mesh node, or a sync node),
//! node 1 an honest node of the same kind connected to it, node 2 the scripted peer, which
//! dials node 0 and then sends what the script says. The input is:
//!
//! - byte 0: the compressions the honest nodes offer (a bit mask over
//!   [`Compression::PREFERENCE`](py2p_wire::Compression::PREFERENCE));
//! - byte 1: bit 0 leasing (sync tables), bit 1 frames cut into pieces on the way, the rest
//!   the simulation's seed;
//! - then up to [`MAX_OPS`] operations, each `[op, len, len bytes of arguments]` (an
//!   argument read past the end of its operation reads 0, and 0 always picks the ordinary,
//!   valid choice, so short seeds mean something and mutations stay within one operation).
//!
//! The operations ([`Op`]) send a handshake (valid, or with a wrong id, protocol, address,
//! compression list or packet count), broadcasts, whispers, peer lists, requests,
//! responses (to the node's own requests too), renegotiations, sync stores, unknown
//! sub-flags, raw bytes, frames split across time, replays of what the node sent, exact
//! repeats; each message with a chosen sender, time (now, old, future, at the edges of the
//! expiry, absurd), message type and compression. Others let virtual time pass, hang up
//! and dial again, or make the node's (and the honest node's) users act.
//!
//! # The checks
//!
//! The exercise turns every log level on (`log::set_max_level`), so that the arguments of
//! the handlers' log statements are computed too; with no logger installed nothing is
//! printed.
//!
//! After the script, while the peer is still connected, the node broadcasts and the
//! honest node must get it once (unless the peer claimed the honest node's id in a
//! handshake: ids are not authenticated, in py2p either). Then the peer hangs up, the
//! network settles, and the node broadcasts again (a sync node also stores a key). Then:
//! no panic anywhere; the node's write queues,
//! connections and remembered ids stayed within their limits ([`Sim::check_memory`]); the
//! node and the honest node route each other over one connection again
//! ([`Sim::check_routing`]); the honest node got the broadcast exactly once (and the key);
//! no user of either saw a broadcast twice or a message older than the expiry.

use std::collections::BTreeMap;
use std::time::Duration;

use py2p_testkit::frame::frame;
use py2p_wire::{base58, Compression, Flag, Limits, Message};

use super::{Sim, SimConfig};
use py2p::internals::Command;
use py2p::{MeshConfig, MessageKind};

/// Names of the fuzz targets, which are also the corpus folder names.
pub const TARGETS: [&str; 2] = ["mesh_node", "sync_node"];

/// Name prefix of the generated seed files in the committed corpus (the same as the wire
/// targets': `py2p_testkit::corpus::SEED_PREFIX`).
pub const SEED_PREFIX: &str = "seed-";

/// Most operations a script runs (the rest of the input is ignored).
pub const MAX_OPS: usize = 64;

/// Virtual time a script may let pass, at most (further waits are skipped).
const MAX_SCRIPT_TIME: Duration = Duration::from_secs(20 * 60);

/// The node under test, the honest node and the scripted peer.
const NODE: usize = 0;
const HONEST: usize = 1;
const PEER: usize = 2;

/// The operations of a script; an operation byte picks `Op::ALL[byte % Op::ALL.len()]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// A handshake, valid unless its arguments say otherwise.
    Handshake = 0,
    /// A user broadcast.
    Broadcast,
    /// A user whisper.
    Whisper,
    /// A `peers` list.
    Peers,
    /// A request for the peer list (`*`).
    RequestPeers,
    /// A request for a route to some node.
    RequestRoute,
    /// A response: to a request the node made, or made up.
    Response,
    /// A renegotiation (compression list, resend, or nonsense).
    Renegotiate,
    /// A sync `store`: a broadcast one, or a joining peer's copy with owner and time.
    Store,
    /// A message with an unknown sub-flag or message type, or no payload.
    Unknown,
    /// Raw bytes, with or without a frame header in front.
    Raw,
    /// A message cut in two: the first part now, the rest a little later (or never).
    Split,
    /// Virtual time passes (milliseconds to minutes).
    Wait,
    /// A frame the node sent to the peer, sent back.
    Replay,
    /// The node's user acts: broadcast, whisper (to a node not connected: a request),
    /// store a key.
    NodeUser,
    /// The peer hangs up, then dials again.
    Redial,
    /// The honest node's user acts: broadcast or store a key.
    HonestUser,
    /// The last frame the peer sent, sent again.
    Repeat,
}

impl Op {
    /// Every operation, in the order of their bytes.
    pub const ALL: [Op; 18] = [
        Op::Handshake,
        Op::Broadcast,
        Op::Whisper,
        Op::Peers,
        Op::RequestPeers,
        Op::RequestRoute,
        Op::Response,
        Op::Renegotiate,
        Op::Store,
        Op::Unknown,
        Op::Raw,
        Op::Split,
        Op::Wait,
        Op::Replay,
        Op::NodeUser,
        Op::Redial,
        Op::HonestUser,
        Op::Repeat,
    ];
}

/// How often each of the node's handler paths ran in one script (or in many, merged):
/// frame decode errors, broadcasts new and duplicate, expired messages, renegotiations,
/// handshakes (first, repeated, refused), peer lists, requests, responses, deliveries,
/// unknown sub-flags, and on a sync node each outcome of a `store`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// Count per path name.
    pub paths: BTreeMap<&'static str, u64>,
    /// Operations run.
    pub ops: u64,
}

impl Reached {
    /// Adds another run's counts to these.
    pub fn merge(&mut self, other: &Reached) {
        for (name, n) in &other.paths {
            *self.paths.entry(name).or_default() += n;
        }
        self.ops += other.ops;
    }

    /// The count of one path (0 when unknown).
    pub fn count(&self, path: &str) -> u64 {
        self.paths.get(path).copied().unwrap_or(0)
    }

    /// The paths never reached.
    pub fn missing(&self) -> Vec<&'static str> {
        self.paths
            .iter()
            .filter(|(_, &n)| n == 0)
            .map(|(&name, _)| name)
            .collect()
    }
}

/// Runs the exercise named `target` (one of [`TARGETS`]) on `data`; `None` when no such
/// target exists.
pub fn run(target: &str, data: &[u8]) -> Option<Reached> {
    match target {
        "mesh_node" => Some(mesh_node(data)),
        "sync_node" => Some(sync_node(data)),
        _ => None,
    }
}

/// A mesh node under a scripted peer (see the [module docs](self)). Panics when a check
/// fails.
pub fn mesh_node(data: &[u8]) -> Reached {
    Script::new(data, false).run()
}

/// A sync node under a scripted peer (see the [module docs](self)). Panics when a check
/// fails.
pub fn sync_node(data: &[u8]) -> Reached {
    Script::new(data, true).run()
}

/// The arguments of one operation: reads past the end give 0.
struct Args<'a> {
    data: &'a [u8],
}

impl<'a> Args<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: u8) -> u8 {
        self.byte() % n.max(1)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// A length byte (at most `max`), then that many bytes (fewer at the end).
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.byte()).min(max).min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }

    /// Whatever is left.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// The whole input: setup bytes, then operations.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn op(&mut self) -> Option<(Op, Args<'a>)> {
        let (&op, rest) = self.data.split_first()?;
        let (&len, rest) = rest.split_first().unwrap_or((&0, &[]));
        let len = usize::from(len).min(rest.len());
        let (args, rest) = rest.split_at(len);
        self.data = rest;
        let op = Op::ALL[usize::from(op) % Op::ALL.len()];
        Some((op, Args { data: args }))
    }
}

/// Configuration of every node in a script: small limits, so that scripts reach them.
fn node_config(compressions: u8) -> MeshConfig {
    let net = py2p_net::NetConfig {
        limits: Limits {
            max_frame_len: 16 * 1024,
            max_decompressed_len: 64 * 1024,
            max_packets: 16,
        },
        max_connections: 8,
        max_write_queue: 256 * 1024,
        max_total_write_queue: 1024 * 1024,
        partial_frame_timeout: Duration::from_secs(10),
        tick_interval: Duration::from_secs(1),
        ..py2p_net::NetConfig::default()
    };
    MeshConfig {
        compressions: Compression::PREFERENCE
            .iter()
            .enumerate()
            .filter(|(i, _)| compressions & (1 << i) != 0)
            .map(|(_, &c)| c)
            .collect(),
        max_peer_list: 8,
        handshake_timeout: Duration::from_secs(10),
        inbox_capacity: 16,
        max_decode_errors: 3,
        request_timeout: Duration::from_secs(20),
        // About ten entries: scripts fill it.
        max_table_bytes: 2048,
        net,
        ..MeshConfig::default()
    }
}

/// One run of a script.
struct Script<'a> {
    input: Input<'a>,
    sync: bool,
    sim: Sim,
    node_id: String,
    honest_id: String,
    protocol_id: String,
    /// The peer's two identities (it may use either, or someone else's).
    peer_ids: [String; 2],
    /// The tail of a split frame, still to send.
    pending: Option<Vec<u8>>,
    /// The last frame the peer sent.
    last: Vec<u8>,
    /// A counter making user packets unique.
    counter: u32,
    waited: Duration,
    /// Whether the peer ever claimed the honest node's id in a handshake (then the node
    /// may route that id to the peer while it stays: unauthenticated ids, as in py2p).
    impersonated: bool,
}

impl<'a> Script<'a> {
    fn new(data: &'a [u8], sync: bool) -> Script<'a> {
        // Log statements are code on the handlers' paths too (their arguments are computed
        // only when the level is on): turn every level on. With no logger installed, the
        // records go nowhere.
        if log::max_level() < log::LevelFilter::Trace {
            log::set_max_level(log::LevelFilter::Trace);
        }
        let mut input = Input { data };
        let compressions = input.byte();
        let setup = input.byte();
        let leasing = setup & 1 == 0;
        let mesh = node_config(compressions);
        let config = SimConfig {
            mesh,
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            jitter: Duration::from_millis(1),
            fragment: setup & 2 != 0,
            ..SimConfig::default()
        };
        let mut sim = Sim::new(u64::from(setup >> 2), config);
        if sync {
            sim.add_sync_node(leasing);
            sim.add_sync_node(leasing);
        } else {
            sim.add_nodes(2);
        }
        sim.add_scripted_peer();
        sim.connect(HONEST, NODE);
        sim.run_for(Duration::from_secs(1));
        sim.scripted_dial_node(PEER, NODE);
        sim.run_for(Duration::from_millis(100));
        let node_id = sim.id(NODE).to_owned();
        let honest_id = sim.id(HONEST).to_owned();
        let protocol_id = sim.status(NODE).map(|s| s.protocol_id).unwrap_or_default();
        let peer_ids = [0u8, 1]
            .map(|i| base58::encode_be_bytes(&[b"fuzz peer".as_slice(), &[i, setup]].concat()));
        Script {
            input,
            sync,
            sim,
            node_id,
            honest_id,
            protocol_id,
            peer_ids,
            pending: None,
            last: Vec::new(),
            counter: 0,
            waited: Duration::ZERO,
            impersonated: false,
        }
    }

    fn run(mut self) -> Reached {
        let mut ops = 0;
        while ops < MAX_OPS {
            let Some((op, mut args)) = self.input.op() else {
                break;
            };
            ops += 1;
            self.step(op, &mut args);
            self.sim.run_for(Duration::from_millis(20));
        }
        let mut reached = Reached {
            paths: self.sim.handler_paths(NODE).into_iter().collect(),
            ops: ops as u64,
        };
        self.finish();
        // Counted again: the node may have run handlers while the network settled.
        reached.paths = self.sim.handler_paths(NODE).into_iter().collect();
        reached
    }

    fn now(&self) -> u64 {
        self.sim.unix_time()
    }

    fn send(&mut self, frame: Vec<u8>) {
        self.last.clone_from(&frame);
        if let Some(tail) = self.pending.take() {
            self.note_impersonation(&tail);
            self.sim.scripted_send(PEER, tail);
        }
        self.note_impersonation(&frame);
        self.sim.scripted_send(PEER, frame);
    }

    /// Notes whether `bytes` may hand the node a handshake with the honest node's id (a
    /// replay of the honest node's own handshake, say, which the peer hears when the honest
    /// node dials it): one whole frame is decoded and looked at, anything else counts when
    /// the id appears in it.
    fn note_impersonation(&mut self, bytes: &[u8]) {
        if self.impersonated {
            return;
        }
        let honest = self.honest_id.as_bytes();
        let decoded = bytes.get(4..).and_then(|body| {
            let whole = bytes
                .get(..4)
                .map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
                == Some(body.len() as u32);
            let limits = Limits::default();
            whole.then(|| Message::decode_body(body, &Compression::PREFERENCE, &limits).ok())?
        });
        self.impersonated = match decoded {
            Some(msg) => {
                msg.payload().first() == Some(&[Flag::HANDSHAKE.0])
                    && msg.payload().get(1) == Some(honest)
            }
            None => bytes.windows(honest.len().max(1)).any(|w| w == honest),
        };
    }

    /// Someone's id, as the peer may claim it (0: its own).
    fn someone(&mut self, args: &mut Args<'_>) -> Vec<u8> {
        match args.below(8) {
            0..=3 => self.peer_ids[0].clone().into_bytes(),
            4 => self.honest_id.clone().into_bytes(),
            5 => self.node_id.clone().into_bytes(),
            6 => self.peer_ids[1].clone().into_bytes(),
            _ => args.bytes(12).to_vec(),
        }
    }

    /// A message time (0: now).
    fn time(&mut self, args: &mut Args<'_>) -> u64 {
        let now = self.now();
        match args.below(8) {
            0..=3 => now,
            4 => now.saturating_sub(u64::from(args.byte())),
            5 => now + u64::from(args.byte()),
            // At the edges of the 60 s expiry, both ways.
            6 => (now + 3).saturating_sub(60 + u64::from(args.below(7))),
            _ => match args.below(3) {
                0 => 0,
                1 => u64::MAX,
                _ => u64::from(args.u16()) << 20,
            },
        }
    }

    /// A compression to encode with (0: none).
    fn compression(args: &mut Args<'_>) -> Option<Compression> {
        match args.below(8) {
            0..=4 => None,
            n => Compression::ALL
                .get((usize::from(n) + usize::from(args.byte())) % Compression::ALL.len())
                .copied(),
        }
    }

    /// A message type (0: `usual`).
    fn msg_type(args: &mut Args<'_>, usual: Flag) -> u8 {
        match args.below(8) {
            0..=5 => usual.0,
            6 if usual == Flag::WHISPER => Flag::BROADCAST.0,
            6 => Flag::WHISPER.0,
            _ => args.byte(),
        }
    }

    /// A whole frame of `payload` with sender, time, type and compression from `args`.
    fn frame(&mut self, args: &mut Args<'_>, usual: Flag, payload: Vec<Vec<u8>>) -> Vec<u8> {
        let msg_type = Self::msg_type(args, usual);
        let sender = self.someone(args);
        let time = self.time(args);
        let compression = Self::compression(args);
        Message::new(vec![msg_type], sender, payload, time).encode(compression)
    }

    /// An address as JSON, never a host name (a name would be looked up in the DNS).
    fn addr_json(args: &mut Args<'_>) -> String {
        match args.below(8) {
            0..=2 => "[\"10.0.0.3\", 4444]".into(),
            3 => "[\"10.0.0.2\", 4444]".into(),
            4 => format!(
                "[\"10.99.{}.{}\", {}]",
                args.byte(),
                args.byte(),
                args.u16()
            ),
            5 => "[\"10.0.0.1\", 4444]".into(),
            6 => [
                "[\"::1\", 4444]",
                "[\"127.0.0.1\", 0]",
                "[\"0.0.0.0\", 65535]",
            ][usize::from(args.below(3))]
            .into(),
            _ => [
                "null",
                "[1, 2]",
                "[\"10.0.0.3\"]",
                "[\"10.0.0.3\", 70000]",
                "[\"10.0.0.3\", -1]",
                "\"10.0.0.3:4444\"",
                "[",
                "",
            ][usize::from(args.below(8))]
            .into(),
        }
    }

    fn compressions_json(args: &mut Args<'_>) -> Vec<u8> {
        match args.below(6) {
            0..=2 => {
                let mask = args.byte();
                let list: Vec<Compression> = Compression::PREFERENCE
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) == 0)
                    .map(|(_, &c)| c)
                    .collect();
                py2p_wire::compression::to_json(&list).into_bytes()
            }
            3 => b"[]".to_vec(),
            4 => [
                "[\"nope\"]",
                "[\"zlib\", \"zlib\"]",
                "[\"bwtc\", \"gzip\"]",
                "[1]",
            ][usize::from(args.below(4))]
            .as_bytes()
            .to_vec(),
            _ => args.bytes(16).to_vec(),
        }
    }

    fn handshake(&mut self, args: &mut Args<'_>) -> Vec<u8> {
        let id = self.someone(args);
        // Also noted when sent, unless the frame is compressed.
        self.impersonated |= id == self.honest_id.as_bytes();
        let protocol = match args.below(6) {
            0..=3 => self.protocol_id.clone().into_bytes(),
            4 => py2p::Protocol::new("mesh2", py2p::Encryption::Plaintext)
                .id()
                .into_bytes(),
            _ => args.bytes(16).to_vec(),
        };
        let addr = Self::addr_json(args).into_bytes();
        let methods = Self::compressions_json(args);
        let mut payload = vec![vec![Flag::HANDSHAKE.0], id, protocol, addr, methods];
        match args.below(8) {
            6 => {
                payload.pop();
            }
            7 => payload.push(args.bytes(8).to_vec()),
            _ => {}
        }
        self.frame(args, Flag::WHISPER, payload)
    }

    fn peers_list(&mut self, args: &mut Args<'_>) -> Vec<u8> {
        if args.below(8) == 7 {
            return [
                "",
                "[",
                "{}",
                "null",
                "[[]]",
                "[[[\"10.0.0.3\", 4444]]]",
                "[1, \"x\"]",
                "\"\"",
            ][usize::from(args.below(8))]
            .as_bytes()
            .to_vec();
        }
        let n = args.below(5);
        let mut entries = Vec::new();
        for _ in 0..n {
            let addr = Self::addr_json(args);
            let id = String::from_utf8_lossy(&self.someone(args)).into_owned();
            entries.push(match args.below(8) {
                7 => "[1, 2]".to_string(),
                _ => format!("[{addr}, {}]", serde_json::Value::String(id)),
            });
        }
        format!("[{}]", entries.join(", ")).into_bytes()
    }

    /// The first request (`[request, id, target]` broadcast) the node sent the peer, if any.
    fn heard_request(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.sim.scripted_heard(PEER).iter().find_map(|body| {
            // The peer offers compressions only when its handshake says so: try them all.
            let msg =
                Message::decode_body(body, &Compression::PREFERENCE, &Limits::default()).ok()?;
            match msg.payload().as_array() {
                Some([flag, rid, target]) if flag == [Flag::REQUEST.0] => {
                    Some((rid.to_vec(), target.to_vec()))
                }
                _ => None,
            }
        })
    }

    fn user_packet(&mut self, what: &str) -> Vec<u8> {
        self.counter += 1;
        format!("{what} {}", self.counter).into_bytes()
    }

    /// The frame a message operation sends (`None` for the other operations).
    fn message(&mut self, op: Op, args: &mut Args<'_>) -> Option<Vec<u8>> {
        let frame = match op {
            Op::Handshake => self.handshake(args),
            Op::Broadcast | Op::Whisper => {
                let flag = if op == Op::Broadcast {
                    Flag::BROADCAST
                } else {
                    Flag::WHISPER
                };
                let mut payload = vec![vec![flag.0]];
                for _ in 0..1 + args.below(3) {
                    payload.push(args.bytes(32).to_vec());
                }
                self.frame(args, flag, payload)
            }
            Op::Peers => {
                let list = self.peers_list(args);
                self.frame(args, Flag::WHISPER, vec![vec![Flag::PEERS.0], list])
            }
            Op::RequestPeers => self.frame(
                args,
                Flag::WHISPER,
                vec![vec![Flag::REQUEST.0], b"*".to_vec()],
            ),
            Op::RequestRoute => {
                let rid = match args.below(4) {
                    0..=2 => base58::encode_u64(u64::from(args.u16())).into_bytes(),
                    _ => args.bytes(8).to_vec(),
                };
                let target = self.someone(args);
                let mut payload = vec![vec![Flag::REQUEST.0], rid, target];
                if args.below(4) == 3 {
                    payload.push(args.bytes(8).to_vec());
                }
                self.frame(args, Flag::BROADCAST, payload)
            }
            Op::Response => self.response(args),
            Op::Renegotiate => {
                let payload = match args.below(4) {
                    0 | 1 => vec![vec![Flag::COMPRESSION.0], Self::compressions_json(args)],
                    2 => vec![vec![Flag::RESEND.0]],
                    _ => vec![args.bytes(4).to_vec(), args.bytes(8).to_vec()],
                };
                self.frame(args, Flag::RENEGOTIATE, payload)
            }
            Op::Store => self.store(args),
            Op::Unknown => {
                let payload = match args.below(4) {
                    0 | 1 => vec![vec![0x0E + args.below(0xF0)], args.bytes(8).to_vec()],
                    2 => Vec::new(),
                    _ => vec![args.bytes(3).to_vec()],
                };
                self.frame(args, Flag::WHISPER, payload)
            }
            Op::Raw => {
                let with_header = args.below(2) == 0;
                let body = args.rest().to_vec();
                if with_header {
                    frame(&body)
                } else {
                    body
                }
            }
            _ => return None,
        };
        Some(frame)
    }

    fn response(&mut self, args: &mut Args<'_>) -> Vec<u8> {
        let heard = self.heard_request();
        let (rid, target) = match (args.below(4), heard) {
            (0..=2, Some(h)) => h,
            _ => (args.bytes(8).to_vec(), self.someone(args)),
        };
        let target = serde_json::Value::String(String::from_utf8_lossy(&target).into_owned());
        let answer = match args.below(8) {
            // Where the target is: the peer itself, the honest node, nobody.
            0..=3 => format!("[[\"10.0.0.3\", 4444], {target}]"),
            4 => format!("[[\"10.0.0.2\", 4444], {target}]"),
            5 => format!("[[\"10.99.0.{}\", 4444], {target}]", args.byte()),
            6 => {
                let other = String::from_utf8_lossy(&self.someone(args)).into_owned();
                let other = serde_json::Value::String(other);
                format!("[[\"10.0.0.3\", 4444], {other}]")
            }
            _ => ["", "[]", "[[\"10.0.0.3\", 4444]]", "[null, \"x\"]", "{"]
                [usize::from(args.below(5))]
            .to_string(),
        };
        let payload = vec![vec![Flag::RESPONSE.0], rid, answer.into_bytes()];
        self.frame(args, Flag::BROADCAST, payload)
    }

    fn store(&mut self, args: &mut Args<'_>) -> Vec<u8> {
        let key = match args.below(6) {
            0..=4 => vec![b'a' + args.below(3)],
            _ => args.bytes(8).to_vec(),
        };
        let value = match args.below(6) {
            0..=3 => self.user_packet("value"),
            4 => Vec::new(),
            _ => args.bytes(16).to_vec(),
        };
        if args.below(2) == 0 {
            return self.frame(args, Flag::BROADCAST, vec![vec![Flag::STORE.0], key, value]);
        }
        let owner = self.someone(args);
        let now = self.now();
        let time = match args.below(6) {
            0 | 1 => base58::encode_u64(now).into_bytes(),
            2 => base58::encode_u64(now.saturating_sub(3601)).into_bytes(),
            3 => base58::encode_u64(now + u64::from(args.u16())).into_bytes(),
            4 => base58::encode_u64(u64::MAX - u64::from(args.byte())).into_bytes(),
            _ => args.bytes(8).to_vec(),
        };
        let payload = vec![vec![Flag::STORE.0], key, value, owner, time];
        self.frame(args, Flag::WHISPER, payload)
    }

    fn step(&mut self, op: Op, args: &mut Args<'_>) {
        if let Some(frame) = self.message(op, args) {
            self.send(frame);
            return;
        }
        match op {
            Op::Split => {
                // One of the message operations, cut at a chosen place.
                let inner = Op::ALL[usize::from(args.below(11))];
                let at = usize::from(args.u16());
                let Some(mut head) = self.message(inner, args) else {
                    return;
                };
                if head.is_empty() {
                    return;
                }
                let tail = head.split_off(at % head.len());
                self.send(head);
                self.pending = Some(tail);
            }
            Op::Wait => {
                let d = match args.below(4) {
                    0 => Duration::from_millis(10 + u64::from(args.byte()) * 2),
                    1 => Duration::from_secs(1 + u64::from(args.below(10))),
                    2 => Duration::from_secs(55 + u64::from(args.below(10))),
                    _ => Duration::from_secs(60 + u64::from(args.byte()) * 2),
                };
                if self.waited + d <= MAX_SCRIPT_TIME {
                    self.waited += d;
                    self.sim.run_for(d);
                }
            }
            Op::Replay => {
                let heard = self.sim.scripted_heard(PEER);
                if heard.is_empty() {
                    return;
                }
                let i = usize::from(args.byte()) % heard.len();
                let body = heard.get(i).cloned().unwrap_or_default();
                self.send(frame(&body));
            }
            Op::NodeUser => match args.below(3) {
                0 => {
                    let p = self.user_packet("node says");
                    self.sim.command(
                        NODE,
                        Command::Broadcast {
                            packets: vec![p],
                            bytes: 0,
                        },
                    );
                }
                1 => {
                    let target = match args.below(3) {
                        0 => format!("nobody {}", args.byte()),
                        1 => self.peer_ids[0].clone(),
                        _ => self.honest_id.clone(),
                    };
                    let p = self.user_packet("node whispers");
                    self.sim.command(
                        NODE,
                        Command::Whisper {
                            target,
                            packets: vec![p],
                        },
                    );
                }
                _ => {
                    let key = vec![b'a' + args.below(3)];
                    let value = if args.below(4) == 3 {
                        Vec::new()
                    } else {
                        self.user_packet("node value")
                    };
                    self.sim.sync_set(NODE, &key, &value);
                }
            },
            Op::Redial => {
                self.sim.scripted_close(PEER);
                self.pending = None;
                self.sim
                    .run_for(Duration::from_millis(10 + u64::from(args.byte())));
                self.sim.scripted_dial_node(PEER, NODE);
                self.sim.run_for(Duration::from_millis(50));
            }
            Op::HonestUser => {
                if args.below(2) == 0 {
                    let p = self.user_packet("honest says");
                    self.sim.command(
                        HONEST,
                        Command::Broadcast {
                            packets: vec![p],
                            bytes: 0,
                        },
                    );
                } else {
                    let key = vec![b'a' + args.below(3)];
                    let value = self.user_packet("honest value");
                    self.sim.sync_set(HONEST, &key, &value);
                }
            }
            Op::Repeat => {
                let frame = self.last.clone();
                if !frame.is_empty() {
                    self.send(frame);
                }
            }
            _ => {}
        }
    }

    /// The node broadcasts `packet`; five seconds later the honest node has it, once.
    fn broadcast_reaches_honest(&mut self, packet: Vec<u8>) {
        self.sim.command(
            NODE,
            Command::Broadcast {
                packets: vec![packet.clone()],
                bytes: 0,
            },
        );
        self.sim.run_for(Duration::from_secs(5));
        let got = self
            .sim
            .deliveries(HONEST)
            .iter()
            .filter(|d| {
                d.message.kind() == MessageKind::Broadcast
                    && d.message.sender() == self.node_id
                    && d.message.packets() == [packet.clone()]
            })
            .count();
        assert_eq!(
            got,
            1,
            "the honest node got the node's broadcast {:?} {got} times",
            String::from_utf8_lossy(&packet)
        );
    }

    /// The peer leaves, the network settles, the node broadcasts (and stores a key); then
    /// the checks.
    fn finish(&mut self) {
        if let Some(tail) = self.pending.take() {
            self.sim.scripted_send(PEER, tail);
        }
        self.sim.run_for(Duration::from_secs(1));
        // While the peer is still connected, it costs the honest node no broadcast (unless
        // it claims the honest node's id).
        if !self.impersonated {
            let packet = b"a broadcast while the peer is connected".to_vec();
            self.sim.run_for(Duration::from_secs(5));
            self.broadcast_reaches_honest(packet);
        }
        self.sim.scripted_close(PEER);
        // Long enough for a displaced honest node to dial again (reconnect_interval 5 s)
        // and for connections without a handshake to time out.
        self.sim.run_for(Duration::from_secs(30));

        let memory = self.sim.check_memory();
        assert!(memory.is_empty(), "memory bounds broken: {memory:?}");
        let routing = self.sim.check_routing();
        assert!(
            routing.is_empty(),
            "the node and the honest node do not route each other once the peer left: {routing:?}"
        );

        let key = b"final key".to_vec();
        let honest_full = |sim: &Sim| {
            sim.handler_paths(HONEST)
                .into_iter()
                .find(|(name, _)| *name == "store-table-full")
                .map_or(0, |(_, n)| n)
        };
        let full_before = honest_full(&self.sim);
        let mut stored = false;
        if self.sync {
            let result = self.sim.sync_set(NODE, &key, b"final value");
            // A table the script filled refuses it; anything else must store it.
            stored = matches!(result, Some(Ok(_)));
            assert!(
                stored || matches!(result, Some(Err(py2p::Error::TableFull { .. }))),
                "the node could not store a fresh key: {result:?}"
            );
        }
        self.broadcast_reaches_honest(b"the final broadcast".to_vec());
        if stored && honest_full(&self.sim) == full_before {
            let entry = self.sim.sync_entry(HONEST, &key);
            assert_eq!(
                entry.map(|e| (e.value, e.owner)),
                Some((b"final value".to_vec(), self.node_id.clone())),
                "the honest node did not get the node's last key"
            );
        }
        for node in [NODE, HONEST] {
            let expiry = self.sim.config().mesh.message_expiry.as_secs();
            let mut seen = std::collections::BTreeSet::new();
            for d in self.sim.deliveries(node) {
                let age = d.unix_time.saturating_sub(d.message.time());
                assert!(
                    age <= expiry,
                    "node {node} delivered message {} {age} s old",
                    d.message.id()
                );
                if d.message.kind() == MessageKind::Broadcast {
                    assert!(
                        seen.insert(d.message.id().to_owned()),
                        "node {node} delivered broadcast {} twice",
                        d.message.id()
                    );
                }
            }
        }
    }
}

/// A file of the generated seed corpus (the fields of `py2p_testkit::corpus::SeedFile`,
/// which the corpus test converts it to: this crate does not depend on the test kit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    /// The fuzz target (corpus folder) it belongs to: one of [`TARGETS`].
    pub target: &'static str,
    /// File name (starts with [`SEED_PREFIX`], which marks generated files).
    pub name: String,
    /// File content.
    pub data: Vec<u8>,
}

/// A script: setup bytes, then `(op, args)` operations.
fn script(setup: [u8; 2], ops: &[(Op, &[u8])]) -> Vec<u8> {
    let mut out = setup.to_vec();
    for (op, args) in ops {
        out.push(*op as u8);
        out.push(args.len() as u8);
        out.extend_from_slice(args);
    }
    out
}

/// The hand-made seeds of both targets: a valid handshake followed by one message of each
/// kind (each also with the message cut in two, old, from the future and compressed),
/// malformed handshakes of each sort, and a few longer conversations.
pub fn seed_corpus() -> Vec<SeedFile> {
    const HS: (Op, &[u8]) = (Op::Handshake, &[]);
    let all = [0x1F, 0x00];
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, ops: &[(Op, &[u8])]| seeds.push((name.to_owned(), script(all, ops)));

    add("handshake", &[HS]);
    for (name, op) in [
        ("broadcast", Op::Broadcast),
        ("whisper", Op::Whisper),
        ("peers", Op::Peers),
        ("request-peers", Op::RequestPeers),
        ("request-route", Op::RequestRoute),
        ("response", Op::Response),
        ("renegotiate", Op::Renegotiate),
        ("store", Op::Store),
        ("unknown", Op::Unknown),
        ("raw", Op::Raw),
    ] {
        add(name, &[HS, (op, &[])]);
        add(
            &format!("{name}-twice"),
            &[HS, (op, &[]), (Op::Repeat, &[])],
        );
        add(
            &format!("{name}-split"),
            &[HS, (Op::Split, &[op as u8, 0, 9]), (Op::Wait, &[1, 2])],
        );
    }
    // Message arguments: [type, sender, time...] come last in each op; these pick them.
    // A broadcast's arguments: packet count, packets, then type, sender, time, compression.
    add(
        "broadcast-old",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 4, 200])],
    );
    add(
        "broadcast-expiry-edge",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 6, 3])],
    );
    add(
        "broadcast-future",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 5, 30])],
    );
    add(
        "broadcast-too-far-ahead",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 5, 250])],
    );
    add(
        "broadcast-far-future",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 7, 1])],
    );
    add(
        "broadcast-spoofed-sender",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 4])],
    );
    add(
        "broadcast-zlib",
        &[HS, (Op::Broadcast, &[0, 1, b'x', 0, 0, 0, 5, 3])],
    );
    add(
        "whisper-as-broadcast",
        &[HS, (Op::Whisper, &[0, 1, b'x', 6])],
    );
    add(
        "peers-as-broadcast",
        &[HS, (Op::Peers, &[0, 1, 0, 0, 0, 6])],
    );
    add("peers-malformed", &[HS, (Op::Peers, &[7, 4])]);
    add("peers-dials-self", &[HS, (Op::Peers, &[0, 1, 5, 5, 0])]);
    add("peers-dials-peer", &[HS, (Op::Peers, &[0, 1, 0, 6, 0])]);
    add(
        "peers-dials-nobody",
        &[HS, (Op::Peers, &[0, 2, 4, 1, 2, 0, 80, 6, 0, 3, 4, 0])],
    );
    add(
        "request-route-honest",
        &[HS, (Op::RequestRoute, &[0, 0, 1, 4])],
    );
    add(
        "renegotiate-resend",
        &[HS, (Op::Whisper, &[]), (Op::Renegotiate, &[2])],
    );
    add(
        "renegotiate-nonsense",
        &[HS, (Op::Renegotiate, &[3, 1, 0x30])],
    );
    add("renegotiate-bad-list", &[HS, (Op::Renegotiate, &[0, 4, 0])]);
    add(
        "response-to-own-request",
        &[HS, (Op::NodeUser, &[1, 0, 7]), (Op::Response, &[])],
    );
    add(
        "response-other-id",
        &[HS, (Op::NodeUser, &[1, 0, 7]), (Op::Response, &[0, 6, 4])],
    );
    add("handshake-twice", &[HS, HS]);
    add("handshake-new-id", &[HS, (Op::Handshake, &[6])]);
    add("handshake-honest-id", &[(Op::Handshake, &[4])]);
    add("handshake-own-id", &[(Op::Handshake, &[5])]);
    add("handshake-wrong-protocol", &[(Op::Handshake, &[0, 4])]);
    add(
        "handshake-bad-protocol",
        &[(Op::Handshake, &[0, 5, 3, b'a', b'b', b'c'])],
    );
    add("handshake-bad-addr", &[(Op::Handshake, &[0, 0, 7, 3])]);
    add(
        "handshake-bad-compressions",
        &[(Op::Handshake, &[0, 0, 0, 4, 0])],
    );
    add(
        "handshake-no-compressions",
        &[(Op::Handshake, &[0, 0, 0, 3])],
    );
    add(
        "handshake-four-packets",
        &[(Op::Handshake, &[0, 0, 0, 0, 0, 6])],
    );
    add(
        "handshake-six-packets",
        &[(Op::Handshake, &[0, 0, 0, 0, 0, 7, 2, 1, 2])],
    );
    add(
        "handshake-as-broadcast",
        &[(Op::Handshake, &[0, 0, 0, 0, 0, 0, 6])],
    );
    add(
        "no-handshake-timeout",
        &[
            (Op::Broadcast, &[]),
            (Op::Wait, &[1, 9]),
            (Op::Wait, &[1, 9]),
        ],
    );
    add(
        "garbage-header",
        &[HS, (Op::Raw, &[1, 0xFF, 0xFF, 0xFF, 0xFF])],
    );
    add(
        "undecodable-frames",
        &[
            HS,
            (Op::Raw, &[0, 1, 2, 3]),
            (Op::Raw, &[0, 4, 5, 6]),
            (Op::Raw, &[0, 7, 8, 9]),
            (Op::Raw, &[0, 10, 11, 12]),
        ],
    );
    add(
        "split-never-finished",
        &[HS, (Op::Split, &[1, 0, 9]), (Op::Wait, &[2, 9])],
    );
    add(
        "replay-node-broadcast",
        &[HS, (Op::NodeUser, &[0]), (Op::Replay, &[0])],
    );
    add("replay-handshake", &[HS, (Op::Replay, &[0])]);
    add(
        "redial",
        &[
            HS,
            (Op::Broadcast, &[]),
            (Op::Redial, &[]),
            HS,
            (Op::Broadcast, &[]),
        ],
    );
    add(
        "honest-traffic",
        &[
            HS,
            (Op::HonestUser, &[0]),
            (Op::HonestUser, &[1]),
            (Op::Wait, &[1, 1]),
        ],
    );
    add(
        "wait-expiry",
        &[
            HS,
            (Op::Broadcast, &[]),
            (Op::Wait, &[2, 9]),
            (Op::Repeat, &[]),
        ],
    );
    add("store-joiner-copy", &[HS, (Op::Store, &[0, 0, 0, 1, 0, 0])]);
    add("store-joiner-old", &[HS, (Op::Store, &[0, 0, 0, 1, 0, 2])]);
    add(
        "store-joiner-far-future",
        &[HS, (Op::Store, &[0, 0, 0, 1, 0, 4, 0])],
    );
    add(
        "store-joiner-bad-time",
        &[HS, (Op::Store, &[0, 0, 0, 1, 0, 5, 3, b'0', b'O', b'l'])],
    );
    add(
        "store-delete",
        &[HS, (Op::Store, &[]), (Op::Store, &[0, 0, 4])],
    );
    add(
        "store-leased",
        &[
            HS,
            (Op::NodeUser, &[2, 1]),
            (Op::Wait, &[1, 2]),
            (Op::Store, &[0, 1]),
        ],
    );
    add("store-malformed", &[HS, (Op::Unknown, &[3, 1, 11])]);
    let fill: Vec<[u8; 3]> = (0..24).map(|i| [5, 1, b'A' + i]).collect();
    let mut ops: Vec<(Op, &[u8])> = vec![HS];
    ops.extend(fill.iter().map(|a| (Op::Store, a.as_slice())));
    ops.push((Op::NodeUser, &[2, 2]));
    add("store-table-full", &ops);
    add(
        "store-far-future-lease",
        &[
            HS,
            (Op::Store, &[0, 0, 0, 1, 0, 4, 0]),
            (Op::NodeUser, &[2, 0]),
        ],
    );
    add(
        "store-joiner-held",
        &[HS, (Op::Store, &[]), (Op::Store, &[0, 0, 0, 1, 0, 0])],
    );

    let mut out = Vec::new();
    for (name, data) in &seeds {
        for target in TARGETS {
            out.push(SeedFile {
                target,
                name: format!("{SEED_PREFIX}{name}"),
                data: data.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_read_their_own_arguments() {
        let data = script([0, 0], &[(Op::Wait, &[1, 2]), (Op::Repeat, &[])]);
        let mut input = Input { data: &data };
        assert_eq!(input.byte(), 0);
        assert_eq!(input.byte(), 0);
        let (op, mut args) = input.op().expect("an op");
        assert_eq!(op, Op::Wait);
        assert_eq!((args.byte(), args.byte(), args.byte()), (1, 2, 0));
        let (op, mut args) = input.op().expect("an op");
        assert_eq!(op, Op::Repeat);
        assert_eq!(args.byte(), 0);
        assert!(input.op().is_none());
    }
}
