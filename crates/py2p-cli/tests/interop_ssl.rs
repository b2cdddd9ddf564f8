//! Live interoperability of our SSL mode (`--encryption ssl`) with py2p 0.5.607 SSL nodes
//! (`interop/py_node.py --encryption SSL`, which needs the `cryptography` package of the
//! interop venv and Python 3.11): dials both ways, broadcasts and whispers both ways, a mixed
//! network of two Python and two Rust nodes, a shared sync table, and plaintext refused by
//! SSL in both directions. Every test waits on events printed by the nodes; none sleeps.
//!
//! Without the interop venv each test prints SKIPPED and passes (with `PY2P_INTEROP=required`
//! it fails instead).

mod common;

use std::path::PathBuf;

use common::{python, Node};
use serde_json::Value;

/// The protocol ids py2p 0.5.607 gives `("mesh", "SSL")` and `("sync1", "SSL")`.
const MESH_SSL: &str = "HQqVMixVUFnEz7Y2bZimeSzrLyAJUGug1ezzu3UAr2s7";
const SYNC1_SSL: &str = "8Ph1VNDGg5rNEmEmW1w6MkyfQXztFB98fojKc75uUfKG";

fn rust(name: &str, mode: &str, encryption: &str, extra: &[&str]) -> Node {
    let mut args = vec![mode, "--bind", "127.0.0.1:0", "--encryption", encryption];
    args.extend_from_slice(extra);
    Node::rust(name, &args)
}

fn py(py: &PathBuf, name: &str, mode: &str, encryption: &str, extra: &[&str]) -> Node {
    let mut args = vec![mode, "--bind", "127.0.0.1:0", "--encryption", encryption];
    args.extend_from_slice(extra);
    Node::python(name, py, &args, &[])
}

/// Whether a printed line is a message from `sender` whose first packet is `text`.
fn message_from(sender: &Node, text: &str) -> impl Fn(&Value) -> bool {
    let (sid, t) = (sender.id.clone(), text.to_owned());
    move |v| v["event"] == "message" && v["sender"] == sid.as_str() && v["packets"][0] == t.as_str()
}

/// Waits for a message with exactly this text from `sender`, of this kind.
fn expect_message(node: &Node, kind: &str, sender: &Node, text: &str) {
    let what = format!("{kind} {text:?} from {}", sender.name);
    let m = node.wait_for(&what, message_from(sender, text));
    assert_eq!(m["kind"], kind, "{}: kind of {text:?}", node.name);
}

fn count(node: &Node, sender: &Node, text: &str) -> usize {
    node.lines(message_from(sender, text)).len()
}

/// The `connected` event of `node` naming `peer`, once it came.
fn connected(node: &Node, peer: &Node) -> Value {
    node.wait_connected(peer);
    node.lines(|v| v["event"] == "connected" && v["peer"] == peer.id.as_str())
        .remove(0)
}

fn pair_talks(r: &mut Node, p: &mut Node) {
    let ev = connected(r, p);
    assert_eq!(ev["tls"], "TLSv1.3", "{}: {ev}", r.name);
    connected(p, r);
    r.send("from rust over tls");
    expect_message(p, "broadcast", r, "from rust over tls");
    p.send("from python over tls");
    expect_message(r, "broadcast", p, "from python over tls");
    r.send(&format!("/whisper {} rust whispers", p.id));
    expect_message(p, "whisper", r, "rust whispers");
    p.send(&format!("/whisper {} python whispers", r.id));
    expect_message(r, "whisper", p, "python whispers");
}

#[test]
fn rust_dials_a_python_ssl_node() {
    let Some(python) = python() else { return };
    let mut p = py(&python, "P", "mesh", "SSL", &[]);
    assert_eq!(p.protocol, MESH_SSL);
    let mut r = rust("R", "mesh", "ssl", &["--connect", &p.addr.clone()]);
    assert_eq!(r.protocol, MESH_SSL, "our id of (mesh, SSL) is py2p's");
    pair_talks(&mut r, &mut p);
    r.quit();
    p.quit();
}

