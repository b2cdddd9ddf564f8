//! The chord table in the simulator: a ring of 32 nodes holding 1,000 keys, read from every
//! node; 8 nodes killed; 8 new nodes joining; the same with connections that break at
//! random (how loss shows over TCP) and a partition that heals.
//!
//! Seeds: `PY2P_SIM_CHORD_SEEDS=N` runs N seeds of each scenario (default 1).

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::time::Duration;

use py2p::chord::{hashes, responsible};
use py2p_sim::{Sim, SimConfig};

const NODES: usize = 32;
const KEYS: usize = 1000;
const GET: Duration = Duration::from_secs(10);

fn seeds() -> u64 {
    std::env::var("PY2P_SIM_CHORD_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key {i}")).collect()
}

fn value(i: usize) -> Vec<u8> {
    format!("value {i}").into_bytes()
}

fn config(break_rate: f64) -> SimConfig {
    let mut c = SimConfig::default();
    // Chord routes each slot to the closest node a node knows: keep every node linked.
    c.mesh.max_outgoing = 64;
    c.break_rate = break_rate;
    c
}

/// 32 chord nodes, each dialling a random earlier one, all joined; 1,000 keys set from
/// random nodes.
fn ring(seed: u64, break_rate: f64) -> Sim {
    let mut sim = Sim::new(seed, config(break_rate));
    for i in 0..NODES {
        sim.add_chord_node();
        if i > 0 {
            let j = sim.rng().index(i);
            sim.connect(i, j);
        }
    }
    sim.run_for(Duration::from_secs(20));
    for i in 0..NODES {
        sim.chord_join(i);
    }
    sim.run_for(Duration::from_secs(10));
    for (i, key) in keys().iter().enumerate() {
        let from = sim.rng().index(NODES);
        let set = sim.chord_set(from, key.as_bytes(), &value(i));
        assert!(matches!(set, Some(Ok(()))), "set {key} on {from}: {set:?}");
    }
    sim.run_for(Duration::from_secs(10));
    sim
}

/// Every live node reads every key. With links breaking at random a read can fail while a
/// connection is down (the answers on it are lost): keys misread are read again, up to
/// twice, after 5 s.
fn all_read(sim: &mut Sim, when: &str) {
    let keys = keys();
    let mut retried = 0;
    for n in sim.live_nodes() {
        let mut todo: Vec<usize> = (0..KEYS).collect();
        for attempt in 0..3 {
            let asked: Vec<&String> = todo.iter().map(|&i| &keys[i]).collect();
            let got = sim.chord_get_many(n, &asked, GET);
            let wrong: Vec<usize> = todo
                .iter()
                .zip(&got)
                .filter(|(&i, g)| g.as_deref() != Some(&value(i)[..]))
                .map(|(&i, _)| i)
                .collect();
            if wrong.is_empty() {
                break;
            }
            assert!(
                attempt < 2,
                "seed {} {when}: node {n} misreads {} keys three times, first key {}",
                sim.seed(),
                wrong.len(),
                wrong[0],
            );
            retried += wrong.len();
            todo = wrong;
            sim.run_for(Duration::from_secs(5));
        }
    }
    println!(
        "seed {} {when}: every key read from every node ({retried} reads retried)",
        sim.seed()
    );
}

/// Kills 8 nodes, checks; adds 8 nodes that join, checks, and checks each holds the slots
/// its id gives it.
fn kill_and_join(sim: &mut Sim) {
    let mut victims = BTreeSet::new();
    while victims.len() < 8 {
        victims.insert(sim.rng().index(NODES));
    }
    for &v in &victims {
        sim.kill(v);
    }
    sim.run_for(Duration::from_secs(15));
    all_read(sim, "after 8 nodes were killed");

    let live = sim.live_nodes();
    let mut new = Vec::new();
    for _ in 0..8 {
        let n = sim.add_chord_node();
        let to = live[sim.rng().index(live.len())];
        sim.connect(n, to);
        new.push(n);
    }
    sim.run_for(Duration::from_secs(20));
    for &n in &new {
        sim.chord_join(n);
    }
    sim.run_for(Duration::from_secs(20));
    all_read(sim, "after 8 nodes joined");

    let ids: Vec<String> = sim
        .live_nodes()
        .iter()
        .map(|&n| sim.id(n).to_owned())
        .collect();
    let slots: Vec<_> = keys().iter().flat_map(|k| hashes(k.as_bytes())).collect();
    for &n in &new {
        let id = sim.id(n).to_owned();
        let share = slots
            .iter()
            .filter(|(_, key)| {
                responsible(key, ids.iter().map(String::as_str)) == Some(id.as_str())
            })
            .count();
        let held = sim.chord_info(n).map_or(0, |i| i.slots);
        assert_eq!(
            held,
            share,
            "seed {}: new node {n} holds {held} slots, its share is {share}",
            sim.seed()
        );
    }
}

#[test]
fn a_ring_of_32_keeps_1000_keys_through_kills_and_joins() {
    for seed in 0..seeds() {
        let mut sim = ring(seed, 0.0);
        all_read(&mut sim, "after the sets");
        kill_and_join(&mut sim);
    }
}

#[test]
fn the_ring_keeps_its_keys_under_broken_links_and_a_healed_partition() {
    for seed in 0..seeds() {
        let mut sim = ring(1000 + seed, 0.0002);
        all_read(&mut sim, "after the sets, links breaking");
        // A third of the nodes cut off for a minute, then the cut heals.
        let side: Vec<usize> = (0..NODES).filter(|n| n % 3 == 0).collect();
        sim.partition_with_reset(&side);
        sim.run_for(Duration::from_secs(60));
        sim.heal();
        sim.run_for(Duration::from_secs(60));
        all_read(&mut sim, "after a partition healed");
        kill_and_join(&mut sim);
    }
}
