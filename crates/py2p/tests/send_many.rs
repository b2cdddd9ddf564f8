//! `MeshSocket::send_many`: a batch of broadcasts arrives whole, once and in order, in line
//! with single sends around it; a message over the limits refuses the batch before any of
//! it is sent.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use py2p::{Error, MeshConfig, MeshSocket};

const WAIT: Duration = Duration::from_secs(30);

fn node() -> MeshSocket {
    MeshSocket::bind(
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .build(),
    )
    .unwrap()
}

/// A pair of connected nodes, each with the other in its routing table.
fn pair() -> (MeshSocket, MeshSocket) {
    let a = node();
    let b = node();
    assert_eq!(b.connect(a.local_addr()).unwrap(), a.id());
    a.wait_for_peers(1, WAIT).unwrap();
    (a, b)
}

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
