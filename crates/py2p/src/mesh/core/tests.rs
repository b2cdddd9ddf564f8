//! The seen-check comes before the checksum: a copy of a seen broadcast costs no sha-384.

use std::net::SocketAddr;

use std::time::Duration;

use py2p_net::{CloseReason, ConnId, ConnInfo, Net, NetError};
use py2p_wire::{base58, Flag};

use super::{Effect, HeldRelays, MeshCore, Out, Tables, Taken};
use crate::config::MeshConfig;
use crate::error::ConnectError;
use crate::mesh::testing::{FakeNet, RecordingNet};

impl MeshCore {
    /// A frame from `conn`, handled at once: taken, then finished with the broadcasts
    /// parked before it (itself included, if it was parked).
    pub(super) fn on_frame(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        body: &[u8],
        tables: Tables,
    ) {
        match self.take_frame(net, conn, body) {
            Taken::Done => {}
            Taken::Parked => self.finish_parked(net, tables),
            Taken::Ready { decoded, received } => {
                self.finish_parked(net, tables);
                self.handle_ready(net, conn, decoded, received, tables);
            }
        }
    }

    /// Finishes every parked broadcast, the core alone (effects queued).
    pub(super) fn finish_parked(&mut self, net: &mut Out<'_>, tables: Tables) {
        while self.finish_next(net, tables) {}
    }

    /// A frame from `conn` in a turn of its own: the relays it holds go out after it.
    fn frame(&mut self, net: &mut dyn Net, conn: ConnId, body: &[u8], tables: Tables) {
        let mut held = HeldRelays::new();
        let mut out = Out::new(net, &mut held);
        self.on_frame(&mut out, conn, body, tables);
        out.release();
    }
}

pub(super) fn body(msg_type: u8, id: &str, payload: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let time = base58::encode_u64(1_700_000_000);
    let head: [&[u8]; 4] = [&[msg_type], b"sender", id.as_bytes(), time.as_bytes()];
    for p in head.into_iter().chain(payload.iter().copied()) {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// How many messages the core handed to the node for delivery since the last call.
pub(super) fn deliveries(core: &mut MeshCore) -> usize {
    std::iter::from_fn(|| core.poll_effect())
        .filter(|e| matches!(e, Effect::Deliver { .. }))
        .count()
}

#[test]
fn a_copy_claiming_a_seen_id_is_a_duplicate_before_its_checksum_is_checked() {
    let config = MeshConfig::builder().build();
    let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1));
    let mut net = FakeNet::new();
    let conn = ConnId::from_raw(7);
    let info = ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        outgoing: false,
        tls_version: None,
    };
    core.on_open(&mut net, conn, &info);
    let genuine = py2p_wire::Message::new(
        vec![Flag::BROADCAST.0],
        b"sender".to_vec(),
        vec![vec![Flag::BROADCAST.0], b"hello".to_vec()],
        1_700_000_000,
    );
    let genuine_body = genuine.encode(None).split_off(4);
    core.frame(&mut net, conn, &genuine_body, Tables::default());
    assert_eq!(deliveries(&mut core), 1);
    // The same frame again, and one with the genuine id but another payload (its
    // checksum does not match): both are copies of a seen broadcast, dropped unchecked.
    core.frame(&mut net, conn, &genuine_body, Tables::default());
    let forged = body(
        Flag::BROADCAST.0,
        genuine.id(),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    core.frame(&mut net, conn, &forged, Tables::default());
    assert_eq!(
        (
            deliveries(&mut core),
            core.counters.duplicates,
            core.counters.decode_errors
        ),
        (0, 2, 0)
    );
    // An unseen id with a bad checksum is still a decode error.
    let unseen = body(
        Flag::BROADCAST.0,
        &base58::encode_be_bytes(&[7u8; 48]),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    core.frame(&mut net, conn, &unseen, Tables::default());
    assert_eq!(core.counters.decode_errors, 1);
    // A whisper is never taken for a seen broadcast: it is checked and refused.
    let whisper = body(Flag::WHISPER.0, genuine.id(), &[&[Flag::WHISPER.0], b"bye"]);
    core.frame(&mut net, conn, &whisper, Tables::default());
    assert_eq!(
        (core.counters.duplicates, core.counters.decode_errors),
        (2, 2)
    );
}

#[test]
fn a_handshake_publishes_the_routing_table_before_the_peer_event_and_a_whisper_is_an_effect() {
    let config = MeshConfig::builder().build();
    let mut core = MeshCore::new(config.clone(), "me".into(), ("127.0.0.1".into(), 1));
    let mut net = FakeNet::new();
    let conn = ConnId::from_raw(3);
    let info = ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        outgoing: false,
        tls_version: None,
    };
    core.on_open(&mut net, conn, &info);
    let handshake = py2p_wire::Message::new(
        vec![Flag::WHISPER.0],
        b"them".to_vec(),
        vec![
            vec![Flag::HANDSHAKE.0],
            b"them".to_vec(),
            config.protocol.id().into_bytes(),
            br#"["127.0.0.1", 9]"#.to_vec(),
            b"[]".to_vec(),
        ],
        1_700_000_000,
    );
    core.frame(
        &mut net,
        conn,
        &handshake.encode(None)[4..],
        Tables::default(),
    );
    let effects: Vec<Effect> = std::iter::from_fn(|| core.poll_effect()).collect();
    let names: Vec<&str> = effects
        .iter()
        .map(|e| match e {
            Effect::PeersChanged => "peers-changed",
            Effect::PeerUp {
                newly_routed: true, ..
            } => "peer-up",
            _ => "other",
        })
        .collect();
    assert_eq!(names, ["peers-changed", "peer-up"]);
    // A user's whisper is not kept anywhere in the core: it leaves as an effect.
    let whisper = py2p_wire::Message::new(
        vec![Flag::WHISPER.0],
        b"them".to_vec(),
        vec![vec![Flag::WHISPER.0], b"hi".to_vec()],
        1_700_000_000,
    );
    core.frame(
        &mut net,
        conn,
        &whisper.encode(None)[4..],
        Tables::default(),
    );
    match core.poll_effect() {
        Some(Effect::Deliver { conn: c, msg }) => {
            assert_eq!((c, msg.payload().get(1)), (conn, Some(&b"hi"[..])));
        }
        other => panic!("expected a delivery, got {other:?}"),
    }
    assert!(core.poll_effect().is_none());
}

