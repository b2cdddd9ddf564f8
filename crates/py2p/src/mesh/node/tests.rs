//! The node as the event loop drives it: every callback sends through `Out`, so what a relay
//! held for the turn goes out before anything else the node sends, and at the turn's end.

use std::net::SocketAddr;
use std::sync::Arc;

use py2p_net::{ConnId, ConnInfo, Net, Service};
use py2p_wire::{compression, Flag};

use super::MeshNode;
use crate::config::MeshConfig;
use crate::mesh::shared::Shared;
use crate::mesh::testing::RecordingNet;

/// An incoming connection from 127.0.0.1:`port`.
pub(super) fn info(port: u16) -> ConnInfo {
    ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        outgoing: false,
        tls_version: None,
    }
}

/// The body of a message from `sender`.
fn body(msg_type: Flag, sender: &str, packets: Vec<Vec<u8>>, net: &RecordingNet) -> Vec<u8> {
    py2p_wire::Message::new(
        vec![msg_type.0],
        sender.as_bytes().to_vec(),
        packets,
        net.unix_time(),
    )
    .encode(None)
    .split_off(4)
}

/// Node `me` with each `(conn, id)` peer handshaken on that connection (port 10 + conn),
/// sending plain frames; nothing recorded as sent yet.
pub(super) fn handshaken(peers: &[(u64, &str)]) -> (MeshNode, RecordingNet) {
    let config = MeshConfig::builder().build();
    let protocol = config.protocol.id();
    let shared = Arc::new(Shared::new(&config));
    let mut node = MeshNode::new(config, "me".into(), ("127.0.0.1".into(), 1), shared, None);
    let mut net = RecordingNet::new();
    for &(raw, id) in peers {
        let conn = ConnId::from_raw(raw);
        let port = 10 + raw as u16;
        node.on_open(&mut net, conn, &info(port));
        let handshake = vec![
            vec![Flag::HANDSHAKE.0],
            id.as_bytes().to_vec(),
            protocol.clone().into_bytes(),
            format!(r#"["127.0.0.1", {port}]"#).into_bytes(),
            compression::to_json(&[]).into_bytes(),
        ];
        let frame = body(Flag::WHISPER, id, handshake, &net);
        node.on_frame(&mut net, conn, &frame);
    }
    node.before_write(&mut net);
    net.sent.clear();
    (node, net)
}

#[test]
fn a_held_relay_goes_out_before_a_new_connections_handshake_and_at_the_turns_end() {
    let (mut node, mut net) = handshaken(&[(1, "a"), (2, "b"), (3, "c")]);

    // A broadcast from `a`: its relay to b and c waits for the end of the turn.
    let broadcast = |text: &[u8], net: &RecordingNet| {
        body(
            Flag::BROADCAST,
            "origin",
            vec![vec![Flag::BROADCAST.0], text.to_vec()],
            net,
        )
    };
    let one = broadcast(b"one", &net);
    node.on_frame(&mut net, ConnId::from_raw(1), &one);
    assert!(net.sent.is_empty(), "held for the turn");
    // A connection opens in the same turn: our handshake to it goes after the relays.
    node.on_open(&mut net, ConnId::from_raw(4), &info(14));
    assert_eq!(net.sent_to(), [2, 3, 4]);

    // Held again, then the turn ends: the loop asks for what is held.
    net.sent.clear();
    let two = broadcast(b"two", &net);
    node.on_frame(&mut net, ConnId::from_raw(1), &two);
    assert!(net.sent.is_empty());
    node.before_write(&mut net);
    assert_eq!(net.sent_to(), [2, 3]);
}

#[test]
fn users_sends_are_released_to_the_senders_view_once_per_turn_with_the_queued_total() {
    use crate::mesh::command::Command;
    use crate::mesh::PackedPackets;
    let config = MeshConfig::builder().build();
    let shared = Arc::new(Shared::new(&config));
    let mut node = MeshNode::new(
        config,
        "me".into(),
        ("127.0.0.1".into(), 1),
        shared.clone(),
        None,
    );
    let mut net = RecordingNet::new();
    for _ in 0..3 {
        assert!(shared.reserve(100));
        let packets = PackedPackets::new(&[b"hello"]).unwrap();
        node.on_command(
            &mut net,
            Command::BroadcastPacked {
                packets,
                bytes: 100,
            },
        );
    }
    // Not queued yet: the broadcasts wait for the end of the run of commands, and their
    // bytes are released only once they are queued.
    node.on_backlog(0);
    assert_eq!(shared.backlog_total(), 300);
    node.on_commands_done(&mut net);
    // In flight until the loop says what its queues hold (the turn's end, or a flush in a
    // long run of commands): no update of the shared counters per send.
    assert_eq!(shared.backlog_total(), 300);
    node.on_backlog(40);
    assert_eq!(shared.backlog_total(), 40);
    node.on_backlog(0);
    assert_eq!(shared.backlog_total(), 0, "released once");
}

/// The node behind an `Endpoint` (as the loop and the simulator drive it), with a peer
/// connected; `capacity`: the inbox's.
fn endpoint_node(capacity: usize) -> (MeshNode, Arc<Shared>, py2p_net::Endpoint, ConnId) {
    let config = MeshConfig::builder().inbox_capacity(capacity).build();
    let shared = Arc::new(Shared::new(&config));
    let net_config = config.net.clone();
    let mut node = MeshNode::new(
        config,
        "me".into(),
        ("127.0.0.1".into(), 1),
        shared.clone(),
        None,
    );
    let mut endpoint = py2p_net::Endpoint::new(net_config, std::time::Instant::now(), 1);
    // The test nets' clock, which stamps the broadcasts below.
    endpoint.set_unix_time(RecordingNet::new().unix_time());
    let conn = endpoint
        .accept(SocketAddr::from(([127, 0, 0, 1], 9)), &mut node)
        .expect("accepted");
    (node, shared, endpoint, conn)
}

/// `n` broadcasts from `origin`, as frames in one read.
fn broadcasts(n: usize, net: &RecordingNet) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            py2p_wire::Message::new(
                vec![Flag::BROADCAST.0],
                b"origin".to_vec(),
                vec![vec![Flag::BROADCAST.0], format!("message {i}").into_bytes()],
                net.unix_time(),
            )
            .encode(None)
        })
        .collect()
}

