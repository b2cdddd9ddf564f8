//! A key-value store on a chord table (py2p's `chord_socket`): three nodes in one process
//! join the ring, one stores keys, another reads them, a third deletes one. Each key lives
//! in five slots spread over the joined nodes; a get answers when three slots agree.
//!
//! ```sh
//! cargo run -p py2p --example chord_store
//! ```

// A test or example target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use py2p::{ChordConfig, ChordSocket};

/// The bound on every wait (a failure bound, not a pace).
const WAIT: Duration = Duration::from_secs(30);
/// How long one get waits for three slots to agree.
const GET: Duration = Duration::from_secs(2);

/// Reads `key` on `node` until it is `want` (`None`: no value). A set is not acknowledged
/// by the slot holders (as in py2p), so a read from another node may come before the
/// stores: it is repeated, up to `WAIT`.
fn read_until(node: &ChordSocket, name: &str, key: &str, want: Option<&str>) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = node.get(key, GET).map_err(|e| e.to_string())?;
        if got.as_deref() == want.map(str::as_bytes) {
            println!("  {name}: {key} = {want:?}");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{name}: {key} reads {:?}, want {want:?}",
                got.map(|v| String::from_utf8_lossy(&v).into_owned())
            ));
        }
    }
}

/// Runs the store; `pub` so that the tests can run it too.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = || {
        ChordSocket::config()
            .bind("127.0.0.1:0".parse().expect("an address"))
            .build()
    };
    let alice = ChordSocket::bind(bind(), ChordConfig::default())?;
    let bob = ChordSocket::bind(bind(), ChordConfig::default())?;
    let carol = ChordSocket::bind(bind(), ChordConfig::default())?;
    // Bob and Carol dial Alice; the mesh introduces them to each other.
    bob.connect(alice.local_addr())?;
    carol.connect(alice.local_addr())?;
    for node in [&alice, &bob, &carol] {
        node.wait_for_peers(2, WAIT)?;
    }

    // Every node starts leeching (reads and writes, holds nothing); joining makes it hold
    // slots. Each waits until it knows the other two joined.
    for node in [&alice, &bob, &carol] {
        node.join()?;
    }
    for node in [&alice, &bob, &carol] {
        let info = node.wait_for_ring(2, WAIT)?;
        println!(
            "{:.8}…: joined, {} joined peers",
            node.id(),
            info.joined_peers
        );
    }

    alice.update([("colour", "blue"), ("shape", "circle")])?;
    alice.set("size", "large")?;
    // Any node reads any key, wherever its slots are.
    read_until(&carol, "carol", "colour", Some("blue"))?;
    read_until(&carol, "carol", "shape", Some("circle"))?;
    read_until(&bob, "bob", "size", Some("large"))?;

    // A delete empties the key's five slots; nobody reads it any more.
    if !bob.delete("colour")? {
        return Err("bob did not know the key colour".into());
    }
    read_until(&carol, "carol", "colour", None)?;
    read_until(&alice, "alice", "colour", None)?;
    read_until(&alice, "alice", "shape", Some("circle"))?;

    let mut keys: Vec<String> = bob
        .keys()?
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    keys.sort();
    println!("bob knows the keys {keys:?}");
    if keys.iter().any(|k| k == "colour") {
        return Err("a deleted key is still listed".into());
    }
    Ok(())
}
