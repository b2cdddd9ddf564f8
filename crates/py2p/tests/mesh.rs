//! Mesh networks of Rust nodes in one process: 2, 3 and 10 nodes, and every behaviour of
//! mesh.py that does not need a Python peer.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use py2p::{
    ConnectError, Error, MeshConfig, MeshConfigBuilder, MeshSocket, MessageKind, PeerEvent,
};

const WAIT: Duration = Duration::from_secs(20);

fn builder() -> MeshConfigBuilder {
    MeshConfig::builder().bind("127.0.0.1:0".parse().unwrap())
}

fn node() -> MeshSocket {
    MeshSocket::bind(builder().build()).unwrap()
}

fn wait_connected(s: &MeshSocket, id: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if s.peers().unwrap().iter().any(|p| p.id == id) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{} never connected to {id}", s.id());
        // Peer events are the signal to look again.
        let _ = s.next_event(left.min(Duration::from_millis(100)));
    }
}

fn recv_text(s: &MeshSocket) -> (MessageKind, String, String) {
    let m = s.recv_timeout(WAIT).expect("a message in time");
    let text = m
        .packets()
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join("|");
    (m.kind(), m.sender(), text)
}

/// Waits until `cond` holds on the node's status (counters have no events of their own).
fn wait_status(s: &MeshSocket, what: &str, cond: impl Fn(&py2p::Status) -> bool) -> py2p::Status {
    let deadline = Instant::now() + WAIT;
    loop {
        let st = s.status().unwrap();
        if cond(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "{what}: {st:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_nodes_broadcast_whisper_reply_and_events() {
    let a = node();
    let b = node();
    b.connect(a.local_addr()).unwrap();
    // Both ends report the handshake as an event, with the advertised address.
    assert_eq!(
        a.next_event(WAIT),
        Some(PeerEvent::Connected {
            id: b.id().to_owned(),
            addr: ("127.0.0.1".into(), b.local_addr().port())
        })
    );
    assert_eq!(
        b.next_event(WAIT),
        Some(PeerEvent::Connected {
            id: a.id().to_owned(),
            addr: ("127.0.0.1".into(), a.local_addr().port())
        })
    );

    a.send(&["one", "two"]).unwrap();
    assert_eq!(
        recv_text(&b),
        (MessageKind::Broadcast, a.id().to_owned(), "one|two".into())
    );
    b.send(&[b"\xffbinary".as_slice()]).unwrap();
    let m = a.recv_timeout(WAIT).unwrap();
    assert_eq!(m.packets(), [b"\xffbinary".to_vec()]);
    assert_eq!(
        m.payload()[0],
        vec![0x00],
        "py2p payload starts with the broadcast sub-flag"
    );

    a.whisper(b.id(), &["psst"]).unwrap();
    let m = b.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (m.kind(), m.packets().to_vec()),
        (MessageKind::Whisper, vec![b"psst".to_vec()])
    );
    b.reply(&m, &["heard you"]).unwrap();
    assert_eq!(
        recv_text(&a),
        (MessageKind::Whisper, b.id().to_owned(), "heard you".into())
    );

    // Nothing else arrived: no echo of a's own broadcast.
    assert!(a.try_recv().is_none());
    let st = a.status().unwrap();
    assert_eq!((st.peers, st.received), (1, 2));
    let peers = a.peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].id, b.id());
    assert!(!peers[0].outgoing);
    assert_eq!(peers[0].compression, Some(py2p::Compression::Snappy));

    // Closing one end is a departure for the other.
    drop(b);
    assert!(matches!(
        a.next_event(WAIT),
        Some(PeerEvent::Disconnected { .. })
    ));
    assert!(a.peers().unwrap().is_empty());
}

