//! `py2p demo`: a whole network in one process, to see it work and to measure it.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use py2p::{Encryption, MeshConfig, MeshSocket};

/// What one receiving node saw.
#[derive(Default)]
struct Tally {
    got: HashSet<(u32, u32)>,
    duplicates: u64,
    latencies_us: Vec<u64>,
}

/// Runs the demo; returns whether every node got every message exactly once.
pub fn run(
    nodes: usize,
    messages: usize,
    senders: usize,
    size: usize,
    encryption: Encryption,
) -> Result<bool, String> {
    let nodes = nodes.max(2);
    let senders = senders.clamp(1, nodes);
    let start = Instant::now();
    eprintln!("starting {nodes} nodes on 127.0.0.1 ...");
    let config = || {
        MeshConfig::builder()
            .bind("127.0.0.1:0".parse().expect("literal address"))
            .encryption(encryption)
            .build()
    };
    let mut sockets = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        sockets.push(Arc::new(
            MeshSocket::bind(config()).map_err(|e| e.to_string())?,
        ));
    }
    let seed = sockets[0].local_addr();
    for s in &sockets[1..] {
        s.connect(seed).map_err(|e| e.to_string())?;
    }
    // The network is whole when a probe from the seed reaches every node.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reached = vec![false; nodes];
    reached[0] = true;
    let mut round = 0;
    while reached.iter().any(|r| !r) {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {nodes} nodes joined within 30 s",
                reached.iter().filter(|r| **r).count()
            ));
        }
        round += 1;
        sockets[0]
            .send(&[format!("probe {round}")])
            .map_err(|e| e.to_string())?;
        for (i, s) in sockets.iter().enumerate().skip(1) {
            while let Some(m) =
                s.recv_timeout(Duration::from_millis(if reached[i] { 0 } else { 200 }))
            {
                if m.packets().first().is_some_and(|p| p.starts_with(b"probe")) {
                    reached[i] = true;
                }
            }
        }
    }
    let links: usize = sockets
        .iter()
        .map(|s| s.peers().map(|p| p.len()).unwrap_or(0))
        .sum::<usize>()
        / 2;
    eprintln!(
        "network formed in {:.2?}: {nodes} nodes, {links} links, found from one seed address",
        start.elapsed()
    );

    let epoch = Instant::now();
    let tallies: Vec<Arc<Mutex<Tally>>> = (0..nodes).map(|_| Arc::default()).collect();
    let delivered = Arc::new(AtomicU64::new(0));
    let last_delivery_us = Arc::new(AtomicU64::new(0));
    let expected = (messages * (nodes - 1)) as u64;
    let mut receivers = Vec::new();
    for (s, tally) in sockets.iter().zip(&tallies) {
        let (s, tally, delivered, last) = (
            s.clone(),
            tally.clone(),
            delivered.clone(),
            last_delivery_us.clone(),
        );
        receivers.push(thread::spawn(move || {
            while let Some(m) = s.recv_timeout(Duration::from_secs(20)) {
                let Some(head) = m.packets().first() else {
                    continue;
                };
                let Some((origin, seq, sent_us)) = parse_header(head) else {
                    continue;
                };
                let now_us = epoch.elapsed().as_micros() as u64;
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                if t.got.insert((origin, seq)) {
                    t.latencies_us.push(now_us.saturating_sub(sent_us));
                    drop(t);
                    last.fetch_max(now_us, Ordering::Relaxed);
                    if delivered.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                        return;
                    }
                } else {
                    t.duplicates += 1;
                }
            }
        }));
    }

    eprintln!("broadcasting {messages} messages of {size} bytes from {senders} node(s) ...");
    let filler = "x".repeat(size.saturating_sub(40));
    let send_start_us = epoch.elapsed().as_micros() as u64;
    let mut send_threads = Vec::new();
    for (origin, s) in sockets.iter().take(senders).enumerate() {
        let s = s.clone();
        let filler = filler.clone();
        send_threads.push(thread::spawn(move || -> Result<(), String> {
            let mut seq = 0u32;
            let mut i = origin;
            while i < messages {
                let header = format!("{origin} {seq} {}", epoch.elapsed().as_micros());
                s.send(&[header.as_bytes(), filler.as_bytes()])
                    .map_err(|e| e.to_string())?;
                seq += 1;
                i += senders;
            }
            Ok(())
        }));
    }
    let mut last = 0;
    let wait_deadline = Instant::now() + Duration::from_secs(60 + messages as u64 / 500);
    loop {
        let d = delivered.load(Ordering::Relaxed);
        if d >= expected || Instant::now() > wait_deadline {
            break;
        }
        if d != last {
            eprint!(
                "\r  delivered {d} of {expected} ({:.0}%)   ",
                d as f64 * 100.0 / expected as f64
            );
            let _ = std::io::stderr().flush();
            last = d;
        }
        thread::sleep(Duration::from_millis(250));
    }
    let elapsed = Duration::from_micros(
        last_delivery_us
            .load(Ordering::Relaxed)
            .saturating_sub(send_start_us)
            .max(1),
    );
    for t in send_threads {
        t.join().map_err(|_| "a sender panicked".to_string())??;
    }
    eprintln!();
    for s in &sockets {
        s.close();
    }
    for r in receivers {
        let _ = r.join();
    }

    let mut lat: Vec<u64> = Vec::new();
    let mut duplicates = 0;
    let mut complete = 0;
    let per_node_expected = |i: usize| {
        messages
            - (0..messages)
                .filter(|m| m % senders == i && i < senders)
                .count()
    };
    for (i, t) in tallies.iter().enumerate() {
        let t = t.lock().unwrap_or_else(|p| p.into_inner());
        lat.extend_from_slice(&t.latencies_us);
        duplicates += t.duplicates;
        if t.got.len() == per_node_expected(i) {
            complete += 1;
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let d = delivered.load(Ordering::Relaxed);
    let ok = d == expected && duplicates == 0 && complete == nodes;
    println!(
        "py2p demo: {nodes} nodes, {messages} broadcasts of {size} bytes from {senders} sender(s)"
    );
    println!("  delivered   {d} of {expected} ({complete} of {nodes} nodes complete)");
    println!("  duplicates  {duplicates}");
    println!(
        "  throughput  {:.0} broadcasts/s, {:.0} deliveries/s ({:.2?} until the last delivery)",
        messages as f64 / elapsed.as_secs_f64(),
        d as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    println!(
        "  latency     p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5) as f64 / 1000.0,
        pct(0.9) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "  result      {}",
        if ok {
            "OK: every node got every message exactly once"
        } else {
            "FAILED"
        }
    );
    Ok(ok)
}

fn parse_header(p: &[u8]) -> Option<(u32, u32, u64)> {
    let s = std::str::from_utf8(p).ok()?;
    let mut it = s.split(' ');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}
