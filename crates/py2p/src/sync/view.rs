//! The copy of the sync table that users' threads read, and the changes they are told of:
//! the node keeps it equal to the table by applying the table's [`SyncEffect`]s in order.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard};

use super::{Entry, SyncEffect, SyncEvent};
use crate::inbox::Inbox;

/// What a [`SyncSocket`](super::SyncSocket) reads: the entries and the change events.
pub struct SyncView {
    data: RwLock<HashMap<Vec<u8>, Entry>>,
    /// Changes for `next_change` and `changes`.
    pub events: Inbox<SyncEvent>,
}

impl SyncView {
    /// An empty table whose event queue holds at most `events` changes (further ones are
    /// dropped, with a log line: the table itself is kept whole).
    pub fn new(events: usize) -> SyncView {
        SyncView {
            data: RwLock::new(HashMap::new()),
            events: Inbox::new(events),
        }
    }

    /// The entries, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one of the table's changes and queues its event.
    pub fn apply(&self, effect: SyncEffect) {
        let event = {
            let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
            match effect {
                SyncEffect::Put {
                    key,
                    entry,
                    changed,
                } => {
                    let event = changed.then(|| SyncEvent::Stored {
                        key: key.clone(),
                        value: entry.value.clone(),
                        owner: entry.owner.clone(),
                    });
                    data.insert(key, entry);
                    event
                }
                SyncEffect::Removed { key } => {
                    data.remove(&key);
                    Some(SyncEvent::Deleted { key })
                }
            }
        };
        let Some(event) = event else { return };
        if self.events.has_room() {
            self.events.push(event);
        } else {
            log::warn!("sync event queue full; dropping {event:?}");
        }
    }
}
