//! A configuration store on a sync table: every node holds the same keys, changes arrive as
//! events, and py2p's leases keep a key to the node that set it for an hour.
//!
//! ```sh
//! cargo run -p py2p --example config_store
//! ```

// A test or example target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use py2p::{Error, SyncEvent, SyncSocket};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `node` holds `value` at `key` (`None`: no value), by change events.
fn wait_for(node: &SyncSocket, key: &str, value: Option<&str>) -> Result<(), String> {
    let deadline = std::time::Instant::now() + WAIT;
    while node.get(key).as_deref() != value.map(str::as_bytes) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("{key} never became {value:?}"));
        }
        if let Some(SyncEvent::Stored { key, value, owner }) = node.next_change(left) {
            println!(
                "  change: {} = {} (owner {:.8}…)",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value),
                owner
            );
        }
    }
    Ok(())
}

/// Runs the store; `pub` so that the tests can run it too.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = || {
        SyncSocket::config()
            .bind("127.0.0.1:0".parse().expect("an address"))
            .build()
    };
    let admin = SyncSocket::bind(bind(), true)?;
    let worker = SyncSocket::bind(bind(), true)?;
    worker.connect(admin.local_addr())?;

    admin.update([("log_level", "info"), ("workers", "4")])?;
    wait_for(&worker, "workers", Some("4"))?;
    wait_for(&worker, "log_level", Some("info"))?;
    println!("worker sees {} keys", worker.len());

    // The admin owns its keys: the worker may not change them while the lease holds (in
    // the same second, py2p's tie-break between owners decides; the next second it is
    // the lease).
    let set_at = worker.entry("workers").map_or(0, |e| e.time);
    while unix_now() <= set_at {
        std::thread::sleep(Duration::from_millis(50));
    }
    match worker.set("workers", "64") {
        Err(Error::Leased { owner, until, .. }) => {
            println!("workers is leased to {owner:.8}… until {until}")
        }
        other => return Err(format!("expected a lease error, got {other:?}").into()),
    }
    // A key of its own is the worker's to set; the admin sees it.
    worker.set("worker.status", "ready")?;
    wait_for(&admin, "worker.status", Some("ready"))?;
    // Deleting a key nobody set is py2p's KeyError.
    assert!(matches!(admin.delete("nope"), Err(Error::NoSuchKey(_))));
    admin.delete("log_level")?;
    wait_for(&worker, "log_level", None)?;
    println!("final: {:?}", worker.items().len());
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
