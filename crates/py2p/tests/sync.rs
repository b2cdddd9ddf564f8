//! Sync tables of Rust nodes: convergence, leases, deletes, joiners, a node that leaves and
//! comes back.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use py2p::{Error, MeshConfig, SyncEvent, SyncSocket};

const WAIT: Duration = Duration::from_secs(20);

fn table(leasing: bool) -> SyncSocket {
    SyncSocket::bind(
        SyncSocket::config()
            .bind("127.0.0.1:0".parse().unwrap())
            .build(),
        leasing,
    )
    .unwrap()
}

/// Waits until `key` has `value` (`None`: absent) on `s`, by its change events.
fn wait_value(s: &SyncSocket, key: &str, value: Option<&str>) {
    let deadline = Instant::now() + WAIT;
    while s.get(key).as_deref() != value.map(str::as_bytes) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{key} never became {value:?} on {} (is {:?})",
            s.id(),
            s.get(key)
        );
        let _ = s.next_change(left.min(Duration::from_millis(100)));
    }
}

/// Waits until the Unix time is past `t`: py2p's times are whole seconds, so some rules can
/// only be seen from one second to the next (a clock has no event to wait on).
fn wait_next_second(t: u64) {
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= t
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn join(a: &SyncSocket, b: &SyncSocket) {
    b.connect(a.local_addr()).unwrap();
    b.wait_for_peers(1, WAIT).unwrap();
    a.wait_for_peers(1, WAIT).unwrap();
}

#[test]
fn two_nodes_set_delete_and_events() {
    let a = table(true);
    let b = table(true);
    assert_eq!(
        a.protocol_id(),
        py2p::Protocol::new("sync1", py2p::Encryption::Plaintext).id()
    );
    join(&a, &b);
    a.set("k", "v1").unwrap();
    wait_value(&b, "k", Some("v1"));
    let e = b.entry("k").unwrap();
    assert_eq!((e.value.as_slice(), e.owner.as_str()), (&b"v1"[..], a.id()));
    // The owner may change its own key; the other node may not.
    a.set("k", "v2").unwrap();
    wait_value(&b, "k", Some("v2"));
    // Within the same second py2p's tie-break (the smaller owner id wins) applies; the lease
    // proper is tested from the next second on.
    wait_next_second(b.entry("k").unwrap().time);
    match b.set("k", "mine") {
        Err(Error::Leased { owner, until, .. }) => {
            assert_eq!(owner, a.id());
            assert!(until >= e.time + py2p::LEASE_SECS);
        }
        other => panic!("expected a lease error, got {other:?}"),
    }
    assert_eq!(b.get("k").unwrap(), b"v2");
    a.delete("k").unwrap();
    wait_value(&b, "k", None);
    // Events on b, in order: stored v1, stored v2, deleted.
    let mut events = Vec::new();
    while let Some(e) = b.next_change(Duration::ZERO) {
        events.push(e);
    }
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, SyncEvent::Stored { key, .. } if key != b"k"))
        .map(|e| match e {
            SyncEvent::Stored { value, .. } => String::from_utf8_lossy(value).into_owned(),
            SyncEvent::Deleted { .. } => "deleted".into(),
        })
        .collect();
    // wait_value consumed some events; whatever remains is a suffix of this sequence.
    let all = ["v1", "v2", "deleted"];
    assert!(
        all.ends_with(&kinds.iter().map(String::as_str).collect::<Vec<_>>()),
        "{kinds:?}"
    );
    // The map API.
    a.update([("x", "1"), ("y", "2")]).unwrap();
    wait_value(&b, "y", Some("2"));
    wait_value(&b, "x", Some("1"));
    let mut keys = b.keys();
    keys.sort();
    assert_eq!(keys, [b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(b.len(), 2);
    assert!(b.contains("x") && !b.contains("k"));
    assert_eq!(b.snapshot().get(b"y".as_slice()), Some(&b"2".to_vec()));
    assert_eq!(a.pop("x").unwrap(), b"1".to_vec());
    wait_value(&b, "x", None);
    // As py2p's KeyError: popping or deleting a key that holds nothing is an error, and
    // `pop_or` is `pop(key, default)`.
    assert!(matches!(a.pop("x"), Err(Error::NoSuchKey(k)) if k == b"x"));
    assert!(matches!(a.delete("never"), Err(Error::NoSuchKey(_))));
    assert_eq!(a.pop_or("x", b"dflt".to_vec()).unwrap(), b"dflt");
}

#[test]
fn five_nodes_converge_and_a_joiner_gets_every_key() {
    let nodes: Vec<SyncSocket> = (0..5).map(|_| table(true)).collect();
    for n in &nodes[1..] {
        n.connect(nodes[0].local_addr()).unwrap();
        n.wait_for_peers(1, WAIT).unwrap();
    }
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..10 {
            n.set(format!("{i}/{j}"), format!("value {i} {j}")).unwrap();
        }
    }
    for n in &nodes {
        for i in 0..5 {
            for j in 0..10 {
                wait_value(n, &format!("{i}/{j}"), Some(&format!("value {i} {j}")));
            }
        }
        assert_eq!(n.len(), 50);
    }
    // A node joining later receives every key with its owner and time.
    let late = table(true);
    late.connect(nodes[3].local_addr()).unwrap();
    for i in 0..5 {
        for j in 0..10 {
            wait_value(&late, &format!("{i}/{j}"), Some(&format!("value {i} {j}")));
        }
    }
    let e = late.entry("2/5").unwrap();
    assert_eq!(e.owner, nodes[2].id());
    assert_eq!(e, nodes[0].entry("2/5").unwrap());
}

