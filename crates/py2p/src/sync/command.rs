//! What users' threads ask of a sync node, with who hears the answer: the node asks its
//! table and sends the answer back once the table's changes are in the users' copy.

use std::sync::mpsc;

use crate::Error;

/// A user's request to the sync table, and where its answer goes.
pub enum SyncCommand {
    /// Store (or, with an empty value, delete) a key as this node; the answer is the value
    /// replaced, or why not.
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: mpsc::Sender<Result<Option<Vec<u8>>, Error>>,
    },
}
