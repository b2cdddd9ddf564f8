//! Broadcasts checked together do what each did when it was checked as it came: the same
//! deliveries, relays, copies dropped, errors and closes, in the same order.

use std::net::SocketAddr;
use std::time::Instant;

use py2p_net::{ConnId, Frame, Net, NetError};
use py2p_wire::{base58, Compression, Flag};

use crate::config::MeshConfig;
use crate::mesh::core::parked::PARKED_MAX;
use crate::mesh::core::tests::{body, deliveries, handshaken_with, origin_broadcast, relay_node};
use crate::mesh::core::{Effect, HeldRelays, MeshCore, Out, Tables, Taken};
use crate::mesh::testing::RecordingNet;

/// A recording net that also records closes (the loop then hands nothing more of the
/// connection's input).
struct Closing {
    net: RecordingNet,
    closed: Vec<ConnId>,
}

impl Net for Closing {
    fn send(&mut self, conn: ConnId, frame: Frame) {
        self.net.send(conn, frame);
    }
    fn dial(&mut self, addr: SocketAddr) -> Result<ConnId, NetError> {
        self.net.dial(addr)
    }
    fn close(&mut self, conn: ConnId) {
        self.closed.push(conn);
    }
    fn queued(&self, _conn: ConnId) -> usize {
        0
    }
    fn total_queued(&self) -> usize {
        0
    }
    fn now(&self) -> Instant {
        self.net.now()
    }
    fn unix_time(&self) -> u64 {
        self.net.unix_time()
    }
    fn shutdown(&mut self) {}
}

/// The relay node of `core::tests` (peers a and b send snappy, c zlib, d plain), closing a
/// peer after `max_errors` undecodable frames.
fn node(max_errors: u32) -> (MeshCore, Closing) {
    let mut config = MeshConfig::builder().build();
    config.max_decode_errors = max_errors;
    let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1));
    let mut net = RecordingNet::new();
    let methods: [&[Compression]; 4] = [
        &[Compression::Snappy],
        &[Compression::Snappy],
        &[Compression::Zlib],
        &[],
    ];
    for (i, (name, methods)) in ["a", "b", "c", "d"].into_iter().zip(methods).enumerate() {
        let conn = ConnId::from_raw(i as u64 + 1);
        handshaken_with(&mut core, &mut net, conn, name, 10 + i as u16, methods);
    }
    while core.poll_effect().is_some() {}
    net.sent.clear();
    (
        core,
        Closing {
            net,
            closed: Vec::new(),
        },
    )
}

/// What a run of frames did: effects (as text), frames sent, closes, and the counters.
#[derive(Debug, PartialEq)]
struct Outcome {
    effects: Vec<String>,
    sent: Vec<(ConnId, Vec<u8>)>,
    closed: Vec<ConnId>,
    counters: [u64; 5],
}

fn outcome(core: &MeshCore, net: Closing, effects: Vec<String>) -> Outcome {
    let c = &core.counters;
    Outcome {
        effects,
        sent: net.net.sent,
        closed: net.closed,
        counters: [
            c.relayed,
            c.duplicates,
            c.expired,
            c.decode_errors,
            core.seen.len() as u64,
        ],
    }
}

fn drain(core: &mut MeshCore, effects: &mut Vec<String>) {
    effects.extend(std::iter::from_fn(|| core.poll_effect()).map(|e| format!("{e:?}")));
}

/// The frames handled one by one as they come, in one turn of the loop.
fn one_by_one(frames: &[(ConnId, Vec<u8>)], max_errors: u32) -> Outcome {
    one_by_one_peeking(frames, max_errors, None)
}

/// [`one_by_one`], each frame's peer given `credit` (when some) before it: 0, the whole body
/// is decompressed first; else the head is peeked at first.
fn one_by_one_peeking(
    frames: &[(ConnId, Vec<u8>)],
    max_errors: u32,
    credit: Option<u8>,
) -> Outcome {
    let (mut core, mut net) = node(max_errors);
    let mut held = HeldRelays::new();
    let mut effects = Vec::new();
    for (conn, body) in frames {
        if net.closed.contains(conn) {
            continue;
        }
        if let (Some(credit), Some(peer)) = (credit, core.peers.get_mut(conn)) {
            peer.peek_credit = credit;
        }
        let mut out = Out::new(&mut net, &mut held);
        core.on_frame(&mut out, *conn, body, Tables::default());
        drain(&mut core, &mut effects);
    }
    Out::new(&mut net, &mut held).release();
    outcome(&core, net, effects)
}