#[test]
fn a_connect_the_network_refuses_is_answered_at_once_with_the_typed_error_and_noted() {
    let mut core = MeshCore::new(
        MeshConfig::builder().build(),
        "me".into(),
        ("127.0.0.1".into(), 1),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    // `FakeNet` refuses every dial as a stopped loop would.
    assert!(matches!(
        core.dial(&mut FakeNet::new(), addr, None, Vec::new()),
        Err(NetError::Closed)
    ));
    let errors = std::iter::from_fn(|| core.poll_effect())
        .filter(|e| matches!(e, Effect::Error(_)))
        .count();
    assert_eq!(errors, 1, "a refused dial is noted for status()");
    match core.connect(&mut FakeNet::new(), addr, None) {
        super::Connecting::Done(Err(ConnectError::Io(kind, text))) => {
            assert_eq!(kind, std::io::ErrorKind::Other);
            assert_eq!(text, NetError::Closed.to_string());
        }
        other => panic!("expected an immediate I/O error, got {other:?}"),
    }
    // Our own address is refused without a dial.
    let own = SocketAddr::from(([127, 0, 0, 1], 1));
    assert!(matches!(
        core.connect(&mut FakeNet::new(), own, None),
        super::Connecting::Done(Err(ConnectError::SelfConnection))
    ));
}

/// Opens `conn` and completes a handshake from a peer `id` advertising port `port`, with no
/// compression.
fn handshaken(core: &mut MeshCore, net: &mut dyn Net, conn: ConnId, id: &str, port: u16) {
    handshaken_with(core, net, conn, id, port, &[]);
}

/// `handshaken`, the peer offering `methods`.
pub(super) fn handshaken_with(
    core: &mut MeshCore,
    net: &mut dyn Net,
    conn: ConnId,
    id: &str,
    port: u16,
    methods: &[py2p_wire::Compression],
) {
    let info = ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        outgoing: false,
        tls_version: None,
    };
    core.on_open(net, conn, &info);
    let handshake = py2p_wire::Message::new(
        vec![Flag::WHISPER.0],
        id.as_bytes().to_vec(),
        vec![
            vec![Flag::HANDSHAKE.0],
            id.as_bytes().to_vec(),
            core.protocol_id.clone().into_bytes(),
            format!(r#"["127.0.0.1", {port}]"#).into_bytes(),
            py2p_wire::compression::to_json(methods).into_bytes(),
        ],
        1_700_000_000,
    );
    core.frame(net, conn, &handshake.encode(None)[4..], Tables::default());
}

/// `from` (on `conn`) sends a peers list naming `id` at port `port`.
fn peers_list(
    core: &mut MeshCore,
    net: &mut FakeNet,
    conn: ConnId,
    from: &str,
    id: &str,
    port: u16,
) {
    let list = format!(r#"[[["127.0.0.1", {port}], "{id}"]]"#);
    let msg = py2p_wire::Message::new(
        vec![Flag::WHISPER.0],
        from.as_bytes().to_vec(),
        vec![vec![Flag::PEERS.0], list.into_bytes()],
        1_700_000_000,
    );
    core.frame(net, conn, &msg.encode(None)[4..], Tables::default());
}

/// py2p's chord drops the outgoing connections it finds least useful, then dials them again
/// when a peers list names them; a node that dialled straight back each time it was dropped
/// kept the two of them opening and closing connections hundreds of times a minute (seen
/// with a py2p chord node in a mixed ring). A peer lost for the first time is dialled from
/// a peers list at once (as py2p does); one that drops us again soon after it came back is
/// dialled only when its redial time has come, doubling each time.
#[test]
fn a_peer_that_keeps_dropping_us_is_not_dialled_back_from_a_peers_list_before_its_time() {
    let config = MeshConfig::builder().build();
    let interval = config.reconnect_interval;
    let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1));
    let mut net = FakeNet::new();
    let (them, other) = (ConnId::from_raw(1), ConnId::from_raw(2));
    handshaken(&mut core, &mut net, them, "them", 9);
    handshaken(&mut core, &mut net, other, "other", 8);
    let them_addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let dials = |net: &FakeNet| net.dialled.iter().filter(|a| **a == them_addr).count();

    // Lost once: a list naming it is followed at once.
    core.on_close(&mut net, them, &CloseReason::PeerClosed);
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    assert_eq!(dials(&net), 1, "a peer lost once is dialled from a list");

    // It comes back (dialling us) and drops us again soon after: lists wait for its next
    // try, twice the interval away.
    let back = ConnId::from_raw(3);
    handshaken(&mut core, &mut net, back, "them", 9);
    net.elapsed += Duration::from_secs(1);
    core.on_close(&mut net, back, &CloseReason::PeerClosed);
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    net.elapsed += interval;
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    assert_eq!(
        dials(&net),
        1,
        "dialled straight back though it keeps dropping us"
    );
    net.elapsed += interval;
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    assert_eq!(
        dials(&net),
        2,
        "not dialled once its (doubled) time had come"
    );

    // Back for longer than the flap window, its losses are forgotten: lost again, it is
    // dialled from a list at once.
    let again = ConnId::from_raw(4);
    handshaken(&mut core, &mut net, again, "them", 9);
    net.elapsed += super::state::FLAP_WINDOW;
    core.on_tick(&mut net);
    core.on_close(&mut net, again, &CloseReason::PeerClosed);
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    assert_eq!(dials(&net), 3, "a peer stable for a while still held back");

    // A broken connection (an I/O error) is the network's doing, not the peer's: back and
    // broken again at once, it is dialled from a list at once.
    let broken = ConnId::from_raw(5);
    handshaken(&mut core, &mut net, broken, "them", 9);
    core.on_close(
        &mut net,
        broken,
        &CloseReason::Io("connection reset".into()),
    );
    peers_list(&mut core, &mut net, other, "other", "them", 9);
    assert_eq!(dials(&net), 4, "a reset held the peer back");
}

