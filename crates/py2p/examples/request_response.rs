//! A request/response service on a sub-protocol of its own: clients whisper a request with the
//! sub-flag `ADD`; the service's handler answers on the connection it came on with the
//! sub-flag `SUM`. The same message types work with py2p programs (py2p's
//! `send(*packets, flag=whisper, type=b'\x30')` and a `handler(msg, conn)`).
//!
//! ```sh
//! cargo run -p py2p --example request_response
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

/// Sub-flag of a request: two decimal numbers.
const ADD: u8 = 0x30;
/// Sub-flag of an answer: their sum, or an error text.
const SUM: u8 = 0x31;
const WAIT: Duration = Duration::from_secs(30);

fn add(packets: py2p::Payload<'_>) -> Result<String, String> {
    let number = |i: usize| -> Result<i64, String> {
        let text = packets.get(i).ok_or("two numbers expected")?;
        String::from_utf8_lossy(text)
            .trim()
            .parse::<i64>()
            .map_err(|e| e.to_string())
    };
    number(0)?
        .checked_add(number(1)?)
        .map(|n| n.to_string())
        .ok_or_else(|| "overflow".to_owned())
}

/// Runs a service and a client; `pub` so that the tests can run it too.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = || {
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().expect("an address"))
            .build()
    };
    let service = MeshSocket::bind(bind())?;
    // The handler runs on the node's event-loop thread: it answers without waiting.
    service.register_handler(|msg, conn| {
        if msg.sub_flag() != Some(ADD) {
            return false; // not ours: on to recv
        }
        let answer = add(msg.packets()).unwrap_or_else(|e| format!("error: {e}"));
        if let Err(e) = conn.send(MessageKind::Whisper, SUM, &[answer]) {
            eprintln!("cannot answer {}: {e}", msg.sender());
        }
        true
    })?;

    let client = MeshSocket::bind(bind())?;
    client.connect(service.local_addr())?;
    for (a, b) in [("2", "40"), ("-7", "7"), ("x", "1")] {
        client.whisper_with(service.id(), ADD, &[a, b])?;
        let answer = loop {
            let msg = client.recv_timeout(WAIT).ok_or("an answer in time")?;
            if msg.sub_flag() == Some(SUM) {
                break msg;
            }
        };
        let text = String::from_utf8_lossy(&answer.packets()[0]).into_owned();
        println!("{a} + {b} = {text}");
        match (a, b) {
            ("2", "40") => assert_eq!(text, "42"),
            ("-7", "7") => assert_eq!(text, "0"),
            _ => assert!(text.starts_with("error")),
        }
    }
    Ok(())
}
