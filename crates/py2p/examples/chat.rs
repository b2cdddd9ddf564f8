//! A chat: every line a node sends is broadcast to every node, and each prints what it hears.
//!
//! Three nodes in one process talk here, so that the example runs on its own; a real chat is
//! one node per process, reading stdin (as `py2p mesh` does): bind, `connect` to any member,
//! `send` each line, print what `recv` returns.
//!
//! ```sh
//! cargo run -p py2p --example chat
//! ```

// A test or example target: a failed unwrap is a failed run (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use py2p::{MeshConfig, MeshSocket, MessageKind};

const WAIT: Duration = Duration::from_secs(30);

/// Runs the chat; `pub` so that the tests can run it too.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = || {
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().expect("an address"))
            .build()
    };
    let names = ["ann", "bo", "cy"];
    let nodes: Vec<MeshSocket> = names
        .iter()
        .map(|_| MeshSocket::bind(bind()))
        .collect::<Result<_, _>>()?;
    // bo and cy each know only ann; the network introduces them to each other.
    for node in &nodes[1..] {
        node.connect(nodes[0].local_addr())?;
    }
    for node in &nodes {
        node.wait_for_peers(2, WAIT)?;
    }
    let said = [(0, "hi all"), (1, "hello ann"), (2, "hey both")];
    for (who, text) in said {
        nodes[who].send(&[format!("{}: {text}", names[who])])?;
    }
    // Everyone hears the two lines of the others, once each.
    for (i, node) in nodes.iter().enumerate() {
        for _ in 0..2 {
            let msg = node.recv_timeout(WAIT).ok_or("a line in time")?;
            assert_eq!(msg.kind(), MessageKind::Broadcast);
            println!(
                "[{}] {}",
                names[i],
                String::from_utf8_lossy(&msg.packets()[0])
            );
        }
    }
    // A private word: a whisper reaches one node alone.
    let cy = nodes[2].id().to_owned();
    nodes[1].whisper(&cy, &["bo (privately): see you later"])?;
    let msg = nodes[2].recv_timeout(WAIT).ok_or("the whisper")?;
    assert_eq!(msg.kind(), MessageKind::Whisper);
    println!("[cy] {}", String::from_utf8_lossy(&msg.packets()[0]));
    Ok(())
}