#[test]
fn a_python_ssl_node_dials_rust() {
    let Some(python) = python() else { return };
    let mut r = rust("R", "mesh", "SSL", &[]);
    let mut p = py(&python, "P", "mesh", "ssl", &["--connect", &r.addr.clone()]);
    pair_talks(&mut r, &mut p);
    r.quit();
    p.quit();
}

/// Two Python and two Rust SSL nodes; each broadcasts in turn, and each broadcast arrives
/// at every other node exactly once.
///
/// In turn, each broadcast awaited everywhere before the next is sent: a py2p node whose
/// user's thread sends while its daemon thread handles a broadcast can die of "deque mutated
/// during iteration" (its seen-ids deque has no lock, see interop_mesh's `bulk_both_ways`).
/// The exception drops the link it came on, and that broadcast is lost at that node for good
/// (py2p remembered its id before failing, so later copies are dropped as seen). Copies of
/// the previous broadcast can still be in flight when the next is sent, so taking turns makes
/// the race rare, not impossible: a broadcast missing after py2p reported such a fault is
/// excused and printed; missing without one, or delivered twice anywhere, fails.
#[test]
fn mixed_network_of_two_python_and_two_rust_ssl_nodes() {
    let Some(python) = python() else { return };
    let p1 = py(&python, "P1", "mesh", "SSL", &[]);
    let r1 = rust("R1", "mesh", "ssl", &["--connect", &p1.addr]);
    let p2 = py(&python, "P2", "mesh", "SSL", &["--connect", &r1.addr]);
    let r2 = rust("R2", "mesh", "ssl", &["--connect", &p2.addr]);
    // A line P1 - R1 - P2 - R2 at least; wait for each link made at both ends. A node
    // reports a peer once it has the peer's handshake, and only then sends it broadcasts:
    // a broadcast made before the far end of a link reported it may never cross that link
    // (py2p registers the peer in its daemon thread, after the dialler already reported).
    for (a, b) in [(&r1, &p1), (&p2, &r1), (&r2, &p2)] {
        a.wait_connected(b);
        b.wait_connected(a);
    }
    let mut nodes = [p1, r1, p2, r2];
    let texts: Vec<String> = (0..4)
        .map(|i| format!("ssl broadcast from node {i}"))
        .collect();
    let mut arrived = [[true; 4]; 4];
    for (i, t) in texts.iter().enumerate() {
        nodes[i].send(t);
        for j in (0..4).filter(|&j| j != i) {
            arrived[i][j] = arrives(&nodes, j, i, t);
        }
    }
    // Exactly once: a last broadcast from each, awaited everywhere, comes after any
    // duplicate of the first ones could have arrived over the same links.
    for i in 0..4 {
        let last = format!("last from {i}");
        nodes[i].send(&last);
        for j in (0..4).filter(|&j| j != i) {
            arrives(&nodes, j, i, &last);
        }
    }
    for (i, t) in texts.iter().enumerate() {
        for j in (0..4).filter(|&j| j != i) {
            let (n, got) = (&nodes[j], count(&nodes[j], &nodes[i], t));
            assert!(
                got == 1 || (got == 0 && !arrived[i][j]),
                "{} got {t:?} {got} times",
                n.name
            );
        }
    }
    for n in nodes {
        n.quit();
    }
}

/// Waits until `nodes[at]` has the broadcast `text` from `nodes[from]`; whether it came. It
/// may stay away only when a py2p node reported a fault (see the test above).
fn arrives(nodes: &[Node], at: usize, from: usize, text: &str) -> bool {
    let (node, sender) = (&nodes[at], &nodes[from]);
    match node.try_wait_for(message_from(sender, text)) {
        Ok(m) => {
            assert_eq!(m["kind"], "broadcast", "{}: kind of {text:?}", node.name);
            true
        }
        Err(seen) => {
            let faults: Vec<String> = nodes.iter().flat_map(Node::faults).collect();
            assert!(
                !faults.is_empty(),
                "{}: waited for broadcast {text:?} from {} (no py2p fault reported), {seen}",
                node.name,
                sender.name
            );
            eprintln!(
                "{}: broadcast {text:?} from {} lost after py2p reported {faults:?}",
                node.name, sender.name
            );
            false
        }
    }
}