#[test]
fn the_published_routing_table_is_updated_in_place_without_copying_unchanged_peers() {
    let config = MeshConfig::builder().build();
    let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1));
    let mut net = FakeNet::new();
    let mut published = Vec::new();
    for (raw, id) in [(1, "c"), (2, "a"), (3, "b")] {
        handshaken(
            &mut core,
            &mut net,
            ConnId::from_raw(raw),
            id,
            100 + raw as u16,
        );
        core.update_peer_infos(&mut published);
        assert_eq!(published, core.peer_infos());
    }
    let ids: Vec<&str> = published.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let kept = published
        .iter()
        .find(|p| p.id == "c")
        .map(|p| p.id.as_ptr());
    core.on_close(
        &mut net,
        ConnId::from_raw(2),
        &py2p_net::CloseReason::PeerClosed,
    );
    core.update_peer_infos(&mut published);
    assert_eq!(published, core.peer_infos());
    assert_eq!(published.len(), 2);
    // The entry of a peer that did not change is the same string, not a new copy.
    let after = published
        .iter()
        .find(|p| p.id == "c")
        .map(|p| p.id.as_ptr());
    assert_eq!(kept, after);
}

/// A node with four routed peers, `a` to `d` on connections 1 to 4, that send with snappy,
/// snappy, zlib and no compression.
pub(super) fn relay_node() -> (MeshCore, RecordingNet) {
    use py2p_wire::Compression;
    let config = MeshConfig::builder().build();
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
    assert_eq!(core.routing.len(), 4);
    while core.poll_effect().is_some() {}
    net.sent.clear();
    (core, net)
}