#[test]
fn three_nodes_in_a_line_relay_once_and_route_whispers() {
    // a — b — c: a and c dial nobody from peer lists, so they only meet through b.
    let a = MeshSocket::bind(builder().max_outgoing(0).build()).unwrap();
    let b = node();
    let c = MeshSocket::bind(builder().max_outgoing(0).build()).unwrap();
    a.connect(b.local_addr()).unwrap();
    c.connect(b.local_addr()).unwrap();
    wait_connected(&b, a.id());
    wait_connected(&b, c.id());
    wait_connected(&a, b.id());
    wait_connected(&c, b.id());

    for i in 0..50 {
        a.send(&[format!("from a {i}")]).unwrap();
    }
    for i in 0..50 {
        assert_eq!(recv_text(&c).2, format!("from a {i}"));
        assert_eq!(recv_text(&b).2, format!("from a {i}"));
    }
    // A marker from c, after everything a sent: when a has it, any echo would have come first.
    c.send(&["marker"]).unwrap();
    assert_eq!(recv_text(&a).2, "marker");
    assert!(a.try_recv().is_none(), "a got a message of its own back");
    assert_eq!(b.status().unwrap().duplicates, 0);

    // a is not connected to c: the whisper goes through request/response, b answers with
    // c's address, and a dials c to deliver it.
    assert!(a.peers().unwrap().iter().all(|p| p.id != c.id()));
    a.whisper(c.id(), &["via request/response"]).unwrap();
    assert_eq!(
        recv_text(&c),
        (
            MessageKind::Whisper,
            a.id().to_owned(),
            "via request/response".into()
        )
    );
    wait_connected(&a, c.id());
}

#[test]
fn ten_nodes_from_one_seed_every_message_exactly_once() {
    let nodes: Vec<MeshSocket> = (0..10).map(|_| node()).collect();
    for n in &nodes[1..] {
        n.connect(nodes[0].local_addr()).unwrap();
    }
    for n in &nodes[1..] {
        wait_connected(n, nodes[0].id());
    }
    // A probe from the last node that reaches everyone shows the network is whole.
    let last = nodes.len() - 1;
    nodes[last].send(&["probe"]).unwrap();
    for n in &nodes[..last] {
        assert_eq!(recv_text(n).2, "probe");
    }
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..20 {
            n.send(&[format!("{i}:{j}")]).unwrap();
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let mut got = HashSet::new();
        for _ in 0..9 * 20 {
            let (_, _, text) = recv_text(n);
            assert!(got.insert(text.clone()), "node {i} got {text} twice");
            assert!(
                !text.starts_with(&format!("{i}:")),
                "node {i} got its own message"
            );
        }
    }
    // The last round of a marker: no duplicate can be still in flight behind it on a link.
    nodes[0].send(&["end"]).unwrap();
    for n in &nodes[1..] {
        assert_eq!(recv_text(n).2, "end");
        assert!(n.try_recv().is_none());
    }
    let duplicates: u64 = nodes.iter().map(|n| n.status().unwrap().duplicates).sum();
    assert!(nodes.iter().all(|n| n.status().unwrap().received
        == 9 * 20 + 2
            - u64::from(n.id() == nodes[0].id())
            - u64::from(n.id() == nodes[last].id())));
    // Duplicates dropped by the waterfall are normal in a mesh with cycles; users never see them.
    println!("waterfall dropped {duplicates} duplicate frames");
}

#[test]
fn another_subnet_is_refused() {
    let a = node();
    let other = MeshSocket::bind(builder().subnet("other").build()).unwrap();
    // connect waits for the handshake and names the mismatch.
    match other.connect(a.local_addr()) {
        Err(Error::Connect {
            error: ConnectError::ProtocolMismatch { theirs },
            ..
        }) => assert_eq!(theirs, a.protocol_id()),
        other => panic!("expected a protocol mismatch, got {other:?}"),
    }
    assert!(other
        .status()
        .unwrap()
        .errors
        .iter()
        .any(|e| e.contains("another protocol")));
    wait_status(&a, "refusal", |s| {
        s.refused_subnet == 1 && s.connections == 0
    });
    wait_status(&other, "refusal", |s| s.connections == 0);
    assert!(a.peers().unwrap().is_empty() && other.peers().unwrap().is_empty());
    // a still serves its own network.
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
}

