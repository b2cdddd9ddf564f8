//! The same scenarios through the simulator and through real sockets (a `MeshSocket` on its
//! mio event loop): both drive the same `py2p_net::Endpoint` under the same `MeshCore`, so
//! they must reach the same outcome. The simulator once closed the newcomer at
//! `max_connections` where the daemon evicts the oldest unidentified connection; these
//! tests would catch such a drift.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use py2p_wire::{Flag, Message};

use super::network::{node_addr, PORT};
use super::{Sim, SimConfig};
use py2p::{MeshConfig, MeshSocket, PeerEvent};

/// A failure bound, never a synchronisation.
const WAIT: Duration = Duration::from_secs(30);

/// Connections a node holds at most in the cap scenario.
const CAP: usize = 4;

fn cap_config() -> MeshConfig {
    MeshConfig::builder()
        .bind(([127, 0, 0, 1], 0).into())
        .max_connections(CAP)
        .build()
}

/// Per-peer write budget in the budget scenario.
const BUDGET: usize = 1 << 20;

fn budget_config() -> MeshConfig {
    MeshConfig::builder()
        .bind(([127, 0, 0, 1], 0).into())
        .max_write_queue(BUDGET)
        .build()
}

/// A py2p handshake frame (header included) from a peer with this id and address.
fn handshake(id: &str, protocol_id: &str, out: (&str, u16), time: u64) -> Vec<u8> {
    let addr = format!("[\"{}\", {}]", out.0, out.1);
    Message::new(
        vec![Flag::WHISPER.0],
        id.as_bytes().to_vec(),
        vec![
            vec![Flag::HANDSHAKE.0],
            id.as_bytes().to_vec(),
            protocol_id.as_bytes().to_vec(),
            addr.into_bytes(),
            b"[]".to_vec(),
        ],
        time,
    )
    .encode(None)
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::yield_now();
    }
}