/// A broadcast of `payload` from node `origin` (not one of the relay node's peers).
pub(super) fn origin_broadcast(payload: Vec<u8>) -> py2p_wire::Message {
    py2p_wire::Message::new(
        vec![Flag::BROADCAST.0],
        b"origin".to_vec(),
        vec![vec![Flag::BROADCAST.0], payload],
        1_700_000_000,
    )
}

/// A valid snappy body that is not what our snappy writes: the length, then the plain
/// bytes as one literal.
pub(super) fn snappy_literal(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = plain.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.push(61 << 2);
    out.extend_from_slice(&((plain.len() - 1) as u16).to_le_bytes());
    out.extend_from_slice(plain);
    out
}

#[test]
fn a_relay_passes_a_snappy_body_on_unchanged_to_snappy_peers_and_encodes_it_for_the_others() {
    use py2p_wire::{Compression, Limits};
    let (mut core, mut net) = relay_node();
    let msg = origin_broadcast(b"hello ".repeat(50));
    let body = snappy_literal(&msg.encode(None)[4..]);
    assert_ne!(Compression::Snappy.compress(&msg.encode(None)[4..]), body);
    core.frame(&mut net, ConnId::from_raw(1), &body, Tables::default());
    assert_eq!(deliveries(&mut core), 1);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let to = |conn: u64| -> Vec<&Vec<u8>> {
        net.sent
            .iter()
            .filter(|(c, _)| *c == ConnId::from_raw(conn))
            .map(|(_, f)| f)
            .collect()
    };
    assert!(to(1).is_empty(), "not back to where it came from");
    assert_eq!(to(2), [&frame], "b reads snappy: the very frame");
    let limits = Limits::default();
    let zlib = to(3);
    assert_eq!(zlib.len(), 1);
    assert_eq!(
        py2p_wire::Message::decode_frame(zlib[0], &[Compression::Zlib], &limits).unwrap(),
        msg
    );
    assert_eq!(to(4), [&msg.encode(None)], "d reads plain frames");
}

#[test]
fn a_relay_encodes_again_a_body_whose_time_is_not_spelled_canonically() {
    let (mut core, mut net) = relay_node();
    let msg = origin_broadcast(b"hi".to_vec());
    // A leading zero digit: the same time, the same id, but not the bytes we would write.
    let time = format!("1{}", msg.time_58());
    let mut plain = Vec::new();
    let packets: [&[u8]; 6] = [
        &[Flag::BROADCAST.0],
        b"origin",
        msg.id().as_bytes(),
        time.as_bytes(),
        &[Flag::BROADCAST.0],
        b"hi",
    ];
    for p in packets {
        plain.extend_from_slice(&(p.len() as u32).to_be_bytes());
        plain.extend_from_slice(p);
    }
    // From `a` as a snappy literal: `b` (snappy) must get our encoding, not these bytes.
    core.frame(
        &mut net,
        ConnId::from_raw(1),
        &snappy_literal(&plain),
        Tables::default(),
    );
    assert_eq!(deliveries(&mut core), 1);
    let to_b: Vec<&Vec<u8>> = net
        .sent
        .iter()
        .filter(|(c, _)| *c == ConnId::from_raw(2))
        .map(|(_, f)| f)
        .collect();
    assert_eq!(to_b.len(), 1);
    assert_eq!(
        to_b[0][4..],
        py2p_wire::Compression::Snappy.compress(&msg.encode(None)[4..])[..],
        "b gets our own snappy encoding, time spelled canonically"
    );
}

