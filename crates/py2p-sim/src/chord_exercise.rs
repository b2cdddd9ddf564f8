//! Body of the `chord_node` fuzz target: a real chord node under a peer that the fuzzer
//! scripts, in a [`Sim`].
//!
//! Three simulated nodes: node 0, the chord node under test (small limits, so that the
//! script can reach them), node 1 an honest chord node linked to it, both joined, and
//! node 2 a scripted peer that dials node 0, completes a handshake on the chord subnet and
//! then sends chord messages the input chooses. The input: byte 0 the simulation's seed,
//! then operations of four bytes `[op, a, b, c]` (bytes past the end read 0):
//!
//! | op % 11 | sends |
//! |---|---|
//! | 0 | meta `"0"`, `"1"` or garbage |
//! | 1 | notify, py2p's three-packet delete notify, or ours |
//! | 2 | store of a valid slot, values up to past `max_value_len`, or empty |
//! | 3 | store with a bad table name |
//! | 4 | store with a key out of range, not base-58, or too long |
//! | 5 | retrieve of a valid slot |
//! | 6 | a flood of `8a` retrieves of distinct keys |
//! | 7 | retrieved nobody asked for |
//! | 8 | backup: a copy, an empty one, one past `max_value_len` |
//! | 9 | a chord sub-flag with the wrong number of packets |
//! | 10 | virtual time passes (`10a` ms) |
//!
//! Then the peer hangs up, and: no panic; node 0's table within `max_table_bytes`, its
//! lookups within `max_pending_lookups`; nodes 0 and 1 still linked; a key set on either
//! reads on the other.

// A fuzz exercise: a broken invariant must panic, so the fuzzer records it.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use py2p_wire::{base58, Flag, Message, Protocol};
use sha2::{Digest, Sha384};

use super::exercise::Reached;
use super::{Sim, SimConfig};
use py2p::chord::Method;
use py2p::ChordConfig;

/// Most operations run from one input.
pub const MAX_OPS: usize = 256;

const NODE: usize = 0;
const HONEST: usize = 1;
const PEER: usize = 2;

/// The limits of the node under test.
fn limits() -> ChordConfig {
    ChordConfig {
        max_table_bytes: 64 << 10,
        max_value_len: 4096,
        max_keys: 64,
        max_pending_lookups: 32,
        max_waiters_per_lookup: 4,
        ..ChordConfig::default()
    }
}