#[test]
fn a_node_that_leaves_and_comes_back_catches_up() {
    let a = table(true);
    let b = table(true);
    join(&a, &b);
    a.set("before", "1").unwrap();
    wait_value(&b, "before", Some("1"));
    drop(b);
    a.set("while away", "2").unwrap();
    a.delete("before").unwrap();
    let b = table(true);
    join(&a, &b);
    wait_value(&b, "while away", Some("2"));
    assert!(!b.contains("before"));
}

#[test]
fn without_leases_a_newer_write_wins() {
    let a = table(false);
    let b = table(false);
    assert_eq!(
        a.protocol_id(),
        py2p::Protocol::new("sync0", py2p::Encryption::Plaintext).id()
    );
    join(&a, &b);
    a.set("k", "a's").unwrap();
    wait_value(&b, "k", Some("a's"));
    // A strictly newer time wins without a lease (times are whole seconds).
    wait_next_second(a.entry("k").unwrap().time);
    b.set("k", "b's").unwrap();
    wait_value(&a, "k", Some("b's"));
    assert_eq!(a.entry("k").unwrap().owner, b.id());
}

#[test]
fn leasing_and_non_leasing_tables_never_mix() {
    let leased = table(true);
    let free = SyncSocket::bind(
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .subnet("sync")
            .build(),
        false,
    )
    .unwrap();
    // connect names the mismatch of protocols (sync0 against sync1).
    assert!(matches!(
        free.connect(leased.local_addr()),
        Err(Error::Connect {
            error: py2p::ConnectError::ProtocolMismatch { .. },
            ..
        })
    ));
    // Another leasing node joins fine, while the non-leasing one stays out.
    let other = table(true);
    join(&leased, &other);
    let deadline = Instant::now() + WAIT;
    while leased.status().unwrap().refused_subnet == 0 {
        assert!(
            Instant::now() < deadline,
            "the non-leasing node was never refused"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(leased.peers().unwrap().iter().all(|p| p.id != free.id()));
    assert!(free.peers().unwrap().is_empty());
}

#[test]
fn a_full_table_refuses_stores_and_keeps_serving() {
    // a holds about 20 KiB; b (default limits) writes 100 keys of 1 KiB.
    let small = SyncSocket::bind(
        SyncSocket::config()
            .bind("127.0.0.1:0".parse().unwrap())
            .max_table_bytes(20 * 1024)
            .build(),
        true,
    )
    .unwrap();
    let b = table(true);
    join(&small, &b);
    let value = "v".repeat(1024);
    for i in 0..100 {
        b.set(format!("key{i:03}"), &value).unwrap();
    }
    // Messages from one peer arrive in order: once the marker is in, every store was seen.
    b.set("marker", "m").unwrap();
    wait_value(&small, "marker", Some("m"));
    assert_eq!(b.len(), 101);
    let held = small.len();
    assert!((10..25).contains(&held), "holds {held} keys");
    // The user is told, not ignored.
    match small.set("mine", value.as_str()) {
        Err(Error::TableFull { used, max, .. }) => {
            assert!(used <= max && max == 20 * 1024, "{used} of {max}")
        }
        other => panic!("{other:?}"),
    }
    // Deletes make room again.
    for i in 0..100 {
        let key = format!("key{i:03}");
        if small.get(&key).is_some() {
            b.set(key, "").unwrap();
        }
    }
    b.set("marker", "n").unwrap();
    wait_value(&small, "marker", Some("n"));
    small.set("mine", value.as_str()).unwrap();
}
