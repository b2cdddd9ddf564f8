//! The user API as a py2p program reaches for it: every method called from a handler, an
//! honest `connect`, custom sub-flags, handlers with their connection, batch reads and batch sends, sizes
//! refused at the sender, and the error list of `status`.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use py2p::{
    ConnectError, Error, MeshConfig, MeshConfigBuilder, MeshSocket, Message, MessageKind,
    PeerEvent, SyncSocket,
};

const WAIT: Duration = Duration::from_secs(30);

fn builder() -> MeshConfigBuilder {
    MeshConfig::builder().bind("127.0.0.1:0".parse().unwrap())
}

fn node() -> MeshSocket {
    MeshSocket::bind(builder().build()).unwrap()
}

/// A pair of connected nodes, each with the other in its routing table.
fn pair() -> (MeshSocket, MeshSocket) {
    let a = node();
    let b = node();
    assert_eq!(b.connect(a.local_addr()).unwrap(), a.id());
    a.wait_for_peers(1, WAIT).unwrap();
    (a, b)
}

/// A port that nothing listens on: bound, then released.
fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[test]
fn connect_to_a_closed_port_fails_at_once_with_the_reason() {
    let a = node();
    let started = Instant::now();
    let err = a.connect(closed_port()).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            Error::Connect {
                error: ConnectError::Refused,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(err.to_string().contains("refused"), "{err}");
    // The non-waiting variant reports the same as a peer event.
    let addr = closed_port();
    a.connect_nonblocking(addr).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match a.next_event(deadline.saturating_duration_since(Instant::now())) {
            Some(PeerEvent::ConnectFailed { addr: at, error }) => {
                assert_eq!((at, error), (addr, ConnectError::Refused));
                break;
            }
            Some(_) => {}
            None => panic!("no ConnectFailed event"),
        }
    }
    assert_eq!(a.status().unwrap().errors_total, 2);
}

#[test]
fn connect_waits_for_the_handshake_and_connect_with_id_skips_known_peers() {
    let (a, b) = pair();
    // The peer is in the routing table as soon as connect returns.
    assert!(b.peers().unwrap().iter().any(|p| p.id == a.id()));
    // py2p's connect(addr, port, id): a known id is not dialled again.
    let before = b.status().unwrap().connections;
    assert_eq!(b.connect_with_id(a.local_addr(), a.id()).unwrap(), a.id());
    assert_eq!(b.status().unwrap().connections, before);
    // Its own address is refused.
    assert!(matches!(
        b.connect(b.local_addr()),
        Err(Error::Connect {
            error: ConnectError::SelfConnection,
            ..
        })
    ));
    // Host names are looked up.
    let c = node();
    let port = c.local_addr().port();
    assert_eq!(
        c.connect(("localhost", a.local_addr().port())).unwrap(),
        a.id()
    );
    assert!(port > 0);
}

#[test]
fn custom_sub_flags_reach_handlers_and_recv_with_their_flag() {
    let (a, b) = pair();
    const PING: u8 = 0x20;
    const PONG: u8 = 0x21;
    // b answers PING requests on the connection they came on, with its own sub-flag.
    b.register_handler(|msg, conn| {
        if msg.sub_flag() == Some(PING) {
            let mut answer = b"pong:".to_vec();
            answer.extend_from_slice(&msg.packets()[0]);
            conn.send(MessageKind::Whisper, PONG, &[answer]).unwrap();
            return true;
        }
        false
    })
    .unwrap();
    a.whisper_with(b.id(), PING, &["1"]).unwrap();
    let m = a.recv_timeout(WAIT).expect("an answer");
    assert_eq!(m.sub_flag(), Some(PONG));
    assert_eq!(m.kind(), MessageKind::Whisper);
    assert_eq!(m.packets(), [b"pong:1".to_vec()]);
    assert_eq!(m.payload()[0], [PONG]);
    // A broadcast with a custom sub-flag, unhandled, reaches recv with it.
    a.send_with(MessageKind::Broadcast, 0x42, &["news"])
        .unwrap();
    let m = b.recv_timeout(WAIT).expect("the broadcast");
    assert_eq!(
        (m.kind(), m.sub_flag(), m.packets().to_vec()),
        (MessageKind::Broadcast, Some(0x42), vec![b"news".to_vec()])
    );
    // The protocol's own sub-flags are refused.
    assert!(matches!(
        a.send_with(MessageKind::Broadcast, 0x05, &["x"]),
        Err(Error::ReservedSubFlag(5))
    ));
}