/// A chord node under a scripted peer (see the [module docs](self)). Panics when a check
/// fails.
pub fn chord_node(data: &[u8]) -> Reached {
    log::set_max_level(log::LevelFilter::Trace);
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut sim = Sim::new(u64::from(byte(0)), SimConfig::default());
    sim.add_chord_node_with(limits());
    sim.add_chord_node();
    sim.connect(HONEST, NODE);
    sim.run_for(Duration::from_secs(2));
    sim.chord_join(NODE);
    sim.chord_join(HONEST);
    let peer = sim.add_scripted_peer();
    sim.scripted_dial_node(peer, NODE);
    sim.run_for(Duration::from_secs(1));

    let id = base58::encode_be_bytes(&Sha384::digest(b"the scripted chord peer"));
    let protocol = Protocol::new("chord", py2p_wire::Encryption::Plaintext).id();
    let frame = |sim: &Sim, payload: Vec<Vec<u8>>| {
        Message::new(
            vec![Flag::WHISPER.0],
            id.as_bytes().to_vec(),
            payload,
            sim.unix_time(),
        )
        .encode(None)
    };
    let handshake = vec![
        vec![Flag::HANDSHAKE.0],
        id.as_bytes().to_vec(),
        protocol.into_bytes(),
        br#"["10.255.0.2", 4444]"#.to_vec(),
        b"[]".to_vec(),
    ];
    let f = frame(&sim, handshake);
    sim.scripted_send(PEER, f);
    let f = frame(&sim, vec![vec![Flag::HANDSHAKE.0], b"0".to_vec()]);
    sim.scripted_send(PEER, f);
    sim.run_for(Duration::from_millis(200));

    let mut ops = 0u64;
    let mut i = 1;
    while i < data.len() && (ops as usize) < MAX_OPS {
        let (op, a, b, c) = (byte(i), byte(i + 1), byte(i + 2), byte(i + 3));
        i += 4;
        ops += 1;
        let method = Method::ALL[usize::from(a) % 5];
        let slot = method.hash(format!("k{b}").as_bytes());
        let store = |value: Vec<u8>| {
            vec![
                vec![Flag::STORE.0],
                method.name().as_bytes().to_vec(),
                slot.to_base58().into_bytes(),
                value,
            ]
        };
        let payloads: Vec<Vec<Vec<u8>>> = match op % 11 {
            0 => vec![vec![
                vec![Flag::HANDSHAKE.0],
                match a % 3 {
                    0 => b"0".to_vec(),
                    1 => b"1".to_vec(),
                    _ => vec![b; usize::from(c) % 8],
                },
            ]],
            1 => {
                let mut p = vec![vec![Flag::NOTIFY.0], format!("k{b}").into_bytes()];
                if a % 3 > 0 {
                    p.push(b"del".to_vec());
                }
                if a % 3 == 2 {
                    p.push(b"1".to_vec());
                }
                vec![p]
            }
            2 => vec![store(match c {
                0 => Vec::new(),
                255 => vec![b'v'; limits().max_value_len + 1],
                n => vec![b'v'; usize::from(n) * 13],
            })],
            3 => vec![vec![
                vec![Flag::STORE.0],
                [b"md5".as_slice(), b"", &[a, b, c]][usize::from(a) % 3].to_vec(),
                slot.to_base58().into_bytes(),
                b"v".to_vec(),
            ]],
            4 => {
                let key = match a % 3 {
                    0 => Method::Sha512.hash(&[b]).to_base58().into_bytes(),
                    1 => b"0OIl".to_vec(),
                    _ => vec![b'z'; 89 + usize::from(c)],
                };
                vec![vec![
                    vec![Flag::STORE.0],
                    b"sha1".to_vec(),
                    key,
                    b"v".to_vec(),
                ]]
            }
            5 => vec![vec![
                vec![Flag::RETRIEVE.0],
                method.name().as_bytes().to_vec(),
                slot.to_base58().into_bytes(),
            ]],
            6 => (0..usize::from(a) * 8)
                .map(|n| {
                    let k = method.hash(format!("flood {b} {n}").as_bytes());
                    vec![
                        vec![Flag::RETRIEVE.0],
                        method.name().as_bytes().to_vec(),
                        k.to_base58().into_bytes(),
                    ]
                })
                .collect(),
            7 => vec![vec![
                vec![Flag::RETRIEVED.0],
                method.name().as_bytes().to_vec(),
                slot.to_base58().into_bytes(),
                vec![b'r'; usize::from(c)],
            ]],
            8 => vec![vec![
                b"chord-backup".to_vec(),
                method.name().as_bytes().to_vec(),
                slot.to_base58().into_bytes(),
                match c {
                    0 => Vec::new(),
                    255 => vec![b'b'; limits().max_value_len + 1],
                    n => vec![b'b'; usize::from(n)],
                },
            ]],
            9 => vec![[
                vec![vec![Flag::STORE.0]],
                vec![vec![Flag::RETRIEVE.0], b"sha1".to_vec()],
                vec![vec![Flag::RETRIEVED.0]],
                vec![b"chord-backup".to_vec()],
                vec![vec![Flag::NOTIFY.0]],
            ][usize::from(a) % 5]
                .clone()],
            _ => {
                sim.run_for(Duration::from_millis(10 * u64::from(a)));
                Vec::new()
            }
        };
        for p in payloads {
            let f = frame(&sim, p);
            sim.scripted_send(PEER, f);
        }
        sim.run_for(Duration::from_millis(5));
    }
    sim.run_for(Duration::from_secs(1));
    let reached = Reached {
        paths: sim
            .handler_paths(NODE)
            .into_iter()
            .filter(|(name, _)| name.starts_with("chord-"))
            .collect(),
        ops,
    };
    let limits = limits();
    let info = sim.chord_info(NODE).expect("the node lives");
    assert!(info.bytes <= limits.max_table_bytes, "table {info:?}");
    assert!(
        info.pending_lookups <= limits.max_pending_lookups,
        "lookups {info:?}"
    );

    sim.scripted_close(PEER);
    sim.run_for(Duration::from_secs(40));
    assert!(
        sim.connections_between(NODE, HONEST) >= 1,
        "the node and the honest node lost their link"
    );
    assert_eq!(
        sim.chord_set(HONEST, b"final", b"from honest")
            .map(|r| r.is_ok()),
        Some(true)
    );
    assert_eq!(
        sim.chord_set(NODE, b"final0", b"from node")
            .map(|r| r.is_ok()),
        Some(true)
    );
    sim.run_for(Duration::from_secs(2));
    let got = sim.chord_get_many(NODE, &["final"], Duration::from_secs(10));
    assert_eq!(got, vec![Some(b"from honest".to_vec())]);
    let got = sim.chord_get_many(HONEST, &["final0"], Duration::from_secs(10));
    assert_eq!(got, vec![Some(b"from node".to_vec())]);
    reached
}
