//! rust-libp2p as an anchor for py2p-rs's broadcast benchmarks: the same work (200-byte
//! broadcasts on loopback TCP, every node in one process) with gossipsub and floodsub.
//!
//! Usage: `py2p-bench-libp2p [--quick]` (two nodes: N = 50,000, or 20,000 quick; 16 nodes:
//! M = 2,000, or 1,000 quick). Progress goes to stderr; the last line of stdout is
//! one flat JSON object (keys such as `gossipsub.n2.msg_per_s`) that `cargo xtask bench
//! --section libp2p` reads.
//!
//! Measures, each the median of several runs with fresh nodes:
//! - two nodes: B publishes N messages; the time from the first publish until A has
//!   received all N (or nothing arrived for the stall time);
//! - 16 nodes: node `i` dials node 0 and up to three earlier nodes; M broadcasts spread over
//!   the nodes (broadcast `k` published by node `k mod n`); the time until every node holds
//!   every broadcast it did not publish. Duplicates (a broadcast handed to the application
//!   twice) and losses are counted.
//!
//! Configuration: TCP with `nodelay`, noise (XX, X25519), yamux, all defaults otherwise.
//! gossipsub: the library's default configuration (messages signed with Ed25519 and
//! strictly validated, message id = source and sequence number, mesh D = 6, D_lo = 5,
//! D_hi = 12, heartbeat 1 s, flood publishing, handler queue of 5,000, forwards dropped
//! after 1 s in the queue). floodsub: defaults (no signing; a node relays to every
//! subscribed peer it is connected to; duplicates filtered by a cuckoo filter).
//! A publish refused because the queues are full is retried after the swarm has run.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{floodsub, gossipsub, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// Bytes per broadcast, as in py2p-rs's bench.
const PAYLOAD: usize = 200;
/// A run stops when nothing was delivered for this long.
const STALL: Duration = Duration::from_secs(10);
const TOPIC: &str = "bench";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pub-sub protocol under test.
#[derive(Clone, Copy, Debug)]
enum Proto {
    Gossipsub,
    Floodsub,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Gossipsub => "gossipsub",
            Proto::Floodsub => "floodsub",
        }
    }
}

/// One node's behaviour: gossipsub or floodsub.
#[allow(clippy::large_enum_variant)] // one per node, made once
enum Node {
    Gossip(Swarm<gossipsub::Behaviour>),
    Flood(Swarm<floodsub::Behaviour>),
}

/// What a node's event loop reports.
enum Report {
    Listening(usize, Multiaddr, PeerId),
    /// Node `usize` has seen this many peers subscribe.
    Subscribed(usize, usize),
    /// A delivery: receiving node, publishing node, sequence number.
    Delivered(usize, usize, usize),
}

/// What a node's event loop is told.
enum Order {
    Dial(Multiaddr),
    /// Publish these sequence numbers (payloads carry publisher and sequence number).
    Publish(Vec<usize>),
    Stop,
}

fn payload(node: usize, seq: usize) -> Vec<u8> {
    let mut p = format!("{node:05} {seq:010} ").into_bytes();
    p.resize(PAYLOAD, b'x');
    p
}

fn parse(data: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(data.get(..17)?).ok()?;
    Some((text.get(..5)?.parse().ok()?, text.get(6..16)?.parse().ok()?))
}

fn build(proto: Proto) -> Result<Node, BoxError> {
    let builder = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?;
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(300));
    Ok(match proto {
        Proto::Gossipsub => {
            let swarm = builder
                .with_behaviour(|key| {
                    let config = gossipsub::Config::default();
                    gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Signed(key.clone()),
                        config,
                    )
                    .map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()))
                })?
                .with_swarm_config(idle)
                .build();
            Node::Gossip(swarm)
        }
        Proto::Floodsub => {
            let swarm = builder
                .with_behaviour(|key| floodsub::Behaviour::new(key.public().to_peer_id()))?
                .with_swarm_config(idle)
                .build();
            Node::Flood(swarm)
        }
    })
}

/// Runs one node until told to stop.
async fn run_node(
    index: usize,
    node: Node,
    mut orders: mpsc::UnboundedReceiver<Order>,
    reports: mpsc::UnboundedSender<Report>,
) {
    match node {
        Node::Gossip(swarm) => run_gossip(index, swarm, &mut orders, &reports).await,
        Node::Flood(swarm) => run_flood(index, swarm, &mut orders, &reports).await,
    }
}

