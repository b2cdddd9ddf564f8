//! The seen-check comes before the checksum: a copy of a seen broadcast costs no sha-384.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use py2p_net::{ConnId, ConnInfo, Frame, Net, NetError, Service};
use py2p_wire::{base58, Flag};

use super::MeshCore;
use crate::config::MeshConfig;
use crate::mesh::Shared;

/// A network that only records: frames sent, nothing dialled.
struct Quiet;

impl Net for Quiet {
    fn send(&mut self, _conn: ConnId, _frame: Frame) {}
    fn dial(&mut self, _addr: SocketAddr) -> Result<ConnId, NetError> {
        Err(NetError::Closed)
    }
    fn close(&mut self, _conn: ConnId) {}
    fn queued(&self, _conn: ConnId) -> usize {
        0
    }
    fn total_queued(&self) -> usize {
        0
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn unix_time(&self) -> u64 {
        1_700_000_000
    }
    fn shutdown(&mut self) {}
}

fn body(msg_type: u8, id: &str, payload: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let time = base58::encode_u64(1_700_000_000);
    let head: [&[u8]; 4] = [&[msg_type], b"sender", id.as_bytes(), time.as_bytes()];
    for p in head.into_iter().chain(payload.iter().copied()) {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn a_copy_claiming_a_seen_id_is_a_duplicate_before_its_checksum_is_checked() {
    let config = MeshConfig::builder().build();
    let shared = Arc::new(Shared::new(&config));
    let mut core = MeshCore::new(config, "me".into(), ("127.0.0.1".into(), 1), shared, None);
    let mut net = Quiet;
    let conn = ConnId(7);
    let info = ConnInfo {
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        outgoing: false,
        tls_version: None,
    };
    core.on_open(&mut net, conn, &info);
    let genuine = py2p_wire::Message::new(
        vec![Flag::BROADCAST.0],
        b"sender".to_vec(),
        vec![vec![Flag::BROADCAST.0], b"hello".to_vec()],
        1_700_000_000,
    );
    let genuine_body = genuine.encode(None).split_off(4);
    core.on_frame(&mut net, conn, genuine_body.clone());
    assert_eq!(core.counters.received, 1);
    // The same frame again, and one with the genuine id but another payload (its
    // checksum does not match): both are copies of a seen broadcast, dropped unchecked.
    core.on_frame(&mut net, conn, genuine_body);
    let forged = body(
        Flag::BROADCAST.0,
        genuine.id(),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    core.on_frame(&mut net, conn, forged.clone());
    assert_eq!(
        (
            core.counters.received,
            core.counters.duplicates,
            core.counters.decode_errors
        ),
        (1, 2, 0)
    );
    // An unseen id with a bad checksum is still a decode error.
    let unseen = body(
        Flag::BROADCAST.0,
        &base58::encode_be_bytes(&[7u8; 48]),
        &[&[Flag::BROADCAST.0], b"bye"],
    );
    core.on_frame(&mut net, conn, unseen);
    assert_eq!(core.counters.decode_errors, 1);
    // A whisper is never taken for a seen broadcast: it is checked and refused.
    let whisper = body(Flag::WHISPER.0, genuine.id(), &[&[Flag::WHISPER.0], b"bye"]);
    core.on_frame(&mut net, conn, whisper);
    assert_eq!(
        (core.counters.duplicates, core.counters.decode_errors),
        (2, 2)
    );
}