/// A broadcast waits for the ones after it only within its delivery run: one frame alone
/// reaches the inbox at the end of the read it came in.
#[test]
fn a_single_broadcast_is_delivered_at_the_end_of_its_delivery_run() {
    let (mut node, shared, mut endpoint, conn) = endpoint_node(100);
    let net = RecordingNet::new();
    let frame = broadcasts(1, &net);
    // Handed to the node by itself, it waits for the next one (or the run's end).
    node.on_frame(&mut RecordingNet::new(), conn, &frame[4..]);
    node.flush_inbox();
    assert_eq!(shared.inbox.len(), 0, "parked for its id check");
    node.on_frames_done(&mut RecordingNet::new());
    node.flush_inbox();
    assert_eq!(shared.inbox.len(), 1);
    // Through the endpoint, the run's end comes with the read.
    let next = broadcasts(2, &net);
    endpoint.received(conn, &next[next.len() / 2..], &mut node);
    node.flush_inbox();
    assert_eq!(shared.inbox.len(), 2);
}

/// Input pauses at the same frame as when each broadcast was delivered as it came: the
/// parked ones count as staged in the inbox.
#[test]
fn input_pauses_when_the_inbox_is_full_with_the_parked_broadcasts() {
    for capacity in [1, 3, 16, 17, 40] {
        let (mut node, shared, mut endpoint, conn) = endpoint_node(capacity);
        let net = RecordingNet::new();
        endpoint.received(conn, &broadcasts(60, &net), &mut node);
        node.flush_inbox();
        assert_eq!(shared.inbox.len(), capacity, "capacity {capacity}");
        assert!(endpoint.is_paused(conn), "capacity {capacity}");
        assert!(!node.wants_input());
        // The reader takes one: one more frame, then paused again.
        let (taken, _) = shared.inbox.pop(Some(std::time::Duration::ZERO));
        assert!(taken.is_some());
        assert!(!endpoint.resume(conn, &mut node));
        node.flush_inbox();
        assert_eq!(shared.inbox.len(), capacity, "capacity {capacity}");
        assert!(endpoint.is_paused(conn));
    }
}
