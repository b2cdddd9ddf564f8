//! The users' broadcasts wait in a batch to have their ids hashed together
//! (`broadcasts.rs`): what peers receive, in what order and with what ids and times, is
//! what the node sent one command at a time.

use std::time::Duration;

use proptest::prelude::*;
use py2p_net::{CloseReason, ConnId, Net, Service};
use py2p_wire::{Flag, Message};

use super::broadcasts::BATCH;
use super::tests::{handshaken, info};
use super::MeshNode;
use crate::mesh::command::Command;
use crate::mesh::testing::RecordingNet;
use crate::mesh::PackedPackets;
use crate::message::MessageKind;

/// Node `me` with peers `a` (conn 1) and `b` (conn 2) handshaken, sending plain frames;
/// nothing recorded as sent yet.
fn node() -> (MeshNode, RecordingNet) {
    handshaken(&[(1, "a"), (2, "b")])
}

/// The frame of our message of type `flag` with `payload`, stamped `time`.
fn ours(flag: Flag, payload: &[&[u8]], time: u64) -> Vec<u8> {
    Message::from_packets(&[flag.0], b"me", payload, time).encode(None)
}

/// Our broadcast of `text` (default sub-flag) to both peers, stamped `time`.
fn broadcast_to_both(text: &[u8], time: u64) -> Vec<(ConnId, Vec<u8>)> {
    let frame = ours(Flag::BROADCAST, &[&[Flag::BROADCAST.0], text], time);
    vec![
        (ConnId::from_raw(1), frame.clone()),
        (ConnId::from_raw(2), frame),
    ]
}

fn send(text: &[u8]) -> Command {
    Command::BroadcastPacked {
        packets: PackedPackets::new(&[text]).unwrap(),
        bytes: 0,
    }
}

#[test]
fn broadcasts_wait_for_the_end_of_the_commands_and_keep_their_order_around_a_whisper() {
    let (mut node, mut net) = node();
    let time = net.unix_time();
    node.on_command(&mut net, send(b"one"));
    node.on_command(&mut net, send(b"two"));
    assert!(net.sent.is_empty(), "waiting in the batch");
    // Another command: the batch goes first.
    node.on_command(
        &mut net,
        Command::Whisper {
            target: "b".into(),
            packets: vec![b"psst".to_vec()],
        },
    );
    let mut want = broadcast_to_both(b"one", time);
    want.extend(broadcast_to_both(b"two", time));
    let whisper = ours(Flag::WHISPER, &[&[Flag::WHISPER.0], b"psst"], time);
    want.push((ConnId::from_raw(2), whisper));
    assert_eq!(net.sent, want);
    node.on_command(&mut net, send(b"three"));
    assert_eq!(net.sent.len(), want.len());
    // The loop took every command waiting.
    node.on_commands_done(&mut net);
    want.extend(broadcast_to_both(b"three", time));
    assert_eq!(net.sent, want);
}

#[test]
fn a_full_batch_is_sent_at_once() {
    let (mut node, mut net) = node();
    let time = net.unix_time();
    let texts: Vec<Vec<u8>> = (0..2 * BATCH + 1)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    let mut want = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        node.on_command(&mut net, send(text));
        want.extend(broadcast_to_both(text, time));
        let sent = (i + 1) / BATCH * BATCH;
        assert_eq!(net.sent.len(), 2 * sent, "after {} commands", i + 1);
    }
    node.on_commands_done(&mut net);
    assert_eq!(net.sent, want);
}

/// The batch's ids go into the seen set together after its sends: every one of them is
/// there, so a copy coming back from a peer is dropped, not relayed to the other peer.
#[test]
fn every_broadcast_of_a_batch_is_remembered_as_seen() {
    let (mut node, mut net) = node();
    let time = net.unix_time();
    let texts: Vec<Vec<u8>> = (0..BATCH + 3)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    for text in &texts {
        node.on_command(&mut net, send(text));
    }
    node.on_commands_done(&mut net);
    assert_eq!(net.sent.len(), 2 * texts.len());
    net.sent.clear();
    for text in &texts {
        let frame = ours(Flag::BROADCAST, &[&[Flag::BROADCAST.0], text], time);
        node.on_frame(&mut net, ConnId::from_raw(1), &frame[4..]);
    }
    node.before_write(&mut net);
    assert_eq!(
        net.sent,
        Vec::new(),
        "a copy of our own broadcast was relayed"
    );
    // A broadcast the node has not seen is relayed (the check above can fail).
    let other = Message::from_packets(&[Flag::BROADCAST.0], b"c", &[b"x"], time).encode(None);
    node.on_frame(&mut net, ConnId::from_raw(1), &other[4..]);
    node.before_write(&mut net);
    assert_eq!(net.sent, vec![(ConnId::from_raw(2), other)]);
}