#[test]
fn a_python_ssl_sync_table_shared_with_rust() {
    let Some(python) = python() else { return };
    let mut p = py(&python, "P", "sync", "SSL", &[]);
    assert_eq!(p.protocol, SYNC1_SSL);
    let mut r = rust("R", "sync", "ssl", &["--connect", &p.addr.clone()]);
    assert_eq!(r.protocol, SYNC1_SSL);
    r.wait_connected(&p);
    p.wait_connected(&r);
    p.send("/set colour blue");
    let pid = p.id.clone();
    r.wait_for("stored colour from P", move |e| {
        e["event"] == "stored"
            && e["key"] == "colour"
            && e["value"] == "blue"
            && e["owner"] == pid.as_str()
    });
    r.send("/set shape round");
    let rid = r.id.clone();
    p.wait_for("stored shape from R", move |e| {
        e["event"] == "stored"
            && e["key"] == "shape"
            && e["value"] == "round"
            && e["owner"] == rid.as_str()
    });
    r.quit();
    p.quit();
}

/// A plaintext node and an SSL node never pair, whoever dials; an honest SSL peer that
/// comes after still does, so the refusal was read and handled.
#[test]
fn plaintext_and_ssl_refuse_each_other_both_ways() {
    let Some(python) = python() else { return };
    // Rust SSL node dialled by a Python plaintext node, and dialling a Python plaintext node.
    let plain_listener = py(&python, "Pplain", "mesh", "Plaintext", &[]);
    let r = rust("R", "mesh", "ssl", &["--connect", &plain_listener.addr]);
    let plain_dialler = py(
        &python,
        "Pdial",
        "mesh",
        "Plaintext",
        &["--connect", &r.addr],
    );
    // Python SSL node dialled by a Rust plaintext node, and dialling a Rust plaintext node.
    let rust_plain = rust("Rplain", "mesh", "plaintext", &[]);
    let p_ssl = py(
        &python,
        "Pssl",
        "mesh",
        "SSL",
        &["--connect", &rust_plain.addr],
    );
    let rust_plain_dialler = rust("Rdial", "mesh", "plaintext", &["--connect", &p_ssl.addr]);
    // py_node reads stdin only after its dials: an answer to /peers means Pdial has dialled.
    let mut plain_dialler = plain_dialler;
    plain_dialler.send("/peers");
    plain_dialler.wait_for("peers answer", |v| v["event"] == "peers");
    // Honest SSL peers after the refusals.
    let honest = py(&python, "Phonest", "mesh", "SSL", &["--connect", &r.addr]);
    r.wait_connected(&honest);
    let honest_r = rust("Rhonest", "mesh", "ssl", &["--connect", &p_ssl.addr]);
    p_ssl.wait_connected(&honest_r);
    for (a, b) in [
        (&r, &plain_listener),
        (&r, &plain_dialler),
        (&p_ssl, &rust_plain),
        (&p_ssl, &rust_plain_dialler),
    ] {
        for (x, y) in [(a, b), (b, a)] {
            assert!(
                x.lines(|v| v["event"] == "connected" && v["peer"] == y.id.as_str())
                    .is_empty(),
                "{} paired with {}",
                x.name,
                y.name
            );
        }
    }
    for n in [
        plain_listener,
        r,
        plain_dialler,
        rust_plain,
        p_ssl,
        rust_plain_dialler,
        honest,
        honest_r,
    ] {
        n.quit();
    }
}
