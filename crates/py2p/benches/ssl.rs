//! What SSL mode costs: two-node broadcast over TLS against plaintext, and the rate of
//! TLS + py2p handshakes one node accepts. py2p 0.5.607's SSL figure comes from
//! `interop/bench_reference_ssl.py` in the same session.
//!
//! - `broadcast`: node B broadcasts N 200-byte messages to node A; the time from B's first
//!   `send` to A having all N (checked complete and in order). Runs alternate plaintext and
//!   SSL, fresh nodes each; the median of each is reported.
//! - `handshakes`: K nodes are bound first; then all dial node A at once; the time until A
//!   lists K peers (TCP + TLS + py2p handshakes) gives connections per second.
//!
//! Usage: `cargo bench -p py2p --bench ssl -- [--quick]`. The last line of stdout is one
//! flat JSON object with the results.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use py2p::{Encryption, MeshConfig, MeshSocket};
use serde_json::{json, Map, Value};

const PAYLOAD: usize = 200;
const STALL: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

fn node(enc: Encryption) -> Result<MeshSocket> {
    MeshSocket::bind(
        MeshConfig::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .encryption(enc)
            .build(),
    )
    .map_err(|e| format!("bind: {e}"))
}

fn broadcast_run(n: usize, enc: Encryption) -> Result<(f64, bool)> {
    let (a, b) = (node(enc)?, node(enc)?);
    b.connect(a.local_addr())
        .map_err(|e| format!("connect: {e}"))?;
    a.wait_for_peers(1, CONNECT_TIMEOUT)
        .map_err(|e| format!("wait: {e}"))?;
    b.wait_for_peers(1, CONNECT_TIMEOUT)
        .map_err(|e| format!("wait: {e}"))?;
    let result = thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let a = &a;
        let receiver = s.spawn(move || {
            let _ = ready_tx.send(());
            let mut ok = true;
            for i in 0..n {
                let Some(m) = a.recv_timeout(STALL) else {
                    return (Instant::now(), false);
                };
                let p = m.packets();
                ok &= p.len() == 1
                    && p[0].len() == PAYLOAD
                    && p[0].starts_with(format!("{i:010}").as_bytes());
            }
            (Instant::now(), ok)
        });
        let _ = ready_rx.recv();
        let mut buf = [b'x'; PAYLOAD];
        let start = Instant::now();
        for i in 0..n {
            buf[..10].copy_from_slice(format!("{i:010}").as_bytes());
            if b.send(&[&buf[..]]).is_err() {
                break;
            }
        }
        let (end, ok) = receiver.join().unwrap_or((Instant::now(), false));
        ((end - start).as_secs_f64(), ok)
    });
    a.close();
    b.close();
    Ok(result)
}

fn handshake_run(k: usize, enc: Encryption) -> Result<f64> {
    let a = node(enc)?;
    let others: Vec<MeshSocket> = (0..k).map(|_| node(enc)).collect::<Result<_>>()?;
    let start = Instant::now();
    for o in &others {
        o.connect(a.local_addr())
            .map_err(|e| format!("connect: {e}"))?;
    }
    a.wait_for_peers(k, CONNECT_TIMEOUT)
        .map_err(|e| format!("wait: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    for o in &others {
        o.close();
    }
    a.close();
    Ok(k as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut out = Map::new();
    let runs = if quick { 3 } else { 7 };
    let mut ok = true;
    for n in [2_000usize, 10_000] {
        let (mut plain, mut ssl) = (Vec::new(), Vec::new());
        for r in 0..runs {
            for (enc, list) in [
                (Encryption::Plaintext, &mut plain),
                (Encryption::Ssl, &mut ssl),
            ] {
                match broadcast_run(n, enc) {
                    Ok((secs, complete)) => {
                        eprintln!(
                            "broadcast n={n} {enc} run {r}: {:.1} ms{}",
                            secs * 1e3,
                            if complete { "" } else { " INCOMPLETE" }
                        );
                        ok &= complete;
                        list.push(n as f64 / secs);
                    }
                    Err(e) => {
                        eprintln!("broadcast n={n} {enc}: {e}");
                        ok = false;
                    }
                }
            }
        }
        if plain.is_empty() || ssl.is_empty() {
            continue;
        }
        let (p, s) = (median(plain), median(ssl));
        out.insert(
            format!("broadcast.n{n}.plaintext.msg_per_s"),
            json!(p.round()),
        );
        out.insert(format!("broadcast.n{n}.ssl.msg_per_s"), json!(s.round()));
        out.insert(
            format!("broadcast.n{n}.ssl_vs_plaintext"),
            json!((s / p * 1000.0).round() / 1000.0),
        );
    }
    let k = 50;
    for enc in [Encryption::Plaintext, Encryption::Ssl] {
        let rates: Vec<f64> = (0..runs.min(5))
            .filter_map(|_| {
                handshake_run(k, enc)
                    .map_err(|e| eprintln!("handshakes {enc}: {e}"))
                    .ok()
            })
            .collect();
        if rates.is_empty() {
            ok = false;
            continue;
        }
        let rate = median(rates);
        eprintln!("handshakes {enc}: {rate:.0} connections/s");
        out.insert(
            format!(
                "handshakes.k{k}.{}.conn_per_s",
                enc.py2p_name().to_lowercase()
            ),
            json!(rate.round()),
        );
    }
    out.insert("ok".into(), Value::Bool(ok));
    println!("{}", Value::Object(out));
}