#[test]
fn handlers_see_the_connection_a_message_came_on() {
    let (a, b) = pair();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    a.register_handler(move |msg: &Message, conn| {
        let _ = tx.lock().unwrap().send((
            msg.sender(),
            conn.peer_id().map(str::to_owned),
            conn.addr(),
            conn.outgoing(),
        ));
        true
    })
    .unwrap();
    b.send(&["hi"]).unwrap();
    let (sender, peer, addr, outgoing) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(sender, b.id());
    assert_eq!(peer.as_deref(), Some(b.id()));
    assert!(addr.ip().is_loopback());
    assert!(!outgoing, "b dialled a");
}

#[test]
fn recv_many_takes_what_waits() {
    let (a, b) = pair();
    assert!(a.try_recv_many(10).is_empty());
    for i in 0..5 {
        b.send(&[format!("m{i}")]).unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 5 && Instant::now() < deadline {
        let batch = a.recv_many(3, WAIT);
        assert!(!batch.is_empty() && batch.len() <= 3, "{}", batch.len());
        got.extend(batch);
    }
    let texts: Vec<&[u8]> = got.iter().map(|m| m.packets().first().unwrap()).collect();
    assert_eq!(texts, [b"m0", b"m1", b"m2", b"m3", b"m4"]);
}

#[test]
fn request_peers_finds_the_rest_of_the_network() {
    let (a, b) = pair();
    // c knows only a; a learns of b's peers only by asking, but b is a's already.
    let c = MeshSocket::bind(builder().max_outgoing(4).build()).unwrap();
    c.connect(a.local_addr()).unwrap();
    c.request_peers().unwrap();
    let peers = c.wait_for_peers(2, WAIT).unwrap();
    assert!(peers.iter().any(|p| p.id == b.id()), "{peers:?}");
}

#[test]
fn a_message_over_the_limits_is_refused_by_send() {
    let (a, b) = pair();
    let big = vec![b'x'; 17 << 20];
    match a.send(&[&big]) {
        Err(Error::TooLarge { what, size, limit }) => {
            assert_eq!(limit, 16 << 20);
            assert!(size > 17 << 20);
            assert!(what.starts_with("max_"), "{what}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let e = a.whisper(b.id(), &[&big]).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    let too_many: Vec<&[u8]> = vec![b"".as_slice(); 1 << 16];
    assert!(matches!(
        a.send(&too_many),
        Err(Error::TooLarge {
            what: "packets",
            ..
        })
    ));
    // Nothing was sent, and a message within the limits goes through.
    a.send(&["small"]).unwrap();
    assert_eq!(b.recv_timeout(WAIT).unwrap().packets(), [b"small".to_vec()]);
}

/// Every public method of a mesh socket, called from a handler on the event-loop thread:
/// none freezes the node, and each either works or says at once that it cannot wait.
#[test]
fn every_method_is_safe_from_a_handler() {
    let (a, b) = pair();
    let a = Arc::new(a);
    let me: Arc<OnceLock<Arc<MeshSocket>>> = Arc::new(OnceLock::new());
    let _ = me.set(a.clone());
    let (tx, rx) = mpsc::channel::<Vec<String>>();
    let tx = Mutex::new(tx);
    let b_id = b.id().to_owned();
    let b_addr = b.local_addr();
    let handle = me.clone();
    a.register_handler(move |msg, _conn| {
        if msg.packets().first() != Some(b"go") {
            return false;
        }
        let Some(s) = handle.get() else { return true };
        let mut log = Vec::new();
        let mut note = |name: &str, ok: bool| log.push(format!("{name}:{ok}"));
        note("id", !s.id().is_empty());
        note("protocol_id", !s.protocol_id().is_empty());
        note("local_addr", s.local_addr().port() > 0);
        note("out_addr", s.out_addr().1 > 0);
        note("peers", s.peers().is_ok_and(|p| p.len() == 1));
        note("status", s.status().is_ok_and(|st| st.peers == 1));
        note(
            "wait_for_peers(1)",
            s.wait_for_peers(1, Duration::from_secs(60)).is_ok(),
        );
        note(
            "wait_for_peers(5)",
            matches!(
                s.wait_for_peers(5, Duration::from_secs(60)),
                Err(Error::OnLoopThread(_))
            ),
        );
        note("try_recv", s.try_recv().is_none());
        note("recv", s.recv().is_none());
        note(
            "recv_timeout",
            s.recv_timeout(Duration::from_secs(60)).is_none(),
        );
        note(
            "recv_many",
            s.recv_many(4, Duration::from_secs(60)).is_empty(),
        );
        note("try_recv_many", s.try_recv_many(4).is_empty());
        note("messages", s.messages().next().is_none());
        note("next_event", {
            while s.next_event(Duration::from_secs(60)).is_some() {}
            true
        });
        note("events", s.events().next().is_none());
        note("send", s.send(&["from a handler"]).is_ok());
        note(
            "send_with",
            s.send_with(MessageKind::Whisper, 0x30, &["direct"]).is_ok(),
        );
        note("whisper", s.whisper(&b_id, &["w"]).is_ok());
        note("whisper_with", s.whisper_with(&b_id, 0x31, &["w"]).is_ok());
        note("reply", s.reply(msg, &["r"]).is_ok());
        note(
            "connect",
            matches!(s.connect(b_addr), Err(Error::OnLoopThread("connect"))),
        );
        note(
            "connect_with_id",
            matches!(
                s.connect_with_id(b_addr, &b_id),
                Err(Error::OnLoopThread(_))
            ),
        );
        note("connect_nonblocking", s.connect_nonblocking(b_addr).is_ok());
        note("request_peers", s.request_peers().is_ok());
        note("register_handler", s.register_handler(|_, _| false).is_ok());
        note("disconnect(unknown)", s.disconnect("nobody").is_ok());
        note("is_closed", !s.is_closed());
        let _ = tx.lock().unwrap().send(log);
        true
    })
    .unwrap();
    b.send(&["go"]).unwrap();
    let log = rx.recv_timeout(WAIT).expect("the handler ran to its end");
    let failed: Vec<&String> = log.iter().filter(|l| l.ends_with(":false")).collect();
    assert!(failed.is_empty(), "{failed:?} of {log:?}");
    // What the handler queued went out: b hears every kind of message.
    let mut heard = Vec::new();
    while heard.len() < 5 {
        let m = b.recv_timeout(WAIT).expect("a message from a's handler");
        heard.push(String::from_utf8_lossy(&m.packets()[0]).into_owned());
    }
    heard.sort();
    assert_eq!(heard, ["direct", "from a handler", "r", "w", "w"]);
    // close from a handler stops the node without a deadlock.
    let closer = me.clone();
    a.register_handler(move |_, _| {
        if let Some(s) = closer.get() {
            s.close();
        }
        true
    })
    .unwrap();
    b.send(&["stop now"]).unwrap();
    let deadline = Instant::now() + WAIT;
    while !a.is_closed() {
        assert!(
            Instant::now() < deadline,
            "close from a handler did not stop the node"
        );
        let _ = b.next_event(Duration::from_millis(50));
    }
}

/// `status()` from another thread answers while a handler holds the loop.
#[test]
fn status_answers_while_a_handler_runs() {
    let (a, b) = pair();
    let inside = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let (i2, r2) = (inside.clone(), release.clone());
    a.register_handler(move |_, _| {
        i2.wait();
        r2.wait();
        true
    })
    .unwrap();
    b.send(&["hold"]).unwrap();
    inside.wait();
    // The loop is inside the handler now.
    let started = Instant::now();
    let st = a.status();
    let took = started.elapsed();
    let peers = a.peers();
    // Released before any assertion: a failing one must not leave the loop held for good.
    release.wait();
    assert_eq!(st.unwrap().peers, 1);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(peers.unwrap().len(), 1);
}

/// Sync writes from a handler are checked at once and applied when it returns.
#[test]
fn sync_writes_from_a_handler() {
    let config = || {
        SyncSocket::config()
            .bind("127.0.0.1:0".parse().unwrap())
            .build()
    };
    let a = Arc::new(SyncSocket::bind(config(), true).unwrap());
    let b = SyncSocket::bind(config(), true).unwrap();
    b.connect(a.local_addr()).unwrap();
    a.wait_for_peers(1, WAIT).unwrap();
    a.set("old", "1").unwrap();
    let me: Arc<OnceLock<Arc<SyncSocket>>> = Arc::new(OnceLock::new());
    let _ = me.set(a.clone());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handle = me.clone();
    a.register_handler(move |_, _| {
        let Some(s) = handle.get() else { return true };
        let results = (
            s.set("k", "v").is_ok(),
            s.update([("u", "1")]).is_ok(),
            s.pop("old").ok(),
            matches!(s.delete("missing"), Err(Error::NoSuchKey(_))),
            {
                // Does not wait on the loop thread: drains what is there and returns.
                let started = Instant::now();
                while s.next_change(Duration::from_secs(60)).is_some() {}
                started.elapsed() < Duration::from_secs(30)
            },
        );
        let _ = tx.lock().unwrap().send(results);
        true
    })
    .unwrap();
    b.send(&["go"]).unwrap();
    let (set, update, popped, missing, no_wait) = rx.recv_timeout(WAIT).unwrap();
    assert!(set && update && missing && no_wait);
    assert_eq!(popped, Some(b"1".to_vec()));
    let deadline = Instant::now() + WAIT;
    while b.get("k").is_none() || b.get("u").is_none() || b.get("old").is_some() {
        assert!(
            Instant::now() < deadline,
            "the handler's writes never arrived"
        );
        let _ = b.next_change(Duration::from_millis(100));
    }
    a.close();
}

// send_many: a batch of broadcasts arrives whole, once and in order, in line with single
// sends around it; a message over the limits refuses the batch before any of it is sent.

/// The text of each of `n` messages `b` receives.
fn texts(b: &MeshSocket, n: usize) -> Vec<Vec<Vec<u8>>> {
    (0..n)
        .map(|_| b.recv_timeout(WAIT).expect("a message").packets().to_vec())
        .collect()
}

#[test]
fn a_batch_arrives_once_in_order_between_single_sends() {
    let (a, b) = pair();
    a.send(&["before"]).unwrap();
    let batch: Vec<Vec<Vec<u8>>> = (0..2_000)
        .map(|i| vec![format!("m{i}").into_bytes(), b"second packet".to_vec()])
        .collect();
    a.send_many(batch.clone()).unwrap();
    a.send_many(Vec::new()).unwrap();
    a.send(&["after"]).unwrap();
    let got = texts(&b, 2_002);
    assert_eq!(got[0], [b"before".to_vec()]);
    assert_eq!(&got[1..2_001], &batch[..]);
    assert_eq!(got[2_001], [b"after".to_vec()]);
    // Exactly once: the next message is the marker sent now.
    a.send(&["end"]).unwrap();
    assert_eq!(b.recv_timeout(WAIT).unwrap().packets(), [b"end".to_vec()]);
}

#[test]
fn a_message_over_the_limits_refuses_the_whole_batch() {
    let (a, b) = pair();
    let batch = vec![
        vec![b"first".to_vec()],
        vec![vec![b'x'; 17 << 20]],
        vec![b"third".to_vec()],
    ];
    assert!(matches!(
        a.send_many(batch),
        Err(Error::TooLarge { limit, .. }) if limit == 16 << 20
    ));
    // Nothing of it was sent: the next message b sees is this one.
    a.send(&["small"]).unwrap();
    assert_eq!(b.recv_timeout(WAIT).unwrap().packets(), [b"small".to_vec()]);
}

// send_many_packed: one-packet broadcasts end to end in one buffer arrive as send_many's
// would; ends out of order or past the buffer refuse the batch before any of it is sent.

#[test]
fn a_packed_batch_arrives_once_in_order_as_its_packets() {
    let (a, b) = pair();
    let mut block = Vec::new();
    let mut ends = Vec::new();
    for i in 0..2_000 {
        block.extend_from_slice(format!("m{i}").as_bytes());
        ends.push(block.len());
    }
    // An empty packet is a message too.
    ends.push(block.len());
    a.send(&["before"]).unwrap();
    a.send_many_packed(block.clone(), ends.clone()).unwrap();
    a.send_many_packed(Vec::new(), Vec::new()).unwrap();
    a.send(&["after"]).unwrap();
    let got = texts(&b, 2_003);
    assert_eq!(got[0], [b"before".to_vec()]);
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        assert_eq!(got[1 + i], [block[start..end].to_vec()], "message {i}");
        start = end;
    }
    assert_eq!(got[2_002], [b"after".to_vec()]);
    a.send(&["end"]).unwrap();
    assert_eq!(b.recv_timeout(WAIT).unwrap().packets(), [b"end".to_vec()]);
}

#[test]
fn bad_ends_or_a_message_over_the_limits_refuse_the_whole_packed_batch() {
    let (a, b) = pair();
    for ends in [vec![3, 2], vec![2, 6]] {
        assert!(matches!(
            a.send_many_packed(b"abcde".to_vec(), ends),
            Err(Error::InvalidInput(_))
        ));
    }
    let mut block = b"first".to_vec();
    block.resize(5 + (17 << 20), b'x');
    assert!(matches!(
        a.send_many_packed(block, vec![5, 5 + (17 << 20)]),
        Err(Error::TooLarge { limit, .. }) if limit == 16 << 20
    ));
    // Nothing of them was sent: the next message b sees is this one.
    a.send(&["small"]).unwrap();
    assert_eq!(b.recv_timeout(WAIT).unwrap().packets(), [b"small".to_vec()]);
}