#[test]
fn a_snappy_copy_of_a_seen_broadcast_is_dropped_on_its_head_alone() {
    let (mut core, mut net) = relay_node();
    let msg = origin_broadcast(b"payload ".repeat(40));
    let body = snappy_literal(&msg.encode(None)[4..]);
    core.frame(&mut net, ConnId::from_raw(1), &body, Tables::default());
    assert_eq!(deliveries(&mut core), 1);
    // A copy whose block is cut after the head: its payload is never decompressed (the
    // whole block would not decompress, and the frame would be an undecodable one).
    let cut = &body[..body.len() - 100];
    core.frame(&mut net, ConnId::from_raw(2), cut, Tables::default());
    assert_eq!(
        (
            deliveries(&mut core),
            core.counters.duplicates,
            core.counters.decode_errors
        ),
        (0, 1, 0)
    );
    // From `d`, whose frames are plain, the cut block is read whole: undecodable.
    core.frame(&mut net, ConnId::from_raw(4), cut, Tables::default());
    assert_eq!(core.counters.decode_errors, 1);
}

#[test]
fn a_peer_that_sends_a_copy_while_our_relay_is_held_gets_none() {
    let (mut core, mut net) = relay_node();
    let mut held = HeldRelays::new();
    let msg = origin_broadcast(b"payload ".repeat(40));
    let snappy = py2p_wire::Compression::Snappy.compress(&msg.encode(None)[4..]);
    let [a, b, c, d] = [1, 2, 3, 4].map(ConnId::from_raw);
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        a,
        &snappy,
        Tables::default(),
    );
    assert!(
        net.sent.is_empty(),
        "the relay waits for the end of the turn"
    );
    // In the same turn: copies from `b` (snappy: dropped on its head) and `c` (zlib: on the
    // whole decoded head).
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        b,
        &snappy,
        Tables::default(),
    );
    let zlib = msg.encode(Some(py2p_wire::Compression::Zlib));
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        c,
        &zlib[4..],
        Tables::default(),
    );
    assert_eq!(core.counters.duplicates, 2);
    Out::new(&mut net, &mut held).release();
    assert_eq!(net.sent_to(), [4], "only d has not sent it to us");
    assert_eq!(core.counters.relayed, 1);
    assert_eq!(deliveries(&mut core), 1);
    // A later copy (another turn) finds nothing held: nothing else is sent.
    core.frame(&mut net, d, &msg.encode(None)[4..], Tables::default());
    assert_eq!(net.sent_to(), [4]);
}

/// The relay node's turn so far: a broadcast of `payload` from `a` (conn 1), relayed to b, c
/// and d, held.
fn held_relay(core: &mut MeshCore, net: &mut RecordingNet, held: &mut HeldRelays, payload: &[u8]) {
    let msg = origin_broadcast(payload.to_vec());
    let mut out = Out::new(net, held);
    core.on_frame(
        &mut out,
        ConnId::from_raw(1),
        &msg.encode(None)[4..],
        Tables::default(),
    );
    assert!(!held.is_empty());
    assert!(
        net.sent.is_empty(),
        "the relay waits for the end of the turn"
    );
}

#[test]
fn held_relays_go_out_before_any_other_frame_the_node_sends() {
    let (mut core, mut net) = relay_node();
    let mut held = HeldRelays::new();
    let msg = origin_broadcast(b"first".to_vec());
    let d = ConnId::from_raw(4);
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        d,
        &msg.encode(None)[4..],
        Tables::default(),
    );
    assert!(net.sent.is_empty());
    // Our own broadcast, in the same turn: the held relay to each peer goes first.
    core.broadcast(
        &mut Out::new(&mut net, &mut held),
        vec![vec![Flag::BROADCAST.0], b"ours".to_vec()],
    );
    assert_eq!(net.sent_to(), [1, 2, 3, 1, 2, 3, 4]);
    // And a frame the node sends in answer to a peer goes after what is held. A whisper
    // for the user sends nothing: the relays still wait.
    net.sent.clear();
    let next = origin_broadcast(b"second".to_vec());
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        d,
        &next.encode(None)[4..],
        Tables::default(),
    );
    let whisper = |packets: Vec<Vec<u8>>| {
        py2p_wire::Message::new(vec![Flag::WHISPER.0], b"d".to_vec(), packets, 1_700_000_000)
            .encode(None)
    };
    let hi = whisper(vec![vec![Flag::WHISPER.0], b"hi".to_vec()]);
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        d,
        &hi[4..],
        Tables::default(),
    );
    assert!(net.sent.is_empty(), "nothing sent, nothing released");
    // `d` asks for our peers: the answer goes after the relays.
    let ask = whisper(vec![vec![Flag::REQUEST.0], b"*".to_vec()]);
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        d,
        &ask[4..],
        Tables::default(),
    );
    assert_eq!(net.sent_to(), [1, 2, 3, 4]);
    assert!(held.is_empty());
}