#[test]
fn simultaneous_dials_keep_one_connection() {
    let a = node();
    let b = node();
    a.connect(b.local_addr()).unwrap();
    b.connect(a.local_addr()).unwrap();
    // Each end's first event: the other is connected (events are kept, to be checked below).
    let mut events: Vec<Vec<PeerEvent>> = Vec::new();
    for s in [&a, &b] {
        let first = s.next_event(WAIT).expect("a peer event");
        assert!(matches!(first, PeerEvent::Connected { .. }), "{first:?}");
        events.push(vec![first]);
    }
    // Both ends settle on the same single connection.
    wait_status(&a, "one connection", |s| s.connections == 1);
    wait_status(&b, "one connection", |s| s.connections == 1);
    let pa = a.peers().unwrap();
    let pb = b.peers().unwrap();
    assert_eq!((pa.len(), pb.len()), (1, 1));
    assert_ne!(
        pa[0].outgoing, pb[0].outgoing,
        "the kept connection is outgoing on one end only"
    );
    a.send(&["still talking"]).unwrap();
    assert_eq!(recv_text(&b).2, "still talking");
    // Each end reported the other once, as connected, and never as gone: the connection
    // not kept is closed after a grace, by then both ends know which one they kept.
    for (s, mut seen) in [&a, &b].into_iter().zip(events) {
        seen.extend(std::iter::from_fn(|| s.next_event(Duration::ZERO)));
        assert!(
            matches!(seen.as_slice(), [PeerEvent::Connected { .. }]),
            "{seen:?}"
        );
    }
}

#[test]
fn a_lost_peer_is_survived() {
    let a = node();
    let b = node();
    let c = node();
    b.connect(a.local_addr()).unwrap();
    c.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    wait_connected(&a, c.id());
    let b_id = b.id().to_owned();
    drop(b);
    let deadline = Instant::now() + WAIT;
    loop {
        match a.next_event(deadline.saturating_duration_since(Instant::now())) {
            Some(PeerEvent::Disconnected { id }) if id == b_id => break,
            Some(_) => {}
            None => panic!("no disconnect event for b"),
        }
    }
    c.send(&["after the loss"]).unwrap();
    assert_eq!(recv_text(&a).2, "after the loss");
    a.send(&["reply"]).unwrap();
    assert_eq!(recv_text(&c).2, "reply");
}

#[test]
fn handlers_consume_and_panicking_handlers_do_not_kill_the_node() {
    let a = node();
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    a.register_handler(move |m, conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        match m.packets().first() {
            Some(b"boom") => panic!("handler bug"),
            Some(b"ping") => {
                conn.reply(&["pong"]).unwrap();
                true
            }
            _ => false,
        }
    })
    .unwrap();
    b.send(&["boom"]).unwrap();
    b.send(&["ping"]).unwrap();
    b.send(&["plain"]).unwrap();
    // The panicking message still reaches recv (the handler did not consume it); ping did.
    assert_eq!(recv_text(&a).2, "boom");
    assert_eq!(recv_text(&a).2, "plain");
    assert_eq!(
        recv_text(&b),
        (MessageKind::Whisper, a.id().to_owned(), "pong".into())
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let status = a.status().unwrap();
    assert_eq!(status.handler_panics, 1);
    // py2p's status lists the exceptions the node met: the panic is one.
    assert!(
        status.errors.iter().any(|e| e.contains("handler panicked")),
        "{:?}",
        status.errors
    );
}

#[test]
fn a_full_inbox_slows_the_sender_and_loses_nothing() {
    let a = MeshSocket::bind(builder().inbox_capacity(8).build()).unwrap();
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    let sender = std::thread::spawn(move || {
        for i in 0..20_000u32 {
            b.send(&[i.to_be_bytes()]).unwrap();
        }
        b
    });
    // Nobody reads for a while: the inbox stays bounded.
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        assert!(
            a.status().unwrap().inbox <= 8 + 512,
            "inbox grew past its bound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..20_000u32 {
        let m = a.recv_timeout(WAIT).expect("no message lost");
        assert_eq!(m.packets()[0], i.to_be_bytes());
    }
    drop(sender.join().unwrap());
}

