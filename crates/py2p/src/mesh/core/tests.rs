//! The seen-check comes before the checksum: a copy of a seen broadcast costs no sha-384.

use std::net::SocketAddr;

use py2p_net::{ConnId, ConnInfo, NetError};
use py2p_wire::{base58, Flag};

use super::{Effect, MeshCore, Tables};
use crate::config::MeshConfig;
use crate::error::ConnectError;
use crate::mesh::testing::FakeNet;

fn body(msg_type: u8, id: &str, payload: &[&[u8]]) -> Vec<u8> {
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
fn deliveries(core: &mut MeshCore) -> usize {
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
    core.on_frame(&mut net, conn, &genuine_body, Tables::default());
    assert_eq!(deliveries(&mut core), 1);
    // The same frame again, and one with the genuine id but another payload (its
    // checksum does not match): both are copies of a seen broadcast, dropped unchecked.
    core.on_frame(&mut net, conn, &genuine_body, Tables::default());
    let forged = body(
        Flag::BROADCAST.0,
        genuine.id(),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    core.on_frame(&mut net, conn, &forged, Tables::default());
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
    core.on_frame(&mut net, conn, &unseen, Tables::default());
    assert_eq!(core.counters.decode_errors, 1);
    // A whisper is never taken for a seen broadcast: it is checked and refused.
    let whisper = body(Flag::WHISPER.0, genuine.id(), &[&[Flag::WHISPER.0], b"bye"]);
    core.on_frame(&mut net, conn, &whisper, Tables::default());
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
    core.on_frame(
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
    core.on_frame(
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