/// Each path that sends (or closes) while a relay is held sends it first with no call of
/// its own: the net the core is given does (`Out`). These paths each released the relays
/// themselves before.
#[test]
fn a_decode_errors_renegotiation_and_a_new_connections_handshake_go_after_held_relays() {
    let (mut core, mut net) = relay_node();
    let mut held = HeldRelays::new();
    // An undecodable frame from `d` (a checksum that does not match): py2p's renegotiation,
    // two frames to `d`, go after the relays to b, c and d.
    held_relay(&mut core, &mut net, &mut held, b"one");
    let bad = body(
        Flag::BROADCAST.0,
        &base58::encode_be_bytes(&[7u8; 48]),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    let d = ConnId::from_raw(4);
    core.on_frame(
        &mut Out::new(&mut net, &mut held),
        d,
        &bad,
        Tables::default(),
    );
    assert_eq!(core.counters.decode_errors, 1);
    assert_eq!(net.sent_to(), [2, 3, 4, 4, 4]);

    // A connection opens: our handshake to it goes after the relays.
    net.sent.clear();
    held_relay(&mut core, &mut net, &mut held, b"two");
    let info = ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 20)),
        outgoing: false,
        tls_version: None,
    };
    let e = ConnId::from_raw(5);
    core.on_open(&mut Out::new(&mut net, &mut held), e, &info);
    assert_eq!(net.sent_to(), [2, 3, 4, 5]);
}

/// The routed peers' last message, which every one of them holds.
fn last_sent_of_all(core: &MeshCore) -> std::sync::Arc<py2p_wire::Message> {
    let mut all = core
        .routing
        .values()
        .map(|c| core.peers[c].last_sent.clone().expect("a last message"));
    let first = all.next().expect("routed peers");
    assert!(all.all(|m| std::sync::Arc::ptr_eq(&m, &first)));
    first
}

#[test]
fn a_user_broadcast_is_made_in_the_last_ones_buffer_unless_someone_else_holds_it() {
    let (mut core, mut net) = relay_node();
    let packets: [&[u8]; 1] = [b"first message, the longer one"];
    core.broadcast_user(&mut net, 0, packets.into_iter());
    let first = last_sent_of_all(&core);
    let buffer = first.plain_frame().as_ptr();
    drop(first);

    let packets: [&[u8]; 1] = [b"second"];
    core.broadcast_user(&mut net, 0, packets.into_iter());
    let second = last_sent_of_all(&core);
    assert_eq!(second.plain_frame().as_ptr(), buffer, "made in place");
    let fresh = py2p_wire::Message::from_packets(
        &[Flag::BROADCAST.0],
        b"me",
        &[&[0u8][..], b"second"],
        second.time(),
    );
    assert_eq!(*second, fresh);
    // Each peer got the second message's frame, and its id is in the seen set.
    assert_eq!(net.sent.len(), 8);
    let plain = net
        .sent
        .iter()
        .rfind(|(c, _)| c.to_raw() == 4)
        .map(|(_, f)| f);
    assert_eq!(plain, Some(&fresh.encode(None)));
    assert!(core.seen.contains(fresh.id()));

    // Someone else holds the second message (a `resend` in flight): it is left alone.
    let held = second;
    let packets: [&[u8]; 1] = [b"third"];
    core.broadcast_user(&mut net, 0, packets.into_iter());
    assert_eq!(*held, fresh);
    let third = last_sent_of_all(&core);
    assert_ne!(third.plain_frame().as_ptr(), buffer);
    assert_eq!(third.payload()[1], *b"third");
}