/// The same frames as the node takes them: broadcasts parked, finished when the batch is
/// full, before any other frame, and at the end of the run.
fn batched(frames: &[(ConnId, Vec<u8>)], max_errors: u32) -> (Outcome, usize) {
    let (mut core, mut net) = node(max_errors);
    let mut held = HeldRelays::new();
    let mut effects = Vec::new();
    let mut most = 0;
    let finish = |core: &mut MeshCore, out: &mut Out<'_>, effects: &mut Vec<String>| {
        while core.finish_next(out, Tables::default()) {
            drain(core, effects);
        }
    };
    for (conn, body) in frames {
        if net.closed.contains(conn) {
            continue;
        }
        let mut out = Out::new(&mut net, &mut held);
        match core.take_frame(&mut out, *conn, body) {
            Taken::Done => {}
            Taken::Parked => {
                most = most.max(core.parked().len());
                if core.parked().is_full() {
                    finish(&mut core, &mut out, &mut effects);
                }
            }
            Taken::Ready { decoded, received } => {
                finish(&mut core, &mut out, &mut effects);
                core.handle_ready(&mut out, *conn, decoded, received, Tables::default());
            }
        }
        drain(&mut core, &mut effects);
    }
    let mut out = Out::new(&mut net, &mut held);
    finish(&mut core, &mut out, &mut effects);
    out.release();
    assert!(core.parked().is_empty() && core.parked().bytes() == 0);
    (outcome(&core, net, effects), most)
}

/// The frame of `msg` as peer `conn` (1-4: a, b, c, d) sends it.
fn as_sent_by(conn: u64, msg: &py2p_wire::Message) -> Vec<u8> {
    let method = match conn {
        1 | 2 => Some(Compression::Snappy),
        3 => Some(Compression::Zlib),
        _ => None,
    };
    msg.encode(method).split_off(4)
}