#[test]
fn big_messages_fill_the_inbox_by_bytes_and_lose_nothing() {
    // 1 MiB of inbox: four 256 KiB messages; b sends forty.
    let a = MeshSocket::bind(builder().inbox_max_bytes(1 << 20).build()).unwrap();
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    let sender = std::thread::spawn(move || {
        for i in 0..40u8 {
            b.send(&[vec![i; 256 << 10]]).unwrap();
        }
        b
    });
    wait_status(&a, "the inbox fills", |s| s.inbox >= 4);
    // Nobody reads for a while: the node stops reading instead of holding 10 MiB.
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        let held = a.status().unwrap().inbox;
        assert!(held <= 6, "{held} messages of 256 KiB held");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..40u8 {
        let m = a.recv_timeout(WAIT).expect("no message lost");
        assert_eq!(m.packets()[0], vec![i; 256 << 10]);
    }
    drop(sender.join().unwrap());
}

#[test]
fn iterators_and_close() {
    let a = node();
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    for i in 0..3 {
        b.send(&[format!("{i}")]).unwrap();
    }
    let got: Vec<String> = a
        .messages()
        .take(3)
        .map(|m| String::from_utf8_lossy(&m.packets()[0]).into_owned())
        .collect();
    assert_eq!(got, ["0", "1", "2"]);
    a.close();
    assert!(a.is_closed());
    assert!(a.recv().is_none(), "recv ends once closed");
    assert!(a.send(&["x"]).is_err());
}

#[test]
fn a_peer_advertised_by_host_name_is_looked_up_and_dialled() {
    // c advertises itself as "localhost", not an address: a peer learning of it from a
    // peers list has to look the name up (on the resolver's thread) before dialling.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = MeshSocket::bind(
        MeshConfig::builder()
            .bind(format!("127.0.0.1:{port}").parse().unwrap())
            .out_addr("localhost", port)
            .build(),
    )
    .unwrap();
    let a = node();
    let b = node();
    c.connect(a.local_addr()).unwrap();
    wait_connected(&a, c.id());
    // b hears of c only through a's peers list.
    b.connect(a.local_addr()).unwrap();
    wait_connected(&b, c.id());
    let to_c = b
        .peers()
        .unwrap()
        .into_iter()
        .find(|p| p.id == c.id())
        .unwrap();
    assert!(to_c.outgoing, "b dialled c");
    b.send(&["via the name"]).unwrap();
    assert_eq!(recv_text(&c).2, "via the name");
}

#[test]
fn lost_peers_remembered_for_redialling_are_capped() {
    let hub = MeshSocket::bind(builder().max_lost_peers(3).build()).unwrap();
    let mut leaves: Vec<MeshSocket> = (0..6).map(|_| node()).collect();
    for leaf in &leaves {
        leaf.connect(hub.local_addr()).unwrap();
        wait_connected(&hub, leaf.id());
    }
    // Every leaf goes away without the hub's doing: each is a lost peer to redial.
    leaves.clear();
    let st = wait_status(&hub, "all leaves gone", |s| s.peers == 0);
    assert_eq!(st.lost_peers, 3, "{st:?}");
}

#[test]
fn half_open_connections_make_room_for_an_honest_peer() {
    let a = MeshSocket::bind(builder().max_connections(8).build()).unwrap();
    // Eight connections that never say a word hold every slot.
    let silent: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(a.local_addr()).unwrap())
        .collect();
    wait_status(&a, "eight half-open connections", |s| {
        s.connections == 8 && s.awaiting_handshake == 8
    });
    // An honest peer still gets in: the oldest silent one gives way.
    let b = node();
    b.connect(a.local_addr()).unwrap();
    wait_connected(&a, b.id());
    b.send(&["made it"]).unwrap();
    assert_eq!(recv_text(&a).2, "made it");
    let st = a.status().unwrap();
    assert_eq!((st.connections, st.awaiting_handshake), (8, 7), "{st:?}");
    drop(silent);
}
