//! The users' broadcasts that wait to have their ids hashed together.
//!
//! Every broadcast's id is the sha-384 of its payload and time, and most are a few hundred
//! bytes: hashed side by side ([`py2p_wire::digest::sha384_each`]), several cost less than
//! one after the other. So the broadcasts of consecutive commands wait here, at most
//! [`BATCH`] of them, and the node sends them together (`MeshNode::finish_broadcasts`):
//! when the batch is full, before any other command, before any other callback does
//! anything, and when the loop has taken every command waiting
//! (`Service::on_commands_done`). What peers receive, and in what order, is what the node
//! sent one by one; each message keeps the time its command was taken at.

use py2p_net::Net;
use py2p_wire::Flag;

use crate::mesh::core::{IdBatch, MeshCore, UserBroadcast};
use crate::mesh::PackedPackets;

/// The most broadcasts that wait to be hashed together.
pub(super) const BATCH: usize = 16;

/// A user's broadcast waiting in the batch.
pub(super) struct Waiting {
    sub_flag: u8,
    time: u64,
    /// Bytes the sender reserved for it (released once it is queued).
    bytes: usize,
    packets: Packets,
}

/// A waiting broadcast's packets, as its command handed them over.
pub(super) enum Packets {
    /// `send`'s packets in one buffer.
    Packed(PackedPackets),
    /// A list of packets.
    List(Vec<Vec<u8>>),
}

impl UserBroadcast for Waiting {
    fn sub_flag(&self) -> u8 {
        self.sub_flag
    }

    fn time(&self) -> u64 {
        self.time
    }

    fn packets(&self) -> impl Iterator<Item = &[u8]> + Clone {
        match &self.packets {
            Packets::Packed(p) => Either::Left(p.iter()),
            Packets::List(l) => Either::Right(l.iter().map(Vec::as_slice)),
        }
    }
}

/// One of two iterators over the same items.
#[derive(Clone)]
enum Either<L, R> {
    Left(L),
    Right(R),
}

impl<T, L: Iterator<Item = T>, R: Iterator<Item = T>> Iterator for Either<L, R> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Either::Left(l) => l.next(),
            Either::Right(r) => r.next(),
        }
    }
}

/// One line of a [`Command::BroadcastLines`](crate::mesh::command::Command) block: a
/// broadcast of one packet with the default sub-flag.
pub(super) struct Line<'a> {
    pub(super) text: &'a [u8],
    pub(super) time: u64,
}

impl UserBroadcast for Line<'_> {
    fn sub_flag(&self) -> u8 {
        Flag::BROADCAST.0
    }

    fn time(&self) -> u64 {
        self.time
    }

    fn packets(&self) -> impl Iterator<Item = &[u8]> + Clone {
        std::iter::once(self.text)
    }
}

/// The batch, and what hashing it keeps from batch to batch.
#[derive(Default)]
pub(super) struct Broadcasts {
    waiting: Vec<Waiting>,
    ids: IdBatch,
}

impl Broadcasts {
    /// Whether no broadcast waits.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds the broadcast of `packets`, stamped now; whether the batch is full.
    pub(super) fn push(
        &mut self,
        net: &dyn Net,
        sub_flag: u8,
        packets: Packets,
        bytes: usize,
    ) -> bool {
        self.waiting.push(Waiting {
            sub_flag,
            time: net.unix_time(),
            bytes,
            packets,
        });
        self.waiting.len() >= BATCH
    }

    /// Sends the waiting broadcasts through `core`, in order; returns the bytes their
    /// senders reserved.
    pub(super) fn send(&mut self, core: &mut MeshCore, net: &mut dyn Net) -> usize {
        core.broadcast_users(net, &self.waiting, &mut self.ids);
        let bytes = self.waiting.iter().map(|w| w.bytes).sum();
        self.waiting.clear();
        bytes
    }

    /// Sends `lines` of `block` (ends as `send_many_packed` checked them), stamped now,
    /// [`BATCH`] at a time; nothing may wait in the batch.
    pub(super) fn send_lines(
        &mut self,
        core: &mut MeshCore,
        net: &mut dyn Net,
        block: &[u8],
        ends: &[usize],
    ) {
        debug_assert!(self.is_empty());
        let time = net.unix_time();
        let mut lines = Vec::with_capacity(BATCH.min(ends.len()));
        let mut start = 0;
        for chunk in ends.chunks(BATCH) {
            lines.clear();
            for &end in chunk {
                if let Some(text) = block.get(start..end) {
                    lines.push(Line { text, time });
                }
                start = end;
            }
            core.broadcast_users(net, &lines, &mut self.ids);
        }
    }
}
