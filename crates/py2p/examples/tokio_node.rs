//! A mesh node inside a tokio application: two nodes, one task that prints what arrives
//! (from a `Stream`), one that waits for peer events, and an async `connect`.
//!
//! ```sh
//! cargo run -p py2p --features tokio --example tokio_node
//! ```

// A test or example target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use py2p::tokio::{AsyncMeshSocket, Stream};
use py2p::{MeshConfig, MeshSocket, PeerEvent};

/// The next item of a stream (what `StreamExt::next` does, without the extra crate).
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// Runs the two nodes; `pub` so that the tests can run it too.
#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = || {
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().expect("an address"))
            .build()
    };
    let alice = AsyncMeshSocket::new(MeshSocket::bind(config())?);
    let bob = AsyncMeshSocket::new(MeshSocket::bind(config())?);

    // Alice's events, in a task of their own.
    let mut events = alice.events();
    let watcher = tokio::spawn(async move {
        while let Some(event) = next(&mut events).await {
            if let PeerEvent::Connected { id, .. } = event {
                return Some(id);
            }
        }
        None
    });

    let peer = bob.connect(alice.socket().local_addr()).await?;
    println!("bob connected to {peer}");
    let joined = tokio::time::timeout(Duration::from_secs(30), watcher).await??;
    println!("alice saw {joined:?} join");

    // Alice prints three messages from a stream while bob sends them.
    let mut messages = alice.messages();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3 {
            match next(&mut messages).await {
                Some(msg) => got.push(String::from_utf8_lossy(&msg.packets()[0]).into_owned()),
                None => break,
            }
        }
        got
    });
    for i in 0..3 {
        bob.socket().send(&[format!("hello #{i}")])?;
    }
    let got = tokio::time::timeout(Duration::from_secs(30), reader).await??;
    println!("alice received {got:?}");
    assert_eq!(got, ["hello #0", "hello #1", "hello #2"]);

    // And answers with recv().await on the other side.
    alice.socket().whisper(bob.socket().id(), &["thanks"])?;
    let answer = tokio::time::timeout(Duration::from_secs(30), bob.recv())
        .await?
        .ok_or("bob's socket closed")?;
    println!(
        "bob received {:?}",
        String::from_utf8_lossy(&answer.packets()[0])
    );
    alice.close();
    bob.close();
    Ok(())
}
