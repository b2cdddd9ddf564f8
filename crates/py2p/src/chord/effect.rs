//! The chord table's requests and answers as values: a user's request comes in with a
//! [`RequestId`] the node chose, and its answer leaves as a [`ChordEffect`] naming it, now
//! or later (a get waits for peers' answers or its deadline). Who waits, and how, is the
//! node's business (see `ChordCommand`); the table holds no channel.

use std::time::Duration;

use super::ChordInfo;
use crate::Error;

/// The name the node gives a request, to match the answer to whoever waits for it.
pub(crate) type RequestId = u64;

/// A user's request to the chord table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChordRequest {
    /// Start holding slots (py2p's `join`); no answer.
    Join,
    /// Stop holding slots; hand them to the ring (py2p's `unjoin`); no answer.
    Unjoin,
    /// Store a value in the five slots of a key: [`ChordAnswer::Set`].
    Set { key: Vec<u8>, value: Vec<u8> },
    /// Delete a key from its five slots: [`ChordAnswer::Delete`].
    Delete { key: Vec<u8> },
    /// Look a key up in its five slots, for at most `timeout`: [`ChordAnswer::Get`].
    Get { key: Vec<u8>, timeout: Duration },
    /// The user keys known: [`ChordAnswer::Keys`].
    Keys,
    /// A snapshot of the table's state: [`ChordAnswer::Info`].
    Info,
}

/// The answer to a [`ChordRequest`].
#[derive(Debug)]
pub(crate) enum ChordAnswer {
    /// A set was stored (its slots sent), or why not.
    Set(Result<(), Error>),
    /// A delete was sent; whether this node knew the key.
    Delete(Result<bool, Error>),
    /// The value three slots agree on, if any.
    Get(Option<Vec<u8>>),
    /// The user keys known.
    Keys(Vec<Vec<u8>>),
    /// The table's state.
    Info(ChordInfo),
}

/// What the chord table leaves for the node to carry out (its messages to peers go out
/// through the mesh at once).
#[derive(Debug)]
pub(crate) enum ChordEffect {
    /// The answer to request `req`.
    Answer {
        /// The request answered.
        req: RequestId,
        /// Its answer.
        answer: ChordAnswer,
    },
}
