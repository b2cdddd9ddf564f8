//! Load: a million broadcasts between two nodes, every one delivered, in order.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use py2p::{MeshConfig, MeshSocket};

#[test]
fn a_million_broadcasts_between_two_nodes_all_arrive_in_order() {
    const N: u32 = 1_000_000;
    let config = || {
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .build()
    };
    let a = MeshSocket::bind(config()).unwrap();
    let b = MeshSocket::bind(config()).unwrap();
    b.connect(a.local_addr()).unwrap();
    b.wait_for_peers(1, Duration::from_secs(20)).unwrap();
    a.wait_for_peers(1, Duration::from_secs(20)).unwrap();

    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        // 200-byte messages, the size py2p's own benchmarks use.
        let filler = [b'x'; 196];
        for i in 0..N {
            b.send(&[&i.to_be_bytes()[..], &filler[..]]).unwrap();
        }
        b
    });
    for i in 0..N {
        let m = a
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("message {i} never came"));
        assert_eq!(
            m.packets()[0],
            i.to_be_bytes(),
            "out of order or lost at {i}"
        );
    }
    let elapsed = start.elapsed();
    let b = sender.join().unwrap();
    assert!(a.try_recv().is_none());
    let st = a.status().unwrap();
    assert_eq!(
        (st.received, st.duplicates, st.decode_errors),
        (u64::from(N), 0, 0)
    );
    println!(
        "{N} broadcasts in {elapsed:.2?}: {:.0} msg/s",
        f64::from(N) / elapsed.as_secs_f64()
    );
    drop(b);
}
