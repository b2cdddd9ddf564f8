//! The command line as a user meets it: help that lists the stdin commands, exit codes
//! (0 ok, 1 runtime failure, 2 usage), enumerated options that list their values, host
//! names, and `error` events for bad stdin commands and failed dials.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn py2p(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_py2p"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_the_stdin_commands_of_each_node() {
    let mesh = py2p(&["mesh", "--help"], "");
    assert_eq!(mesh.status.code(), Some(0));
    let out = text(&mesh.stdout);
    for cmd in ["/whisper ID TEXT", "/peers", "/quit"] {
        assert!(out.contains(cmd), "mesh --help lacks {cmd}:\n{out}");
    }
    let sync = text(&py2p(&["sync", "--help"], "").stdout);
    for cmd in [
        "/set KEY VALUE",
        "/get KEY",
        "/del KEY",
        "/whisper",
        "/quit",
    ] {
        assert!(sync.contains(cmd), "sync --help lacks {cmd}:\n{sync}");
    }
}

#[test]
fn an_unknown_compression_is_a_usage_error_that_lists_the_values() {
    for args in [
        &["mesh", "--compression", "foo"][..],
        &["sync", "--compression", "foo"][..],
        &["decode", "--compression", "foo"][..],
    ] {
        let out = py2p(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("snappy") && err.contains("lzma"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        py2p(&["mesh", "--bind", "nohost"], "").status.code(),
        Some(2)
    );
    assert_eq!(py2p(&["frobnicate"], "").status.code(), Some(2));
}

#[test]
fn decode_and_encode_exit_1_when_a_line_fails() {
    let bad = py2p(&["decode"], "zz\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stdout).contains("\"error\""));
    // One good line of two still fails the run.
    let encoded = py2p(
        &["encode"],
        "{\"msg_type\":\"00\",\"sender\":\"6162\",\"time\":58,\"payload\":[\"00\",\"68\"]}\n",
    );
    assert_eq!(encoded.status.code(), Some(0), "{}", text(&encoded.stderr));
    let good = text(&encoded.stdout);
    let ok = py2p(&["decode"], &good);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    let mixed = py2p(&["decode"], &format!("{good}0000\n"));
    assert_eq!(mixed.status.code(), Some(1));
    assert_eq!(py2p(&["encode"], "not json\n").status.code(), Some(1));
}

#[test]
fn a_busy_address_is_a_runtime_error_said_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = py2p(&["mesh", "--bind", &addr], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("in use").count(),
        1,
        "the cause is printed once: {err}"
    );
}

/// A node started with a host name in `--bind`, a dial to a closed port, and a bad
/// `/whisper`: each failure is an `error` event, and `/quit` exits 0.
#[test]
fn a_node_reports_a_failed_dial_and_a_bad_whisper_as_error_events() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_py2p"))
        .args(["mesh", "--bind", "localhost:0", "--connect", &closed])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let next = || rx.recv_timeout(WAIT).expect("an event line");
    let ready = next();
    assert_eq!(ready["event"], "ready");
    assert!(ready["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    let failed = next();
    assert_eq!(failed["event"], "error", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("refused"),
        "{failed}"
    );
    writeln!(stdin, "/whisper SOMEID").unwrap();
    let usage = next();
    assert_eq!(usage["event"], "error");
    assert!(usage["message"].as_str().unwrap().contains("usage"));
    writeln!(stdin, "/quit").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