async fn run_gossip(
    index: usize,
    mut swarm: Swarm<gossipsub::Behaviour>,
    orders: &mut mpsc::UnboundedReceiver<Order>,
    reports: &mpsc::UnboundedSender<Report>,
) {
    let topic = gossipsub::IdentTopic::new(TOPIC);
    let _ = swarm.behaviour_mut().subscribe(&topic);
    let _ = swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("an address"));
    let mut subscribed = 0usize;
    let mut pending: std::collections::VecDeque<usize> = Default::default();
    let mut handle =
        |ev: SwarmEvent<gossipsub::Event>, swarm: &Swarm<gossipsub::Behaviour>| match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let _ = reports.send(Report::Listening(index, address, *swarm.local_peer_id()));
            }
            SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) => {
                subscribed += 1;
                let _ = reports.send(Report::Subscribed(index, subscribed));
            }
            SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                if let Some((from, seq)) = parse(&message.data) {
                    let _ = reports.send(Report::Delivered(index, from, seq));
                }
            }
            _ => {}
        };
    loop {
        // Publish what is pending, letting the swarm run between refusals.
        while let Some(&seq) = pending.front() {
            match swarm
                .behaviour_mut()
                .publish(topic.clone(), payload(index, seq))
            {
                Ok(_) => {
                    pending.pop_front();
                    // Let the swarm hand the message to the connections now and then.
                    while let Some(Some(ev)) = swarm.next().now_or_never() {
                        handle(ev, &swarm);
                    }
                }
                Err(_) => break,
            }
        }
        tokio::select! {
            ev = swarm.select_next_some() => handle(ev, &swarm),
            order = orders.recv() => match order {
                Some(Order::Dial(addr)) => { let _ = swarm.dial(addr); }
                Some(Order::Publish(seqs)) => pending.extend(seqs),
                Some(Order::Stop) | None => return,
            },
            _ = tokio::time::sleep(Duration::from_millis(5)), if !pending.is_empty() => {}
        }
    }
}

async fn run_flood(
    index: usize,
    mut swarm: Swarm<floodsub::Behaviour>,
    orders: &mut mpsc::UnboundedReceiver<Order>,
    reports: &mpsc::UnboundedSender<Report>,
) {
    let topic = floodsub::Topic::new(TOPIC);
    swarm.behaviour_mut().subscribe(topic.clone());
    let _ = swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("an address"));
    let mut subscribed = 0usize;
    let mut handle = |ev: SwarmEvent<floodsub::Event>, swarm: &mut Swarm<floodsub::Behaviour>| {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let _ = reports.send(Report::Listening(index, address, *swarm.local_peer_id()));
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                // floodsub talks only to the peers in its view.
                swarm.behaviour_mut().add_node_to_partial_view(peer_id);
            }
            SwarmEvent::Behaviour(floodsub::Event::Subscribed { .. }) => {
                subscribed += 1;
                let _ = reports.send(Report::Subscribed(index, subscribed));
            }
            SwarmEvent::Behaviour(floodsub::Event::Message(m)) => {
                if let Some((from, seq)) = parse(&m.data) {
                    let _ = reports.send(Report::Delivered(index, from, seq));
                }
            }
            _ => {}
        }
    };
    loop {
        tokio::select! {
            ev = swarm.select_next_some() => handle(ev, &mut swarm),
            order = orders.recv() => match order {
                Some(Order::Dial(addr)) => { let _ = swarm.dial(addr); }
                Some(Order::Publish(seqs)) => {
                    for seq in seqs {
                        swarm.behaviour_mut().publish(topic.clone(), payload(index, seq));
                        while let Some(Some(ev)) = swarm.next().now_or_never() {
                            handle(ev, &mut swarm);
                        }
                    }
                }
                Some(Order::Stop) | None => return,
            },
        }
    }
}

/// The result of one run.
struct Run {
    secs: f64,
    delivered: usize,
    expected: usize,
    duplicates: usize,
}

