//! Live interoperability of our `py2p chord` with py2p 0.5.607's `chord_socket` (through
//! `interop/py_node.py chord`): values set on one side read on the other, a mixed ring of
//! three Python and three Rust nodes where every node reads every key, and a delete from a
//! Rust node that leaves every link up (py2p's own delete notify would make py2p nodes drop
//! the deleting node). The same over SSL (`--encryption ssl` against py2p's `SSL`, which
//! needs the interop venv's `cryptography`): keys set on each side read on the other.
//!
//! Sets are not acknowledged in py2p's chord, and nodes learn who joined the ring by
//! messages of their own, so reads are repeated until they see the value (bounded by
//! `WAIT` per read); nothing sleeps.
//!
//! Without the interop venv each test prints SKIPPED and passes (with `PY2P_INTEROP=required`
//! it fails instead). Development: `PY2P_PYTHON=/tmp/venv/bin/python PY2P_INTEROP=required
//! cargo test -p py2p-cli --test interop_chord`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use common::{python, Node, WAIT};

/// The tests of this file run one at a time. Each starts up to six nodes, three of them py2p,
/// whose two unsynchronised threads (its daemon and the user's) break links when starved of
/// CPU (`deque mutated during iteration`, interleaved writes); three such rings side by side
/// on two cores made the mixed ring read `None` for a key now and then (in the full
/// `cargo xtask test` and under other load; never when run alone, in 7 runs). We take it for
/// py2p's races (not proven), which are not what these tests check.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Seconds a single `/get` waits (py2p's get waits its whole timeout for a missing key).
const GET_TIMEOUT: &str = "3";

fn rust_chord(name: &str, extra: &[&str]) -> Node {
    let mut args = vec![
        "chord",
        "--bind",
        "127.0.0.1:0",
        "--get-timeout",
        GET_TIMEOUT,
    ];
    args.extend_from_slice(extra);
    Node::rust(name, &args)
}

fn py_chord(py: &PathBuf, name: &str, extra: &[&str]) -> Node {
    let mut args = vec!["chord", "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Node::python(name, py, &args, &[("PY_NODE_CHORD_TIMEOUT", GET_TIMEOUT)])
}

/// `/get KEY` once: the value, or `None` for null.
fn get(node: &mut Node, key: &str) -> Option<String> {
    let n = node.lines(|e| e["event"] == "value").len();
    node.send(&format!("/get {key}"));
    let answers = node.wait_for_n(&format!("value of {key}"), n + 1, |e| e["event"] == "value");
    let a = &answers[n];
    assert_eq!(a["key"], key, "{}: /get answered another key", node.name);
    a["value"].as_str().map(str::to_owned)
}

/// Reads `key` until it is `want` (the stores, and the news of who joined, may still be on
/// their way).
fn reads(node: &mut Node, key: &str, want: Option<&str>) {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        let got = get(node, key);
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {key} reads {got:?}, want {want:?}",
            node.name
        );
    }
}

/// Waits until `node` has reported `n` distinct peers connected.
fn wait_peers(node: &Node, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let peers: BTreeSet<String> = node
            .lines(|e| e["event"] == "connected")
            .iter()
            .filter_map(|e| e["peer"].as_str().map(str::to_owned))
            .collect();
        if peers.len() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {} of {n} peers",
            node.name,
            peers.len()
        );
        node.wait_for_n("another connected event", peers.len() + 1, |e| {
            e["event"] == "connected"
        });
    }
}

fn disconnects(node: &Node) -> usize {
    node.lines(|e| e["event"] == "disconnected").len()
}

fn errors(node: &Node) -> Vec<serde_json::Value> {
    node.lines(|e| e["event"] == "error")
}

#[test]
fn python_sets_rust_gets_and_the_reverse() {
    let _serial = one_at_a_time();
    let Some(py) = python() else { return };
    let mut p = py_chord(&py, "P", &[]);
    let mut r = rust_chord("R", &["--connect", &p.addr]);
    assert_eq!(r.protocol, p.protocol, "protocol ids of the chord subnet");
    r.wait_connected(&p);
    p.wait_connected(&r);

    p.send("/set from-python hello from P");
    reads(&mut r, "from-python", Some("hello from P"));
    reads(&mut p, "from-python", Some("hello from P"));

    r.send("/set from-rust hello from R");
    reads(&mut p, "from-rust", Some("hello from R"));
    reads(&mut r, "from-rust", Some("hello from R"));

    // A key nobody set is null on both sides.
    assert_eq!(get(&mut r, "nobody"), None);
    assert_eq!(get(&mut p, "nobody"), None);
    // Both know both keys.
    for n in [&mut p, &mut r] {
        let c = n.lines(|e| e["event"] == "keys").len();
        n.send("/keys");
        let k = n.wait_for_n("keys", c + 1, |e| e["event"] == "keys");
        let keys: BTreeSet<&str> = k[c]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["from-python", "from-rust"]),
            "{}",
            n.name
        );
    }
    assert!(errors(&p).is_empty() && errors(&r).is_empty());
    assert_eq!(disconnects(&p) + disconnects(&r), 0);
    p.quit();
    r.quit();
}

