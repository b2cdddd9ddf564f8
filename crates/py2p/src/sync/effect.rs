//! What the sync table's changes leave behind: [`SyncEffect`] values, in the order the
//! table made them, for the node to carry out on the copy users' threads read.

use super::Entry;

/// A change the sync table made to its map. The node applies each to the table's copy
/// that users read ([`SyncView`](super::SyncView)) and tells users of it as a
/// [`SyncEvent`](super::SyncEvent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncEffect {
    /// `key` holds `entry` now; `changed` when its value or owner differs from before (a
    /// renewed lease alone is not news to users).
    Put {
        /// The key.
        key: Vec<u8>,
        /// Its entry.
        entry: Entry,
        /// Whether users hear of it.
        changed: bool,
    },
    /// `key` held a value and holds none now.
    Removed {
        /// The key.
        key: Vec<u8>,
    },
}