/// Reads what the node sent (its handshake) until it closes the connection: `false` when it
/// did not within [`WAIT`].
fn read_to_close(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// What the cap scenario ends with.
#[derive(Debug, PartialEq, Eq)]
struct CapOutcome {
    /// For each silent peer, in the order they connected: whether the node closed it.
    closed: Vec<bool>,
    /// Unidentified connections the node still holds.
    awaiting_handshake: usize,
    /// Whether the honest peer and the node route to each other.
    honest_routed: bool,
}

/// `CAP` peers connect and say nothing; then an honest node connects: the oldest silent
/// connection is evicted to make room (`Service::make_room`), the others stay.
fn cap_expected() -> CapOutcome {
    CapOutcome {
        closed: (0..CAP).map(|i| i == 0).collect(),
        awaiting_handshake: CAP - 1,
        honest_routed: true,
    }
}

#[test]
fn cap_with_half_open_connections_then_an_honest_peer_in_the_simulator() {
    let config = SimConfig {
        mesh: cap_config(),
        ..SimConfig::default()
    };
    let mut sim = Sim::new(10, config);
    let node = sim.add_node();
    let silent: Vec<usize> = (0..CAP).map(|_| sim.add_scripted_peer()).collect();
    for &s in &silent {
        sim.scripted_dial_node(s, node);
        sim.run_for(Duration::from_millis(500));
        assert!(sim.scripted(s).is_some_and(|p| !p.open.is_empty()));
    }
    let honest = sim.add_node();
    sim.connect(honest, node);
    sim.run_for(Duration::from_secs(3));
    let (node_id, honest_id) = (sim.id(node).to_owned(), sim.id(honest).to_owned());
    let outcome = CapOutcome {
        closed: silent
            .iter()
            .map(|&s| sim.scripted(s).is_some_and(|p| p.open.is_empty()))
            .collect(),
        awaiting_handshake: sim.status(node).map_or(0, |s| s.awaiting_handshake),
        honest_routed: sim.peers(node).iter().any(|p| p.id == honest_id)
            && sim.peers(honest).iter().any(|p| p.id == node_id),
    };
    assert_eq!(outcome, cap_expected());
}

#[test]
fn cap_with_half_open_connections_then_an_honest_peer_over_sockets() {
    let node = MeshSocket::bind(cap_config()).unwrap();
    let addr = node.local_addr();
    let mut silent = Vec::new();
    for i in 0..CAP {
        silent.push(TcpStream::connect(addr).unwrap());
        // One at a time, so that the oldest is the first.
        wait_until("a silent peer is accepted", || {
            node.status().unwrap().connections == i + 1
        });
    }
    let honest = MeshSocket::bind(
        MeshConfig::builder()
            .bind(([127, 0, 0, 1], 0).into())
            .build(),
    )
    .unwrap();
    honest.connect(addr).unwrap();
    wait_until("the honest peer is routed both ways", || {
        node.peers().unwrap().iter().any(|p| p.id == honest.id())
            && honest.peers().unwrap().iter().any(|p| p.id == node.id())
    });
    let first_closed = read_to_close(&mut silent[0]);
    let status = node.status().unwrap();
    // The node holds the honest peer and the silent connections it did not close.
    let held_silent = status.connections - 1;
    let outcome = CapOutcome {
        closed: (0..CAP)
            .map(|i| {
                if i == 0 {
                    first_closed
                } else {
                    held_silent < CAP - i
                }
            })
            .collect(),
        awaiting_handshake: status.awaiting_handshake,
        honest_routed: true,
    };
    assert_eq!(outcome, cap_expected());
    node.close();
    honest.close();
}

/// What the budget scenario ends with.
#[derive(Debug, PartialEq, Eq)]
struct BudgetOutcome {
    /// The node dropped the peer that stopped reading (it left the routing table).
    stalled_dropped: bool,
    /// The honest reader got every broadcast, before and after.
    reader_got_all: bool,
    /// Broadcasts sent before the drop, in units of the per-peer budget's worth.
    budgets_before_drop: usize,
}

fn budget_expected(outcome: &BudgetOutcome) -> bool {
    outcome.stalled_dropped && outcome.reader_got_all && outcome.budgets_before_drop >= 1
}

/// A body of `len` bytes that no compressor shrinks, different for every `k`.
fn body(k: usize, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const BODY: usize = 64 << 10;
/// Broadcasts at most (the loopback kernel buffers can hold several MiB).
const MAX_BROADCASTS: usize = 2000;

#[test]
fn a_peer_that_stops_reading_is_dropped_when_its_budget_bites_in_the_simulator() {
    let config = SimConfig {
        mesh: budget_config(),
        ..SimConfig::default()
    };
    let mut sim = Sim::new(11, config);
    let node = sim.add_node();
    let reader = sim.add_node();
    sim.connect(reader, node);
    let stalled = sim.add_scripted_peer();
    sim.scripted_dial_node(stalled, node);
    sim.run_for(Duration::from_secs(1));
    let stalled_id = "StalledPeerStalledPeerStalledPeer";
    let protocol_id = sim.status(node).map(|s| s.protocol_id).unwrap_or_default();
    let host = node_addr(stalled).ip().to_string();
    let frame = handshake(stalled_id, &protocol_id, (&host, PORT), sim.unix_time());
    assert!(sim.scripted_send(stalled, frame));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.peers(node).iter().any(|p| p.id == stalled_id));
    sim.stop_reading(stalled);
    let mut sent = 0;
    let mut dropped = false;
    while sent < MAX_BROADCASTS && !dropped {
        sim.broadcast(node, &[body(sent, BODY)]);
        sent += 1;
        sim.run_for(Duration::from_millis(100));
        dropped = !sim.peers(node).iter().any(|p| p.id == stalled_id);
    }
    sim.broadcast(node, &[b"after".to_vec()]);
    sim.run_for(Duration::from_secs(2));
    let outcome = BudgetOutcome {
        stalled_dropped: dropped,
        reader_got_all: sim.received(reader).len() == sent + 1,
        budgets_before_drop: sent * BODY / BUDGET,
    };
    assert!(budget_expected(&outcome), "{outcome:?}");
}

#[test]
fn a_peer_that_stops_reading_is_dropped_when_its_budget_bites_over_sockets() {
    let node = MeshSocket::bind(budget_config()).unwrap();
    let reader = MeshSocket::bind(
        MeshConfig::builder()
            .bind(([127, 0, 0, 1], 0).into())
            .build(),
    )
    .unwrap();
    reader.connect(node.local_addr()).unwrap();
    let mut stalled = TcpStream::connect(node.local_addr()).unwrap();
    let stalled_id = "StalledPeerStalledPeerStalledPeer";
    let port = stalled.local_addr().unwrap().port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let frame = handshake(stalled_id, node.protocol_id(), ("127.0.0.1", port), now);
    stalled.write_all(&frame).unwrap();
    wait_until("both peers are routed", || {
        let peers = node.peers().unwrap();
        peers.iter().any(|p| p.id == stalled_id) && peers.iter().any(|p| p.id == reader.id())
    });
    // From here on the stalled peer reads nothing.
    let mut sent = 0;
    let mut dropped = false;
    while sent < MAX_BROADCASTS && !dropped {
        node.send(&[body(sent, BODY)]).unwrap();
        sent += 1;
        // Each broadcast reaches the reader before the next is sent: only the stalled
        // peer's queue grows.
        assert!(reader.recv_timeout(WAIT).is_some(), "broadcast {sent} lost");
        while let Some(event) = node.next_event(Duration::ZERO) {
            if event
                == (PeerEvent::Disconnected {
                    id: stalled_id.to_owned(),
                })
            {
                dropped = true;
            }
        }
    }
    node.send(&[b"after".to_vec()]).unwrap();
    let after = reader.recv_timeout(WAIT);
    let outcome = BudgetOutcome {
        stalled_dropped: dropped,
        reader_got_all: after.is_some_and(|m| m.packets() == [b"after".to_vec()]),
        budgets_before_drop: sent * BODY / BUDGET,
    };
    assert!(budget_expected(&outcome), "{outcome:?}");
    drop(stalled);
    node.close();
    reader.close();
}