/// One run: `n` nodes, `m` broadcasts spread over them (all from node 1 when `n` is 2).
async fn run(proto: Proto, n: usize, m: usize) -> Result<Run, BoxError> {
    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let mut orders = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        orders.push(tx);
        tasks.push(tokio::spawn(run_node(
            i,
            build(proto)?,
            rx,
            report_tx.clone(),
        )));
    }
    drop(report_tx);
    let mut addrs: Vec<Option<Multiaddr>> = vec![None; n];
    while addrs.iter().any(Option::is_none) {
        match tokio::time::timeout(Duration::from_secs(30), reports.recv()).await? {
            Some(Report::Listening(i, a, peer)) => {
                addrs[i] = Some(a.with(libp2p::multiaddr::Protocol::P2p(peer)))
            }
            Some(_) => {}
            None => return Err("nodes stopped".into()),
        }
    }
    let addr = |i: usize| addrs[i].clone().ok_or("no address");
    // Node i dials node 0 and up to three earlier nodes (an ordered, connected graph).
    let mut links = 0usize;
    let mut degree = vec![0usize; n];
    for i in 1..n {
        let mut targets = vec![0];
        for t in [i - 1, i / 2, (i * 7 + 3) % i] {
            if !targets.contains(&t) && targets.len() < 4 {
                targets.push(t);
            }
        }
        for t in targets {
            orders[i].send(Order::Dial(addr(t)?))?;
            links += 1;
            degree[i] += 1;
            degree[t] += 1;
        }
    }
    // Ready when every node has seen each of its neighbours subscribe.
    let mut subscribed = vec![0usize; n];
    while subscribed.iter().zip(&degree).any(|(s, d)| s < d) {
        match tokio::time::timeout(Duration::from_secs(30), reports.recv()).await? {
            Some(Report::Subscribed(i, k)) => subscribed[i] = k,
            Some(_) => {}
            None => return Err("nodes stopped".into()),
        }
    }
    // Let gossipsub's heartbeat build its mesh.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    eprintln!("  {} nodes, {links} links, subscribed", n);
    let mut per_node: Vec<Vec<usize>> = vec![Vec::new(); n];
    for k in 0..m {
        let from = if n == 2 { 1 } else { k % n };
        per_node[from].push(k);
    }
    let start = Instant::now();
    for (i, seqs) in per_node.into_iter().enumerate() {
        if !seqs.is_empty() {
            orders[i].send(Order::Publish(seqs))?;
        }
    }
    let expected = if n == 2 { m } else { m * (n - 1) };
    // seen[node][seq]
    let mut seen: Vec<Vec<bool>> = vec![vec![false; m]; n];
    let mut delivered = 0usize;
    let mut duplicates = 0usize;
    let mut last = Instant::now();
    while delivered < expected {
        match tokio::time::timeout(STALL, reports.recv()).await {
            Ok(Some(Report::Delivered(at, _from, seq))) => {
                match seen.get_mut(at).and_then(|s| s.get_mut(seq)) {
                    Some(slot) if !*slot => {
                        *slot = true;
                        delivered += 1;
                        last = Instant::now();
                    }
                    Some(_) => duplicates += 1,
                    None => {}
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let secs = (last - start).as_secs_f64();
    for o in &orders {
        let _ = o.send(Order::Stop);
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(Run {
        secs,
        delivered,
        expected,
        duplicates,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = Map::new();
    out.insert("quick".into(), Value::Bool(quick));
    let runs = if quick { 1 } else { 3 };
    // (nodes, broadcasts): the two-node and 16-node measures of py2p-rs's bench.
    // (16 nodes: 2,000 broadcasts, not our 10,000: floodsub delivers under 100 a second
    // there, and a run would take minutes.)
    let shapes: [(usize, usize); 2] = if quick {
        [(2, 20_000), (16, 1_000)]
    } else {
        [(2, 50_000), (16, 2_000)]
    };
    for proto in [Proto::Gossipsub, Proto::Floodsub] {
        for &(n, m) in &shapes {
            let mut secs = Vec::new();
            let mut rates = Vec::new();
            let mut worst = usize::MAX;
            let mut expected = 0;
            let mut duplicates = 0;
            for r in 0..runs {
                let result = runtime.block_on(run(proto, n, m))?;
                eprintln!(
                    "{} n={n} m={m} run {r}: {:.3}s, {}/{} delivered, {} duplicates, {:.0} deliveries/s",
                    proto.name(),
                    result.secs,
                    result.delivered,
                    result.expected,
                    result.duplicates,
                    result.delivered as f64 / result.secs
                );
                // A run that lost messages counts the broadcasts it delivered in full.
                let per_broadcast = if n == 2 { 1 } else { n - 1 };
                rates.push(result.delivered as f64 / per_broadcast as f64 / result.secs);
                secs.push(result.secs);
                worst = worst.min(result.delivered);
                expected = result.expected;
                duplicates += result.duplicates;
            }
            let s = median(secs);
            let rate = median(rates);
            let key = format!("{}.n{n}", proto.name());
            out.insert(format!("{key}.messages"), Value::from(m));
            out.insert(format!("{key}.runs"), Value::from(runs));
            out.insert(format!("{key}.secs"), Value::from(s));
            // Broadcasts per second (delivered to every node), median of the runs.
            out.insert(format!("{key}.msg_per_s"), Value::from(rate.round()));
            let per_broadcast = if n == 2 { 1 } else { n - 1 };
            out.insert(
                format!("{key}.deliveries_per_s"),
                Value::from((rate * per_broadcast as f64).round()),
            );
            out.insert(format!("{key}.delivered_min"), Value::from(worst));
            out.insert(format!("{key}.expected"), Value::from(expected));
            out.insert(format!("{key}.duplicates"), Value::from(duplicates));
        }
    }
    out.insert(
        "config".into(),
        Value::String(
            "TCP nodelay + noise + yamux; gossipsub defaults (Ed25519 signing, strict validation, \
             D=6 D_lo=5 D_hi=12, heartbeat 1 s, flood publish, queue 5000, forward timeout 1 s); \
             floodsub defaults (no signing)"
                .into(),
        ),
    );
    println!("{}", Value::Object(out));
    Ok(())
}

// `NetworkBehaviour` is used through `Swarm`'s bounds.
#[allow(dead_code)]
fn _assert_behaviours() {
    fn is_behaviour<B: NetworkBehaviour>() {}
    is_behaviour::<gossipsub::Behaviour>();
    is_behaviour::<floodsub::Behaviour>();
}