/// A broadcast waiting in the batch goes out before whatever any other callback does.
#[test]
fn a_waiting_broadcast_goes_out_before_any_other_callback_acts() {
    type Callback = fn(&mut MeshNode, &mut RecordingNet);
    let callbacks: [(&str, Callback); 6] = [
        ("on_commands_done", |n, net| n.on_commands_done(net)),
        ("before_write", |n, net| n.before_write(net)),
        ("on_tick", |n, net| n.on_tick(net)),
        ("on_open", |n, net| {
            n.on_open(net, ConnId::from_raw(3), &info(13))
        }),
        ("on_close", |n, net| {
            n.on_close(net, ConnId::from_raw(1), &CloseReason::PeerClosed)
        }),
        ("on_frame", |n, net| {
            let hello = Message::new(
                vec![Flag::BROADCAST.0],
                b"origin".to_vec(),
                vec![vec![Flag::BROADCAST.0], b"hello".to_vec()],
                net.unix_time(),
            );
            n.on_frame(net, ConnId::from_raw(1), &hello.encode(None)[4..]);
        }),
    ];
    for (name, callback) in callbacks {
        let (mut node, mut net) = node();
        let time = net.unix_time();
        node.on_command(&mut net, send(b"waiting"));
        assert!(net.sent.is_empty(), "{name}");
        // The clock moves on: the broadcast keeps its command's time.
        net.clock.elapsed += Duration::from_secs(5);
        callback(&mut node, &mut net);
        let want = broadcast_to_both(b"waiting", time);
        assert!(net.sent.len() >= 2, "{name}: {:?}", net.sent_to());
        assert_eq!(net.sent[..2], want[..], "{name}: first");
        node.before_write(&mut net);
        let again = net.sent.iter().filter(|s| want.contains(s)).count();
        assert_eq!(again, 2, "{name}: sent once");
    }
}

/// One of the user's requests in the property test.
#[derive(Debug, Clone)]
enum Op {
    /// `send`: the packets in one buffer.
    Packed(Vec<Vec<u8>>),
    /// The simulator's broadcast: a list of packets.
    List(Vec<Vec<u8>>),
    /// A broadcast with the user's sub-flag.
    With(u8, Vec<Vec<u8>>),
    /// `send_many`.
    Many(Vec<Vec<Vec<u8>>>),
    /// `send_many_packed`: lines end to end in one block.
    Lines(Vec<Vec<u8>>),
    /// A whisper to `b`.
    Whisper(Vec<Vec<u8>>),
    /// The loop took every command waiting.
    Done,
    /// A second passes.
    Clock,
}

fn packets() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => packets().prop_map(Op::Packed),
        2 => packets().prop_map(Op::List),
        2 => (any::<u8>(), packets()).prop_map(|(f, p)| Op::With(f, p)),
        1 => proptest::collection::vec(packets(), 0..20).prop_map(Op::Many),
        1 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..40)
            .prop_map(Op::Lines),
        1 => packets().prop_map(Op::Whisper),
        1 => Just(Op::Done),
        1 => Just(Op::Clock),
    ]
}

/// The frames of a broadcast made one by one: sub-flag, packets, time.
fn want_broadcast(want: &mut Vec<(ConnId, Vec<u8>)>, sub_flag: u8, packets: &[Vec<u8>], t: u64) {
    let flag = [sub_flag];
    let payload: Vec<&[u8]> = std::iter::once(&flag[..])
        .chain(packets.iter().map(Vec::as_slice))
        .collect();
    let frame = ours(Flag::BROADCAST, &payload, t);
    want.push((ConnId::from_raw(1), frame.clone()));
    want.push((ConnId::from_raw(2), frame));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the mix of commands and ends of runs, peers receive the frames that
    /// messages made one by one (each id its own sha-384) give, in command order, each
    /// stamped when its command was taken.
    #[test]
    fn batched_broadcasts_are_the_messages_made_one_by_one(
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let (mut node, mut net) = node();
        let mut want = Vec::new();
        for op in ops {
            let t = net.unix_time();
            match op {
                Op::Packed(p) => {
                    want_broadcast(&mut want, Flag::BROADCAST.0, &p, t);
                    let packets = PackedPackets::new(&p).unwrap();
                    node.on_command(&mut net, Command::BroadcastPacked { packets, bytes: 0 });
                }
                Op::List(p) => {
                    want_broadcast(&mut want, Flag::BROADCAST.0, &p, t);
                    node.on_command(&mut net, Command::Broadcast { packets: p, bytes: 0 });
                }
                Op::With(sub_flag, p) => {
                    want_broadcast(&mut want, sub_flag, &p, t);
                    let cmd = Command::SendWith {
                        kind: MessageKind::Broadcast,
                        sub_flag,
                        packets: p,
                        bytes: 0,
                    };
                    node.on_command(&mut net, cmd);
                }
                Op::Many(messages) => {
                    for p in &messages {
                        want_broadcast(&mut want, Flag::BROADCAST.0, p, t);
                    }
                    node.on_command(&mut net, Command::BroadcastMany { messages, bytes: 0 });
                }
                Op::Lines(lines) => {
                    let mut block = Vec::new();
                    let mut ends = Vec::new();
                    for line in &lines {
                        want_broadcast(&mut want, Flag::BROADCAST.0, std::slice::from_ref(line), t);
                        block.extend_from_slice(line);
                        ends.push(block.len());
                    }
                    node.on_command(&mut net, Command::BroadcastLines { block, ends, bytes: 0 });
                }
                Op::Whisper(p) => {
                    let flag = [Flag::WHISPER.0];
                    let payload: Vec<&[u8]> = std::iter::once(&flag[..])
                        .chain(p.iter().map(Vec::as_slice))
                        .collect();
                    want.push((ConnId::from_raw(2), ours(Flag::WHISPER, &payload, t)));
                    node.on_command(&mut net, Command::Whisper { target: "b".into(), packets: p });
                }
                Op::Done => node.on_commands_done(&mut net),
                Op::Clock => net.clock.elapsed += Duration::from_secs(1),
            }
            // Never more than a batch waits.
            prop_assert!(want.len() - net.sent.len() <= 2 * BATCH);
        }
        node.on_commands_done(&mut net);
        prop_assert_eq!(net.sent.len(), want.len());
        for (i, (got, want)) in net.sent.iter().zip(&want).enumerate() {
            prop_assert_eq!(got, want, "frame {}", i);
        }
    }
}