#[test]
fn copies_in_a_batch_are_dropped_and_a_forged_one_alone_is_refused() {
    let (mut core, mut net) = relay_node();
    let mut held = HeldRelays::new();
    let [a, b, c, d] = [1, 2, 3, 4].map(ConnId::from_raw);
    let one = origin_broadcast(b"one".to_vec());
    let two = origin_broadcast(b"two".to_vec());
    // A forged copy of `two` (its id, another payload) comes first, from `c`.
    let forged_two = body(
        Flag::BROADCAST.0,
        two.id(),
        &[&[Flag::BROADCAST.0], b"not two"],
    );
    let frames = [
        (d, as_sent_by(4, &one)),
        (a, as_sent_by(1, &one)),
        (c, forged_two),
        (b, as_sent_by(2, &two)),
        (d, as_sent_by(4, &two)),
        (c, as_sent_by(3, &one)),
    ];
    let mut out = Out::new(&mut net, &mut held);
    for (conn, body) in &frames {
        assert!(matches!(
            core.take_frame(&mut out, *conn, body),
            Taken::Parked
        ));
    }
    assert_eq!(core.parked().len(), 6);
    assert_eq!(core.seen.len(), 0, "no unverified id enters the seen set");
    core.finish_parked(&mut out, Tables::default());
    out.release();
    let delivered: Vec<Vec<u8>> = std::iter::from_fn(|| core.poll_effect())
        .filter_map(|e| match e {
            Effect::Deliver { conn, msg } => Some((conn, msg.payload()[1].to_vec())),
            Effect::Error(text) => {
                assert!(text.contains("peer c at 127.0.0.1:12"), "{text}");
                assert!(text.contains("checksum"), "{text}");
                None
            }
            _ => None,
        })
        .map(|(conn, payload)| {
            assert!(conn == d || conn == b);
            payload
        })
        .collect();
    assert_eq!(delivered, [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(
        (
            core.counters.duplicates,
            core.counters.decode_errors,
            core.seen.len()
        ),
        (3, 1, 2)
    );
    // `c` forged its frame: the renegotiation to it went out, after the relays.
    assert!(net.sent_to().contains(&3));
}

#[test]
fn a_whisper_between_broadcasts_is_handled_in_its_place() {
    let (mut core, mut net) = relay_node();
    let mut held = HeldRelays::new();
    let d = ConnId::from_raw(4);
    let whisper = py2p_wire::Message::new(
        vec![Flag::WHISPER.0],
        b"d".to_vec(),
        vec![vec![Flag::WHISPER.0], b"between".to_vec()],
        1_700_000_000,
    );
    let mut out = Out::new(&mut net, &mut held);
    let first = as_sent_by(4, &origin_broadcast(b"first".to_vec()));
    assert!(matches!(
        core.take_frame(&mut out, d, &first),
        Taken::Parked
    ));
    let plain = whisper.encode(None);
    let Taken::Ready { decoded, received } = core.take_frame(&mut out, d, &plain[4..]) else {
        panic!("a whisper is not parked");
    };
    assert_eq!(deliveries(&mut core), 0, "nothing handled yet");
    core.finish_parked(&mut out, Tables::default());
    core.handle_ready(&mut out, d, decoded, received, Tables::default());
    let second = as_sent_by(4, &origin_broadcast(b"second".to_vec()));
    assert!(matches!(
        core.take_frame(&mut out, d, &second),
        Taken::Parked
    ));
    core.finish_parked(&mut out, Tables::default());
    let order: Vec<Vec<u8>> = std::iter::from_fn(|| core.poll_effect())
        .filter_map(|e| match e {
            Effect::Deliver { msg, .. } => Some(msg.payload()[1].to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [b"first".to_vec(), b"between".to_vec(), b"second".to_vec()]
    );
}

/// A forged frame that closes its connection (one error too many): the frames of that
/// connection parked after it are dropped, as the loop hands none after the close; the
/// other connections' are not.
#[test]
fn a_close_for_a_forged_frame_drops_what_its_connection_parked_after_it() {
    let [a, d] = [1, 4].map(ConnId::from_raw);
    let forged = body(
        Flag::BROADCAST.0,
        &base58::encode_be_bytes(&[7u8; 48]),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    let frames = [
        (a, as_sent_by(1, &origin_broadcast(b"1".to_vec()))),
        (d, forged),
        (d, as_sent_by(4, &origin_broadcast(b"2".to_vec()))),
        (a, as_sent_by(1, &origin_broadcast(b"3".to_vec()))),
    ];
    let (batched, most) = batched(&frames, 0);
    assert_eq!(most, 4, "all four were parked");
    assert_eq!(batched.closed, [d]);
    assert_eq!(batched, one_by_one(&frames, 0));
    let delivered = batched
        .effects
        .iter()
        .filter(|e| e.starts_with("Deliver"))
        .count();
    assert_eq!(delivered, 2);
}

/// Any run of frames from the four peers (broadcasts and their copies in each peer's
/// compression, forged ids, a time with leading '1's, old broadcasts, whispers, undecodable
/// bytes) has the same outcome parked and checked together as one by one: 400 runs drawn
/// from a fixed seed.
#[test]
fn checked_together_is_checked_one_by_one() {
    let mut rng = py2p_testkit::Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut draw = |n: u64| rng.below(n);
    let messages: Vec<py2p_wire::Message> = (0..6)
        .map(|i| origin_broadcast(format!("message {i}").into_bytes()))
        .collect();
    let mut fullest = 0;
    for run in 0..400 {
        let len = draw(60) as usize;
        let max_errors = draw(3) as u32;
        let frames: Vec<(ConnId, Vec<u8>)> = (0..len)
            .map(|_| {
                let (conn, kind, i) = (1 + draw(4), draw(8), draw(6) as usize);
                (ConnId::from_raw(conn), frame_of(conn, kind, i, &messages))
            })
            .collect();
        let (together, most) = batched(&frames, max_errors);
        fullest = fullest.max(most);
        assert_eq!(together, one_by_one(&frames, max_errors), "run {run}");
    }
    assert_eq!(fullest, PARKED_MAX, "some run filled a batch");
}

/// Whether a snappy peer's head is peeked at first or not, the same frames are dropped,
/// delivered, relayed and refused: 400 runs (as above, with snappy frames cut short, which
/// the peek reads the head of and the whole decompression refuses) handled with the credit
/// as it comes, always peeking and never peeking first. (One by one: a cut copy of a
/// broadcast that is parked, not seen yet, is a decode error when checked together, and a
/// duplicate one by one, peeking or not; not this test's concern.)
#[test]
fn peeking_first_or_not_has_the_same_outcome() {
    let mut rng = py2p_testkit::Rng::new(0x2545_F491_4F6C_DD1D);
    let mut draw = |n: u64| rng.below(n);
    // Payloads long enough that a frame cut short still has its whole head in its start.
    let messages: Vec<py2p_wire::Message> = (0..6)
        .map(|i| origin_broadcast(format!("message {i} ").repeat(30).into_bytes()))
        .collect();
    let mut dropped = 0;
    for run in 0..400 {
        let len = draw(60) as usize;
        let max_errors = draw(3) as u32;
        let frames: Vec<(ConnId, Vec<u8>)> = (0..len)
            .map(|_| {
                let (conn, kind, i) = (1 + draw(4), draw(10), draw(6) as usize);
                (ConnId::from_raw(conn), frame_of(conn, kind, i, &messages))
            })
            .collect();
        let adaptive = one_by_one_peeking(&frames, max_errors, None);
        dropped += adaptive.counters[1];
        assert_eq!(
            adaptive,
            one_by_one_peeking(&frames, max_errors, Some(u8::MAX)),
            "run {run}"
        );
        assert_eq!(
            adaptive,
            one_by_one_peeking(&frames, max_errors, Some(0)),
            "run {run}"
        );
    }
    assert!(dropped > 1000, "copies were dropped: {dropped}");
}

/// A frame from peer `conn` of kind `kind` about message `i`.
fn frame_of(conn: u64, kind: u64, i: usize, messages: &[py2p_wire::Message]) -> Vec<u8> {
    let msg = &messages[i];
    match kind {
        // A genuine broadcast or its copy (most frames).
        0..=3 => as_sent_by(conn, msg),
        // Its id on another payload.
        4 => body(
            Flag::BROADCAST.0,
            msg.id(),
            &[&[Flag::BROADCAST.0], b"forged"],
        ),
        // An old broadcast (refused whole) or one with leading '1's in its time.
        5 => {
            let time = if i.is_multiple_of(2) {
                1_600_000_000
            } else {
                msg.time()
            };
            let m = py2p_wire::Message::new(
                vec![Flag::BROADCAST.0],
                b"origin".to_vec(),
                vec![vec![Flag::BROADCAST.0], format!("other {i}").into_bytes()],
                time,
            );
            if i.is_multiple_of(2) {
                return as_sent_by(4, &m);
            }
            let text = format!("11{}", m.time_58());
            let mut b = Vec::new();
            let head: [&[u8]; 4] = [m.msg_type(), m.sender(), m.id().as_bytes(), text.as_bytes()];
            for p in head.into_iter().chain(m.payload().iter()) {
                b.extend_from_slice(&(p.len() as u32).to_be_bytes());
                b.extend_from_slice(p);
            }
            b
        }
        // A whisper for the user.
        6 => as_sent_by(
            conn,
            &py2p_wire::Message::new(
                vec![Flag::WHISPER.0],
                b"peer".to_vec(),
                vec![vec![Flag::WHISPER.0], format!("w{i}").into_bytes()],
                1_700_000_000,
            ),
        ),
        // A snappy frame cut short: its head reads, the whole body does not.
        8 => {
            let mut b = msg.encode(Some(Compression::Snappy)).split_off(4);
            b.truncate(b.len() - 1 - i);
            b
        }
        // Bytes that are no message.
        _ => vec![0, 0, 0, 9, 1],
    }
}
