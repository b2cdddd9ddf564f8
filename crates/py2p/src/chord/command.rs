//! What users' threads ask of a chord node, with who hears the answer. The node keeps the
//! reply channel under a [`RequestId`], hands the table the bare [`ChordRequest`], and
//! sends the table's [`ChordAnswer`] back when it comes (see `MeshNode`).

use std::sync::mpsc;
use std::time::Duration;

use super::{ChordAnswer, ChordInfo, ChordRequest};
use crate::Error;

/// A user's request to a chord node, with where its answer goes.
pub enum ChordCommand {
    /// Start holding slots (py2p's `join`).
    Join,
    /// Stop holding slots; hand them to the ring (py2p's `unjoin`).
    Unjoin,
    /// Store a value in the five slots of a key.
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: mpsc::Sender<Result<(), Error>>,
    },
    /// Delete a key from its five slots.
    Delete {
        key: Vec<u8>,
        reply: mpsc::Sender<Result<bool, Error>>,
    },
    /// Look a key up in its five slots.
    Get {
        key: Vec<u8>,
        timeout: Duration,
        reply: mpsc::Sender<Option<Vec<u8>>>,
    },
    /// The user keys known.
    Keys(mpsc::Sender<Vec<Vec<u8>>>),
    /// A snapshot of the table's state.
    Info(mpsc::Sender<ChordInfo>),
}

/// Who waits for the answer to a chord request.
pub(crate) enum ChordReply {
    Set(mpsc::Sender<Result<(), Error>>),
    Delete(mpsc::Sender<Result<bool, Error>>),
    Get(mpsc::Sender<Option<Vec<u8>>>),
    Keys(mpsc::Sender<Vec<Vec<u8>>>),
    Info(mpsc::Sender<ChordInfo>),
}

impl ChordCommand {
    /// The request for the table, and who waits for its answer (nobody for a join).
    pub fn split(self) -> (ChordRequest, Option<ChordReply>) {
        match self {
            ChordCommand::Join => (ChordRequest::Join, None),
            ChordCommand::Unjoin => (ChordRequest::Unjoin, None),
            ChordCommand::Set { key, value, reply } => (
                ChordRequest::Set { key, value },
                Some(ChordReply::Set(reply)),
            ),
            ChordCommand::Delete { key, reply } => (
                ChordRequest::Delete { key },
                Some(ChordReply::Delete(reply)),
            ),
            ChordCommand::Get {
                key,
                timeout,
                reply,
            } => (
                ChordRequest::Get { key, timeout },
                Some(ChordReply::Get(reply)),
            ),
            ChordCommand::Keys(reply) => (ChordRequest::Keys, Some(ChordReply::Keys(reply))),
            ChordCommand::Info(reply) => (ChordRequest::Info, Some(ChordReply::Info(reply))),
        }
    }
}

impl ChordReply {
    /// Tells the waiter. An answer of another kind than asked (which the table never
    /// gives) is dropped, and the waiter hears the node closed.
    pub fn send(self, answer: ChordAnswer) {
        // A waiter that gave up (its receiver dropped) is no error.
        let _ = match (self, answer) {
            (ChordReply::Set(tx), ChordAnswer::Set(a)) => tx.send(a).is_ok(),
            (ChordReply::Delete(tx), ChordAnswer::Delete(a)) => tx.send(a).is_ok(),
            (ChordReply::Get(tx), ChordAnswer::Get(a)) => tx.send(a).is_ok(),
            (ChordReply::Keys(tx), ChordAnswer::Keys(a)) => tx.send(a).is_ok(),
            (ChordReply::Info(tx), ChordAnswer::Info(a)) => tx.send(a).is_ok(),
            (_, answer) => {
                log::error!("chord: an answer of the wrong kind dropped: {answer:?}");
                false
            }
        };
    }
}
