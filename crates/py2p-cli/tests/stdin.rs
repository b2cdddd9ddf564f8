//! A node's stdin as a program feeds it: thousands of lines in large writes, commands among
//! them, a line longer than a read, invalid UTF-8 and a last line without its newline. Every
//! line is broadcast exactly once and in order, and each command runs in its place.

mod common;

use common::Node;
use serde_json::Value;

/// The first packet of every broadcast `node` printed so far, in order.
fn broadcasts(node: &Node) -> Vec<String> {
    node.lines(|v| v["event"] == "message" && v["kind"] == "broadcast")
        .iter()
        .map(|v| v["packets"][0].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Two CLI nodes, `b` having dialled `a`, each seeing the other connected.
fn connected_pair() -> (Node, Node) {
    let a = Node::rust("a", &["mesh", "--bind", "127.0.0.1:0"]);
    let b = Node::rust(
        "b",
        &["mesh", "--bind", "127.0.0.1:0", "--connect", &a.addr],
    );
    a.wait_connected(&b);
    b.wait_connected(&a);
    (a, b)
}

#[test]
fn a_burst_of_lines_with_commands_among_them_arrives_once_in_order() {
    let (a, mut b) = connected_pair();

    // What b is fed, and what a must see broadcast, in order.
    let mut input = Vec::new();
    let mut want: Vec<String> = Vec::new();
    let long = "L".repeat(100 * 1024); // longer than one read of stdin
    for i in 0..5_000 {
        match i {
            1_000 => input.extend_from_slice(b"/peers\n"),
            2_000 => input.extend_from_slice(format!("/whisper {} w\n", a.id).as_bytes()),
            2_500 => {
                input.extend_from_slice(long.as_bytes());
                input.push(b'\n');
                want.push(long.clone());
            }
            3_000 => {
                // Not UTF-8: sent as its lossy text, with a CRLF ending.
                input.extend_from_slice(b"bad \xff\r\n");
                want.push("bad \u{fffd}".to_owned());
            }
            _ => {}
        }
        let line = format!("line {i:05} {}", "x".repeat(180));
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        want.push(line);
    }
    b.send_raw(&input);
    // Sent after everything: once a has it, a has all it will get of the lines before.
    b.send("end");
    want.push("end".to_owned());
    a.wait_message("end");

    // The whisper, and b's reply to /peers naming a.
    a.wait_for("the whisper", |v| {
        v["event"] == "message" && v["kind"] == "whisper" && v["packets"][0] == "w"
    });
    let peers = b.wait_for("peers", |v| v["event"] == "peers");
    let ids: Vec<&Value> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, [&Value::from(a.id.as_str())]);
    assert!(b.lines(|v| v["event"] == "error").is_empty());

    // The whisper took the same connection in its place: right after the lines before it.
    let all: Vec<String> = a
        .lines(|v| v["event"] == "message")
        .iter()
        .map(|v| v["packets"][0].as_str().unwrap_or_default().to_owned())
        .collect();
    let w = all.iter().position(|t| t == "w").unwrap();
    assert!(all[w - 1].starts_with("line 01999 "), "{:.20}", all[w - 1]);

    // Every line exactly once, in order.
    let got = broadcasts(&a);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g == w, "message {i}: got {g:.40?}, want {w:.40?}");
    }

    // The end of input: a last line without its newline is still a line.
    b.send_raw(b"tail without newline");
    b.close_stdin();
    a.wait_message("tail without newline");
}

/// A line typed by hand goes out on its own, and is printed on its own, at once: nothing
/// waits for more input, a fuller batch or the end of stdin. Each line is awaited at the
/// peer before the next is written, with stdin left open.
#[test]
fn a_typed_line_is_sent_and_printed_without_waiting_for_more() {
    let (a, mut b) = connected_pair();
    for i in 0..5 {
        let line = format!("typed {i}");
        b.send(&line);
        a.wait_message(&line);
    }
    assert_eq!(
        broadcasts(&a),
        (0..5).map(|i| format!("typed {i}")).collect::<Vec<_>>()
    );
}
