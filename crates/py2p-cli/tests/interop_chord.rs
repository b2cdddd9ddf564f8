//! Live interoperability of our `py2p chord` with py2p 0.5.607's `chord_socket` (through
//! `interop/py_node.py chord`): values set on one side read on the other, a mixed ring of
//! three Python and two Rust nodes where every node reads every key, and a delete from a
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

/// The tests of this file run one at a time. Each starts up to five nodes, three of them py2p,
/// whose two unsynchronised threads (its daemon and the user's) break links when starved of
/// CPU (`deque mutated during iteration`, interleaved writes); rings side by side on two
/// cores only add to that. (The mixed ring's reads of `None` seen under load were a loop of
/// connections with a py2p node that had five peers: see that test.)
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
    if let Err(got) = try_reads(node, key, want) {
        panic!("{}: {key} reads {got:?}, want {want:?}", node.name);
    }
}

/// `reads`, giving up with the last value read once `WAIT * 2` has passed.
fn try_reads(node: &mut Node, key: &str, want: Option<&str>) -> Result<(), Option<String>> {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        let got = get(node, key);
        if got.as_deref() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(got);
        }
    }
}

/// The exceptions the py2p nodes among `nodes` reported so far that come from py2p's own
/// races and framing bug under load (not from anything a peer sent: a `NameError` from
/// py2p's delete notify, say, is not one of them).
fn py2p_faults(nodes: &[Node]) -> Vec<String> {
    const RACES: [&str; 4] = [
        "Real message size",
        "mutated during iteration",
        "BrokenPipeError",
        "ConnectionResetError",
    ];
    nodes
        .iter()
        .flat_map(Node::faults)
        .filter(|f| RACES.iter().any(|r| f.contains(r)))
        .collect()
}

/// `reads` on `nodes[reader]`, where `nodes[writer]` wrote `key` with `line` (a `/set` or
/// `/del`). py2p loses frames when its own bugs strike under load (a frame cut at a 4-byte
/// boundary, a deque changed while its daemon iterates it: each drops a connection and what
/// was queued on it), and chord writes are not acknowledged, so a write can be lost for
/// good. Only then (some py2p node reported an exception) is the write made again, once,
/// and the key read again; a key that stays wrong without a py2p fault fails the test.
fn reads_written(
    nodes: &mut [Node],
    reader: usize,
    key: &str,
    want: Option<&str>,
    writer: usize,
    line: &str,
    rewrites: &mut usize,
) {
    let Err(got) = try_reads(&mut nodes[reader], key, want) else {
        return;
    };
    let faults = py2p_faults(nodes);
    assert!(
        !faults.is_empty(),
        "{}: {key} reads {got:?}, want {want:?} (no py2p node reported a fault)",
        nodes[reader].name
    );
    eprintln!(
        "{}: {key} reads {got:?} after py2p reported {} fault(s) ({:?}): {} writes it again",
        nodes[reader].name,
        faults.len(),
        faults.last(),
        nodes[writer].name
    );
    *rewrites += 1;
    nodes[writer].send(line);
    reads(&mut nodes[reader], key, want);
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

/// Three Python and two Rust nodes, all connected; 50 keys set from all five; every node
/// reads every key. Then a Rust node deletes keys: they read null everywhere and no link
/// drops.
///
/// Five nodes, not six: with five peers a py2p chord node may hold five outgoing
/// connections, and then it drops the one it finds least useful (`disconnect_least_efficient`)
/// and dials it again as soon as a peers list names it (it always dials its ring
/// neighbours). In a ring of six that loop ran a thousand times a minute in about one run
/// in four under load (py2p dialling and dropping our nodes; a pure py2p ring of six drops
/// and re-makes links too, less often), the ring's views flipped, and reads went wrong. With
/// at most four peers a py2p node never has more than four outgoing connections.
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
    for n in &nodes {
        wait_peers(n, nodes.len() - 1);
    }

    const KEYS: usize = 50;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let set_line = |i: usize| format!("/set key{i} value {i} from {}", names[i % names.len()]);
    for i in 0..KEYS {
        nodes[i % names.len()].send(&set_line(i));
    }
    let mut rewrites = 0;
    for r in 0..nodes.len() {
        for i in 0..KEYS {
            let want = format!("value {i} from {}", names[i % names.len()]);
            let key = format!("key{i}");
            let writer = i % names.len();
            reads_written(
                &mut nodes,
                r,
                &key,
                Some(&want),
                writer,
                &set_line(i),
                &mut rewrites,
            );
        }
    }

    let faults_before = py2p_faults(&nodes).len();
    let before: Vec<usize> = nodes.iter().map(disconnects).collect();
    let nodes_len = nodes.len();
    // R1 deletes three keys (one set by each kind of node, one set by itself).
    for key in ["key0", "key1", "key3"] {
        nodes[3].send(&format!("/del {key}"));
    }
    for r in 0..nodes.len() {
        for key in ["key0", "key1", "key3"] {
            reads_written(
                &mut nodes,
                r,
                key,
                None,
                3,
                &format!("/del {key}"),
                &mut rewrites,
            );
        }
        reads(&mut nodes[r], "key2", Some("value 2 from P1"));
    }
    // A py2p fault drops the connection it happened on: the links are checked only when
    // none struck while the deletes were read.
    let faults_after = py2p_faults(&nodes);
    let faulted = faults_after.len() > faults_before;
    if rewrites > 0 || faulted {
        eprintln!(
            "py2p reported {} fault(s) in this run ({rewrites} write(s) made again): {:?}",
            faults_after.len(),
            faults_after
        );
    }
    // Every link is still up: no disconnection, and every node still has its four peers.
    for (n, b) in nodes.iter_mut().zip(before) {
        if faulted {
            break;
        }
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
            nodes_len - 1,
            "{}: peers after the delete",
            n.name
        );
    }
    // Our nodes' key lists shrank (py2p's never do; a py2p node that connects again, after a
    // fault, tells us every key it knows, the deleted ones too).
    for n in nodes
        .iter_mut()
        .filter(|n| n.name.starts_with('R') && !faulted)
    {
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