/// Issue 12: "compression and SSL as for the mesh". A py2p SSL chord node and our
/// `py2p chord --encryption ssl` share a ring over TLS: same protocol id, TLS 1.3, keys set
/// on either side read on both.
#[test]
fn ssl_chord_python_and_rust_read_each_others_keys() {
    let _serial = one_at_a_time();
    let Some(py) = python() else { return };
    let mut p = py_chord(&py, "P", &["--encryption", "SSL"]);
    let mut r = rust_chord("R", &["--encryption", "ssl", "--connect", &p.addr]);
    assert_eq!(r.protocol, p.protocol, "protocol ids of (chord, SSL)");
    let plain = rust_chord("plain", &[]);
    assert_ne!(
        r.protocol, plain.protocol,
        "the SSL chord subnet is not the plaintext one"
    );
    plain.quit();
    r.wait_connected(&p);
    p.wait_connected(&r);
    let ev = r
        .lines(|e| e["event"] == "connected" && e["peer"] == p.id.as_str())
        .remove(0);
    assert_eq!(ev["tls"], "TLSv1.3", "R: {ev}");

    p.send("/set ssl-python over tls from P");
    reads(&mut p, "ssl-python", Some("over tls from P"));
    reads(&mut r, "ssl-python", Some("over tls from P"));
    r.send("/set ssl-rust over tls from R");
    reads(&mut r, "ssl-rust", Some("over tls from R"));
    reads(&mut p, "ssl-rust", Some("over tls from R"));
    assert_eq!(get(&mut p, "nobody"), None);

    assert!(errors(&p).is_empty(), "P: errors {:?}", errors(&p));
    assert!(errors(&r).is_empty(), "R: errors {:?}", errors(&r));
    for n in [&p, &r] {
        let d = n.lines(|e| e["event"] == "disconnected");
        assert!(d.is_empty(), "{}: disconnections {d:?}", n.name);
    }
    p.quit();
    r.quit();
}

/// Three Python and three Rust nodes, all connected; 50 keys set from all six; every node
/// reads every key. Then a Rust node deletes keys: they read null everywhere and no link
/// drops.
#[test]
fn a_mixed_ring_reads_every_key_everywhere_and_survives_a_rust_delete() {
    let _serial = one_at_a_time();
    let Some(py) = python() else { return };
    let mut nodes: Vec<Node> = Vec::new();
    nodes.push(py_chord(&py, "P0", &[]));
    let first = nodes[0].addr.clone();
    nodes.push(rust_chord("R0", &["--connect", &first]));
    nodes.push(py_chord(&py, "P1", &["--connect", &first]));
    nodes.push(rust_chord("R1", &["--connect", &first]));
    nodes.push(py_chord(&py, "P2", &["--connect", &first]));
    nodes.push(rust_chord("R2", &["--connect", &first]));
    for n in &nodes {
        wait_peers(n, nodes.len() - 1);
    }

    const KEYS: usize = 50;
    for i in 0..KEYS {
        let n = i % nodes.len();
        let line = format!("/set key{i} value {i} from {}", nodes[n].name);
        nodes[n].send(&line);
    }
    for n in nodes.iter_mut() {
        for i in 0..KEYS {
            let want = format!(
                "value {i} from {}",
                ["P0", "R0", "P1", "R1", "P2", "R2"][i % 6]
            );
            reads(n, &format!("key{i}"), Some(&want));
        }
    }

    let before: Vec<usize> = nodes.iter().map(disconnects).collect();
    // R1 deletes three keys (one set by each kind of node, one set by itself).
    for key in ["key0", "key1", "key3"] {
        nodes[3].send(&format!("/del {key}"));
    }
    for n in nodes.iter_mut() {
        for key in ["key0", "key1", "key3"] {
            reads(n, key, None);
        }
        reads(n, "key2", Some("value 2 from P1"));
    }
    // Every link is still up: no disconnection, and every node still has its five peers.
    for (n, b) in nodes.iter_mut().zip(before) {
        assert_eq!(
            disconnects(n),
            b,
            "{}: a link dropped after the delete",
            n.name
        );
        let c = n.lines(|e| e["event"] == "peers").len();
        n.send("/peers");
        let p = n.wait_for_n("peers", c + 1, |e| e["event"] == "peers");
        assert_eq!(
            p[c]["peers"].as_array().map_or(0, Vec::len),
            5,
            "{}: peers after the delete",
            n.name
        );
    }
    // Our nodes' key lists shrank (py2p's never do).
    for n in nodes.iter_mut().filter(|n| n.name.starts_with('R')) {
        let c = n.lines(|e| e["event"] == "keys").len();
        n.send("/keys");
        let k = n.wait_for_n("keys", c + 1, |e| e["event"] == "keys");
        let keys = k[c]["keys"].as_array().unwrap();
        assert!(
            !keys
                .iter()
                .any(|k| k == "key0" || k == "key1" || k == "key3"),
            "{}: deleted keys listed",
            n.name
        );
    }
    for n in &nodes {
        assert!(errors(n).is_empty(), "{}: errors {:?}", n.name, errors(n));
    }
    for n in nodes {
        n.quit();
    }
}
