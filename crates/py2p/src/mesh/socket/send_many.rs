//! `MeshSocket::send_many`: many broadcasts in one hand-off to the event loop.

use super::MeshSocket;
use crate::connection::check_size;
use crate::mesh::Command;
use crate::Error;

impl MeshSocket {
    /// Broadcasts each of `messages` (each a list of packets) as [`MeshSocket::send`] would,
    /// in order, with one hand-off to the event loop for all of them: a program that has many
    /// messages at hand (a block of input lines) saves the channel, the wake-up and the
    /// back-pressure bookkeeping of every message but the first. Waits while more than
    /// `send_high_water` bytes are queued for peers, as `send` does, then queues the whole
    /// batch (keep batches small, a few hundred KiB, so the wait stays meaningful). A
    /// message over the limits refuses the whole batch with [`Error::TooLarge`], before
    /// anything is sent.
    pub fn send_many(&self, messages: Vec<Vec<Vec<u8>>>) -> Result<(), Error> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut bytes = 0usize;
        for packets in &messages {
            check_size(&self.limits, self.id.len(), packets)?;
            bytes = bytes.saturating_add(super::reserved_bytes(packets));
        }
        self.reserve(bytes)?;
        let cmd = Command::BroadcastMany { messages, bytes };
        self.handle.send(cmd).map_err(Error::from)
    }

    /// [`MeshSocket::send_many`] of messages of one packet each, the packets end to end in
    /// `block`: the first is `block[..ends[0]]`, each next one runs from the end before it
    /// to its own end. One buffer for the whole batch instead of two `Vec`s per message
    /// (a block of input lines, split where the lines end). `ends` that decrease or pass
    /// the end of `block` are [`Error::InvalidInput`]; a message over the limits refuses
    /// the whole batch with [`Error::TooLarge`]; either before anything is sent.
    pub fn send_many_packed(&self, block: Vec<u8>, ends: Vec<usize>) -> Result<(), Error> {
        let mut start = 0;
        let mut bytes = 0usize;
        for &end in &ends {
            let packet = block.get(start..end).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "packet end {end} before its start {start} or past the block's {} bytes",
                    block.len()
                ))
            })?;
            check_size(&self.limits, self.id.len(), &[packet])?;
            bytes = bytes.saturating_add(super::reserved_bytes(&[packet]));
            start = end;
        }
        if ends.is_empty() {
            return Ok(());
        }
        self.reserve(bytes)?;
        let cmd = Command::BroadcastLines { block, ends, bytes };
        self.handle.send(cmd).map_err(Error::from)
    }
}
