//! Chord benchmarks of `py2p`, against py2p 0.5.607's `chord_socket` measured by
//! `interop/bench_reference_chord.py` the same way:
//!
//! - `set`: a ring of 3 joined nodes on loopback; node 0 sets N keys (one after the other),
//!   then the time until node 2 reads the last one: sets per second.
//! - `get`: node 1 gets the N keys one after the other (each waits for three slots to
//!   agree): gets per second.
//! - `latency16`: a ring of 16 joined nodes; 200 gets of random keys from random nodes,
//!   one at a time: p50 and p99 in microseconds.
//!
//! Prints one JSON object on the last line of stdout.
//! Usage: `cargo bench -p py2p --bench chord -- [--quick]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use py2p::{ChordConfig, ChordSocket};

const T: Duration = Duration::from_secs(30);

fn ring(n: usize) -> Vec<ChordSocket> {
    let nodes: Vec<ChordSocket> = (0..n)
        .map(|_| {
            let config = ChordSocket::config()
                .bind("127.0.0.1:0".parse().unwrap())
                .max_outgoing(32)
                .build();
            ChordSocket::bind(config, ChordConfig::default()).unwrap()
        })
        .collect();
    for b in nodes.iter().skip(1) {
        b.connect(nodes[0].local_addr()).unwrap();
    }
    for a in &nodes {
        a.wait_for_peers(n - 1, T).unwrap();
        a.join().unwrap();
    }
    for a in &nodes {
        a.wait_for_ring(n - 1, T).unwrap();
    }
    nodes
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 1000 } else { 5000 };
    let nodes = ring(3);
    let start = Instant::now();
    for i in 0..n {
        nodes[0]
            .set(format!("key {i}"), format!("value {i}"))
            .unwrap();
    }
    let last = format!("key {}", n - 1);
    while nodes[2].get(&last, T).unwrap().is_none() {}
    let set_secs = start.elapsed().as_secs_f64();
    eprintln!("set: {n} in {set_secs:.3} s");

    let start = Instant::now();
    for i in 0..n {
        let v = nodes[1].get(format!("key {i}"), T).unwrap();
        assert_eq!(v, Some(format!("value {i}").into_bytes()));
    }
    let get_secs = start.elapsed().as_secs_f64();
    eprintln!("get: {n} in {get_secs:.3} s");
    drop(nodes);

    let nodes = ring(16);
    for i in 0..200 {
        nodes[i % 16].set(format!("k{i}"), "v").unwrap();
    }
    for i in 0..200 {
        let node = &nodes[(i * 7 + 3) % 16];
        while node.get(format!("k{i}"), T).unwrap().is_none() {}
    }
    let mut lat: Vec<u128> = (0..200)
        .map(|i| {
            let node = &nodes[(i * 11 + 5) % 16];
            let t = Instant::now();
            let v = node.get(format!("k{}", (i * 13) % 200), T).unwrap();
            assert!(v.is_some());
            t.elapsed().as_micros()
        })
        .collect();
    lat.sort_unstable();
    let (p50, p99) = (lat[lat.len() / 2], lat[lat.len() * 99 / 100]);
    eprintln!("latency16: p50 {p50} us, p99 {p99} us");
    println!(
        "{{\"set.per_sec\": {:.1}, \"get.per_sec\": {:.1}, \"latency16.p50_us\": {p50}, \"latency16.p99_us\": {p99}, \"n\": {n}}}",
        n as f64 / set_secs,
        n as f64 / get_secs
    );
}
