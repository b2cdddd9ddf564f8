//! The chord table as a state machine: requests in with an id, answers out as effects
//! naming it, now or when the peers' answers or the deadline decide.

use std::time::Duration;

use super::effect::{ChordAnswer, ChordEffect, ChordRequest};
use super::key::hashes;
use super::wire;
use super::{ChordConfig, ChordTable};
use crate::id::node_id;
use crate::mesh::testing::{FakeLink, FakeNet};

/// A leeching table whose one peer has joined: the peer holds every slot.
fn table_with_joined_peer() -> (ChordTable, FakeLink, FakeNet) {
    let me = node_id("127.0.0.1", 1, "chord", "me");
    let peer = node_id("127.0.0.1", 2, "chord", "peer");
    let mut link = FakeLink::new(&me, &peer);
    let mut net = FakeNet::new();
    let mut table = ChordTable::new(ChordConfig::default(), &me);
    table.on_peer_up(&mut link, &mut net, &peer);
    let conn = link.conn;
    table.on_message(&mut link, &mut net, conn, &wire::meta(true));
    link.sent.clear();
    (table, link, net)
}

fn effects(table: &mut ChordTable) -> Vec<ChordEffect> {
    std::iter::from_fn(|| table.poll_effect()).collect()
}

fn get(key: &[u8], timeout: Duration) -> ChordRequest {
    ChordRequest::Get {
        key: key.to_vec(),
        timeout,
    }
}

#[test]
fn a_get_is_answered_once_three_slots_agree() {
    let (mut table, mut link, mut net) = table_with_joined_peer();
    table.on_request(&mut link, &mut net, 7, get(b"k", Duration::from_secs(10)));
    // Five retrieves to the peer, no answer yet.
    assert_eq!(link.sent.len(), 5);
    assert!(effects(&mut table).is_empty());
    let conn = link.conn;
    for (i, (method, key)) in hashes(b"k").into_iter().enumerate() {
        let answer = wire::retrieved(method, &key, b"v".to_vec());
        table.on_message(&mut link, &mut net, conn, &answer);
        let out = effects(&mut table);
        if i < 2 {
            assert!(out.is_empty(), "answered after {} slots: {out:?}", i + 1);
        } else if i == 2 {
            assert!(
                matches!(
                    out.as_slice(),
                    [ChordEffect::Answer { req: 7, answer: ChordAnswer::Get(Some(v)) }] if v == b"v"
                ),
                "{out:?}"
            );
        } else {
            assert!(out.is_empty(), "answered twice: {out:?}");
        }
    }
    assert_eq!(table.info().pending_gets, 0);
}

#[test]
fn an_unanswered_get_is_answered_at_its_deadline() {
    let (mut table, mut link, mut net) = table_with_joined_peer();
    table.on_request(&mut link, &mut net, 3, get(b"k", Duration::from_secs(5)));
    net.elapsed = Duration::from_secs(4);
    table.on_tick(&mut link, &mut net);
    assert!(effects(&mut table).is_empty());
    net.elapsed = Duration::from_secs(5);
    table.on_tick(&mut link, &mut net);
    let out = effects(&mut table);
    assert!(
        matches!(
            out.as_slice(),
            [ChordEffect::Answer {
                req: 3,
                answer: ChordAnswer::Get(None)
            }]
        ),
        "{out:?}"
    );
}

#[test]
fn gets_in_flight_are_answered_at_shutdown_and_others_at_once_in_order() {
    let (mut table, mut link, mut net) = table_with_joined_peer();
    table.on_request(&mut link, &mut net, 1, get(b"a", Duration::from_secs(60)));
    table.on_request(&mut link, &mut net, 2, ChordRequest::Join);
    let set = ChordRequest::Set {
        key: b"b".to_vec(),
        value: b"v".to_vec(),
    };
    table.on_request(&mut link, &mut net, 3, set);
    table.on_request(&mut link, &mut net, 4, ChordRequest::Keys);
    let bad = ChordRequest::Delete { key: Vec::new() };
    table.on_request(&mut link, &mut net, 5, bad);
    table.on_request(&mut link, &mut net, 6, ChordRequest::Info);
    let out = effects(&mut table);
    let reqs: Vec<u64> = out
        .iter()
        .map(|ChordEffect::Answer { req, .. }| *req)
        .collect();
    // The join has no answer; the get waits.
    assert_eq!(reqs, [3, 4, 5, 6]);
    assert!(matches!(
        &out[..],
        [
            ChordEffect::Answer {
                answer: ChordAnswer::Set(Ok(())),
                ..
            },
            ChordEffect::Answer {
                answer: ChordAnswer::Keys(keys),
                ..
            },
            ChordEffect::Answer {
                answer: ChordAnswer::Delete(Err(crate::Error::InvalidInput(_))),
                ..
            },
            ChordEffect::Answer {
                answer: ChordAnswer::Info(info),
                ..
            },
        ] if keys == &[b"b".to_vec()] && info.joined && info.pending_gets == 1
    ));
    table.on_shutdown();
    let out = effects(&mut table);
    assert!(
        matches!(
            out.as_slice(),
            [ChordEffect::Answer {
                req: 1,
                answer: ChordAnswer::Get(None)
            }]
        ),
        "{out:?}"
    );
}
