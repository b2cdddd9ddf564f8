//! A user-defined sub-protocol between the Rust library and a real py2p 0.5.607 node: a
//! message with our own sub-flag reaches py2p's handler (`handler(msg, conn)`), and py2p's
//! answer with its own sub-flag reaches our handler and `recv` with that flag.
//!
//! Without the interop venv the test prints SKIPPED and passes (with
//! `PY2P_INTEROP=required` it fails instead).

mod common;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::{python, Node};
use py2p::{MeshConfig, MeshSocket, MessageKind};

const WAIT: Duration = Duration::from_secs(30);
const ASK: u8 = 0x30;
const ANSWER: u8 = 0x31;

#[test]
fn custom_sub_flags_round_trip_with_py2p() {
    let Some(py) = python() else { return };
    let p = Node::python(
        "P",
        &py,
        &["mesh", "--bind", "127.0.0.1:0"],
        &[("PY_NODE_ECHO_FLAG", "0x30")],
    );
    let r = MeshSocket::bind(
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .build(),
    )
    .unwrap();
    // Our handler sees py2p's answers with their flag and the connection they came on, and
    // lets them through to recv.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    r.register_handler(move |msg, conn| {
        if msg.sub_flag() == Some(ANSWER) {
            let _ = tx.lock().unwrap().send((
                msg.sender(),
                conn.peer_id().map(str::to_owned),
                msg.packets().to_vec(),
            ));
        }
        false
    })
    .unwrap();
    assert_eq!(r.connect(p.addr.as_str()).unwrap(), p.id);

    // A whisper with our sub-flag: py2p's handler takes it and answers on the connection.
    r.whisper_with(&p.id, ASK, &["hello"]).unwrap();
    let handled = p.wait_for("py2p handled our whisper", |v| {
        v["event"] == "handled" && v["packets"][0] == "hello"
    });
    assert_eq!(handled["sender"], r.id());
    assert_eq!(handled["flag"], ASK);
    let (sender, via, packets) = rx.recv_timeout(WAIT).expect("py2p's answer in our handler");
    assert_eq!(sender, p.id);
    assert_eq!(via.as_deref(), Some(p.id.as_str()));
    assert_eq!(packets, [b"echo:hello".to_vec()]);
    let m = r.recv_timeout(WAIT).expect("py2p's answer in recv");
    assert_eq!(m.sub_flag(), Some(ANSWER));
    assert_eq!(m.kind(), MessageKind::Whisper);
    assert_eq!(m.packets(), [b"echo:hello".to_vec()]);

    // A broadcast with our sub-flag reaches py2p's handler as well.
    r.send_with(MessageKind::Broadcast, ASK, &["to all"])
        .unwrap();
    p.wait_for("py2p handled our broadcast", |v| {
        v["event"] == "handled" && v["packets"][0] == "to all"
    });
    let m = r.recv_timeout(WAIT).expect("the second answer");
    assert_eq!(
        (m.sub_flag(), m.packets().to_vec()),
        (Some(ANSWER), vec![b"echo:to all".to_vec()])
    );
    r.close();
    p.quit();
}
