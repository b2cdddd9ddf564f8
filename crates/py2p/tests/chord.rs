//! Chord nodes over real sockets on 127.0.0.1: sets and gets across a ring, deletes,
//! a lone node, leeching nodes, hand-over on join and unjoin, a holder that dies.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use py2p::chord::{hashes, responsible};
use py2p::{ChordConfig, ChordSocket};

const T: Duration = Duration::from_secs(30);

fn node() -> ChordSocket {
    let config = ChordSocket::config()
        .bind("127.0.0.1:0".parse().unwrap())
        .max_outgoing(16)
        .build();
    ChordSocket::bind(config, ChordConfig::default()).unwrap()
}

/// Gets `key` at `node` until it reads `want`: sets and deletes are not acknowledged (as in
/// py2p), so a node may read the old value until the stores in flight land.
#[track_caller]
fn reads(node: &ChordSocket, key: &str, want: Option<&str>) {
    let want = want.map(|w| w.as_bytes().to_vec());
    let deadline = std::time::Instant::now() + T;
    loop {
        let got = node.get(key, T).unwrap();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key}: read {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` nodes, each dialling the first, all joined, each knowing every other as joined.
fn ring(n: usize) -> Vec<ChordSocket> {
    let nodes: Vec<ChordSocket> = (0..n).map(|_| node()).collect();
    for b in nodes.iter().skip(1) {
        b.connect(nodes[0].local_addr()).unwrap();
    }
    for a in &nodes {
        a.wait_for_peers(n - 1, T).unwrap();
    }
    for a in &nodes {
        a.join().unwrap();
    }
    for a in &nodes {
        a.wait_for_ring(n - 1, T).unwrap();
    }
    nodes
}

#[test]
fn a_ring_reads_what_any_node_sets_and_deletes_everywhere() {
    let nodes = ring(4);
    for (i, a) in nodes.iter().enumerate() {
        a.set(format!("key {i}"), format!("value {i}")).unwrap();
    }
    for b in &nodes {
        for i in 0..nodes.len() {
            reads(b, &format!("key {i}"), Some(&format!("value {i}")));
        }
    }
    // The slots are spread: every node holds some of the 20.
    let held: usize = nodes.iter().map(|a| a.info().unwrap().slots).sum();
    assert_eq!(held, 20);
    // A missing key is None, not an empty value.
    assert_eq!(nodes[1].get("never set", T).unwrap(), None);
    // Delete: gone everywhere, and keys() shrinks (after the notify reaches each node).
    assert!(nodes[2].delete("key 0").unwrap());
    for b in &nodes {
        reads(b, "key 0", None);
    }
    // The five deletes land (some may still be on their way when the gets decide).
    let deadline = std::time::Instant::now() + T;
    while nodes.iter().map(|a| a.info().unwrap().slots).sum::<usize>() != 15 {
        assert!(std::time::Instant::now() < deadline, "slots not deleted");
        std::thread::sleep(Duration::from_millis(20));
    }
    for b in &nodes {
        let deadline = std::time::Instant::now() + T;
        while b.keys().unwrap().contains(&b"key 0".to_vec()) {
            assert!(std::time::Instant::now() < deadline, "keys() never shrank");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(b.keys().unwrap().len(), 3);
    }
    // Every link is still up.
    for a in &nodes {
        assert_eq!(a.peers().unwrap().len(), nodes.len() - 1);
    }
}

#[test]
fn a_lone_node_sets_and_gets_its_own_slots() {
    let a = node();
    // Failed accepts (a dial that hangs up at once, one that sends junk) stop nothing
    // (py2p's chord daemon thread dies on the first).
    drop(std::net::TcpStream::connect(a.local_addr()).unwrap());
    {
        use std::io::Write;
        let mut junk = std::net::TcpStream::connect(a.local_addr()).unwrap();
        let _ = junk.write_all(&[0, 0, 0, 3, 1, 2, 3]);
    }
    let b = node();
    b.connect(a.local_addr()).unwrap();
    b.wait_for_peers(1, T).unwrap();
    drop(b);
    a.set("k", "v").unwrap();
    assert_eq!(a.get("k", T).unwrap(), Some(b"v".to_vec()));
    a.join().unwrap();
    assert_eq!(a.get("k", T).unwrap(), Some(b"v".to_vec()));
    assert!(a.delete("k").unwrap());
    assert_eq!(a.get("k", T).unwrap(), None);
    assert!(a.keys().unwrap().is_empty());
    assert!(a.set(vec![0u8; 0], "v").is_err());
}

#[test]
fn data_moves_on_join_and_unjoin_and_survives_a_dead_holder() {
    let mut nodes = ring(3);
    for i in 0..30 {
        nodes[i % 3].set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    // A leeching newcomer reads everything, holds nothing.
    let d = node();
    d.connect(nodes[0].local_addr()).unwrap();
    d.wait_for_peers(3, T).unwrap();
    d.wait_for_ring(3, T).unwrap();
    reads(&d, "k7", Some("v7"));
    assert_eq!(d.info().unwrap().slots, 0);
    // It joins: its share moves to it, and every key still reads.
    d.join().unwrap();
    for a in &nodes {
        a.wait_for_ring(3, T).unwrap();
    }
    // Its share: the slots whose key its id most closely precedes.
    let ids: Vec<&str> = nodes.iter().chain([&d]).map(|a| a.id()).collect();
    let share = (0..30)
        .flat_map(|i| hashes(format!("k{i}").as_bytes()))
        .filter(|(_, key)| responsible(key, ids.iter().copied()) == Some(d.id()))
        .count();
    let deadline = std::time::Instant::now() + T;
    while d.info().unwrap().slots != share {
        assert!(
            std::time::Instant::now() < deadline,
            "{} slots moved, not {share}",
            d.info().unwrap().slots
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..30 {
        reads(&nodes[1], &format!("k{i}"), Some(&format!("v{i}")));
    }
    // A holder dies: what it held is stored again from the other slots.
    drop(nodes.remove(0));
    let deadline = std::time::Instant::now() + T;
    for a in nodes.iter().chain([&d]) {
        while a.peers().unwrap().len() != 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the dead node stays a peer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The survivors store its slots again as they learn of its death: every key reads
    // again (at once, or once the repairs in flight land).
    for i in 0..30 {
        reads(&d, &format!("k{i}"), Some(&format!("v{i}")));
    }
    // It leaves: its slots go to the others, and still everything reads.
    d.unjoin().unwrap();
    let deadline = std::time::Instant::now() + T;
    while d.info().unwrap().slots > 0 {
        assert!(std::time::Instant::now() < deadline, "slots never left");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..30 {
        reads(&d, &format!("k{i}"), Some(&format!("v{i}")));
    }
}
