//! The sync table's data and py2p's lease rules, as a part of the mesh node's state: a
//! plain state machine. Its map is its own; every change it makes leaves, in order, as a
//! [`SyncEffect`] the node carries out on the copy users read (`SyncView`).

use std::collections::{HashMap, VecDeque};

use log::{debug, info, warn};
use py2p_net::{ConnId, Net};
use py2p_wire::{base58, Flag};

use super::{Entry, SyncEffect};
use crate::mesh::MeshLink;
use crate::Error;

/// How long a lease lasts, in seconds (py2p: one hour).
pub const LEASE_SECS: u64 = 3600;

/// What an entry counts against `max_table_bytes` besides its key, value and owner: the
/// map's slot and the three buffers' headers, roughly.
pub(crate) const ENTRY_OVERHEAD: usize = 96;

fn cost(key: &[u8], value: &[u8], owner: &str) -> usize {
    key.len() + value.len() + owner.len() + ENTRY_OVERHEAD
}

/// Why a store was not applied.
pub(crate) enum Refused {
    /// The key is leased to another node: its current entry.
    Leased(Entry),
    /// The table would outgrow `max_table_bytes`.
    Full { used: usize, max: usize },
}

pub struct SyncTable {
    leasing: bool,
    /// Bytes the entries count (see [`cost`]), and the most allowed.
    bytes: usize,
    max_bytes: usize,
    /// The entries, by key.
    pub data: HashMap<Vec<u8>, Entry>,
    /// Changes made and not yet taken by [`SyncTable::poll_effect`].
    effects: VecDeque<SyncEffect>,
    /// Peers' `store` messages by outcome (see [`StoreOutcome`]), for the fuzz targets.
    pub outcomes: [u64; StoreOutcome::ALL.len()],
}

/// What became of a peer's `store` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Applied: the key was stored or deleted.
    Applied,
    /// Refused by the lease rules.
    Refused,
    /// Refused: the table would outgrow `max_table_bytes`.
    TableFull,
    /// A joining peer's copy of a key already held: ignored.
    AlreadyHeld,
    /// Malformed (packet count, or the time of a joining peer's copy).
    Malformed,
}

impl StoreOutcome {
    /// Every outcome, in order.
    pub const ALL: [StoreOutcome; 5] = [
        StoreOutcome::Applied,
        StoreOutcome::Refused,
        StoreOutcome::TableFull,
        StoreOutcome::AlreadyHeld,
        StoreOutcome::Malformed,
    ];

    /// A short name, as the fuzz exercises report it.
    #[cfg(feature = "internals")]
    pub fn name(self) -> &'static str {
        match self {
            StoreOutcome::Applied => "store-applied",
            StoreOutcome::Refused => "store-refused",
            StoreOutcome::TableFull => "store-table-full",
            StoreOutcome::AlreadyHeld => "store-already-held",
            StoreOutcome::Malformed => "store-malformed",
        }
    }
}

/// Whether a store by `owner` at `time` may replace `current` (py2p's `__store` rule).
pub(crate) fn may_store(
    current: Option<&Entry>,
    owner: &str,
    time: u64,
    now: u64,
    leasing: bool,
) -> bool {
    let Some(meta) = current else { return true };
    meta.owner == owner
        || meta.time < now.saturating_sub(LEASE_SECS)
        || (meta.time == time && meta.owner.as_bytes() > owner.as_bytes())
        || (meta.time < time && !leasing)
}

impl SyncTable {
    pub fn new(leasing: bool, max_bytes: usize) -> SyncTable {
        SyncTable {
            leasing,
            bytes: 0,
            max_bytes,
            data: HashMap::new(),
            effects: VecDeque::new(),
            outcomes: [0; StoreOutcome::ALL.len()],
        }
    }

    /// The oldest change not yet taken.
    pub fn poll_effect(&mut self) -> Option<SyncEffect> {
        self.effects.pop_front()
    }

    /// Applies a store if the rules allow it and the table has room.
    fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        owner: &str,
        time: u64,
        now: u64,
    ) -> Result<Option<Vec<u8>>, Refused> {
        let current = self.data.get(key);
        if !may_store(current, owner, time, now, self.leasing) {
            return Err(Refused::Leased(current.cloned().unwrap_or_else(|| Entry {
                value: Vec::new(),
                owner: String::new(),
                time: 0,
            })));
        }
        let freed = current.map_or(0, |e| cost(key, &e.value, &e.owner));
        let rest = self.bytes.saturating_sub(freed);
        if !value.is_empty() && rest + cost(key, value, owner) > self.max_bytes {
            return Err(Refused::Full {
                used: self.bytes,
                max: self.max_bytes,
            });
        }
        if value.is_empty() {
            let old = self.data.remove(key).map(|e| e.value);
            self.bytes = rest;
            if old.is_some() {
                self.effects
                    .push_back(SyncEffect::Removed { key: key.to_vec() });
            }
            Ok(old)
        } else {
            let entry = Entry {
                value: value.to_vec(),
                owner: owner.to_owned(),
                time,
            };
            let old = self.data.insert(key.to_vec(), entry.clone());
            self.bytes = rest + cost(key, value, owner);
            let changed = old
                .as_ref()
                .is_none_or(|o| o.value != value || o.owner != owner);
            self.effects.push_back(SyncEffect::Put {
                key: key.to_vec(),
                entry,
                changed,
            });
            Ok(old.map(|e| e.value))
        }
    }

    /// A peer joining gets every key, with owner and time (py2p's handshake response).
    pub fn send_all_keys(&self, core: &mut dyn MeshLink, net: &mut dyn Net, conn: ConnId) {
        let mut entries: Vec<(&Vec<u8>, &Entry)> = self.data.iter().collect();
        // In key order: the same table always sends the same frames (and simulations replay).
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, e) in entries {
            let payload = vec![
                vec![Flag::STORE.0],
                key.clone(),
                e.value.clone(),
                e.owner.clone().into_bytes(),
                base58::encode_u64(e.time).into_bytes(),
            ];
            core.send_to(net, conn, Flag::WHISPER, payload);
        }
    }

    /// A `store` message from a peer: `[store, key, value]` as a broadcast, or
    /// `[store, key, value, owner, time_58]` from a peer we just met (only for keys not held).
    /// `via` names the connection it came over, for log lines.
    pub fn handle_store(&mut self, now: u64, msg: &py2p_wire::Message, via: &str) {
        let outcome = self.handle_store_inner(now, msg, via);
        if let Some(n) = self.outcomes.get_mut(outcome as usize) {
            *n += 1;
        }
    }

    fn handle_store_inner(
        &mut self,
        now: u64,
        msg: &py2p_wire::Message,
        via: &str,
    ) -> StoreOutcome {
        let sender = String::from_utf8_lossy(msg.sender()).into_owned();
        let packets: Vec<&[u8]> = msg.payload().iter().collect();
        let (key, value, owner, time) = match packets.as_slice() {
            [_, key, value] => (*key, *value, sender.clone(), msg.time()),
            [_, key, value, owner, time_58] => {
                if self.data.contains_key(*key) {
                    return StoreOutcome::AlreadyHeld;
                }
                let Ok(time) = base58::decode_u64_bytes(time_58) else {
                    debug!("store from {sender}: bad time");
                    return StoreOutcome::Malformed;
                };
                (
                    *key,
                    *value,
                    String::from_utf8_lossy(owner).into_owned(),
                    time,
                )
            }
            _ => {
                debug!("malformed store from {sender}");
                return StoreOutcome::Malformed;
            }
        };
        match self.store(key, value, &owner, time, now) {
            Ok(_) => StoreOutcome::Applied,
            Err(Refused::Leased(current)) => {
                info!(
                    "store of key {:?} by {owner} (via {via}) refused: leased to {} until {}",
                    String::from_utf8_lossy(key),
                    current.owner,
                    current.time.saturating_add(LEASE_SECS)
                );
                StoreOutcome::Refused
            }
            Err(Refused::Full { used, max }) => {
                warn!(
                    "store of key {:?} ({} bytes) by {owner} (via {via}) refused: the table holds \
                     {used} of max_table_bytes {max}",
                    String::from_utf8_lossy(key),
                    value.len()
                );
                StoreOutcome::TableFull
            }
        }
    }

    /// The user's write (`SyncSocket::set`, an empty value deletes): applied if the lease
    /// rules and `max_table_bytes` allow, then broadcast; the value it replaced.
    pub fn set(
        &mut self,
        core: &mut dyn MeshLink,
        net: &mut dyn Net,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let now = net.unix_time();
        let owner = core.id().to_owned();
        match self.store(&key, &value, &owner, now, now) {
            Ok(old) => {
                // py2p does not announce the deletion of a key it does not hold.
                if !value.is_empty() || old.is_some() {
                    core.broadcast(net, vec![vec![Flag::STORE.0], key, value]);
                }
                Ok(old)
            }
            Err(Refused::Leased(current)) => Err(Error::Leased {
                key,
                owner: current.owner,
                until: current.time.saturating_add(LEASE_SECS),
            }),
            Err(Refused::Full { used, max }) => Err(Error::TableFull { key, used, max }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(owner: &str, time: u64) -> Entry {
        Entry {
            value: b"v".to_vec(),
            owner: owner.into(),
            time,
        }
    }

    #[test]
    fn the_table_stays_within_max_table_bytes() {
        let per = cost(b"k0", &[7; 100], "owner");
        let mut t = SyncTable::new(true, 3 * per);
        let now = 10_000;
        for i in 0..3 {
            let key = format!("k{i}");
            assert!(t
                .store(key.as_bytes(), &[7; 100], "owner", now, now)
                .is_ok());
        }
        assert_eq!(t.bytes, 3 * per);
        // A fourth key, or a bigger value, would not fit.
        assert!(matches!(
            t.store(b"k3", &[7; 100], "owner", now, now),
            Err(Refused::Full { used, max }) if used == 3 * per && max == 3 * per
        ));
        assert!(matches!(
            t.store(b"k0", &[7; 101], "owner", now, now),
            Err(Refused::Full { .. })
        ));
        // The same size, a smaller value and a delete always pass, and free room.
        assert!(t.store(b"k0", &[8; 100], "owner", now, now).is_ok());
        assert!(t.store(b"k1", &[8; 10], "owner", now, now).is_ok());
        assert!(t.store(b"k2", b"", "owner", now, now).is_ok());
        assert_eq!(t.bytes, per + cost(b"k1", &[8; 10], "owner"));
        assert!(t.store(b"k3", &[7; 100], "owner", now, now).is_ok());
        assert_eq!(t.data.len(), 3);
        // Deleting a key not held changes nothing.
        assert!(t.store(b"nope", b"", "owner", now, now).is_ok());
        assert_eq!(t.bytes, 2 * per + cost(b"k1", &[8; 10], "owner"));
    }

    fn effects(t: &mut SyncTable) -> Vec<SyncEffect> {
        std::iter::from_fn(|| t.poll_effect()).collect()
    }

    #[test]
    fn every_change_leaves_as_an_effect_in_order_and_refusals_leave_none() {
        use crate::mesh::testing::{FakeLink, FakeNet};
        let mut link = FakeLink::new("me", "peer");
        let mut net = FakeNet::new();
        let mut t = SyncTable::new(true, 1 << 20);
        let now = net.unix_time();
        let put = |value: &[u8], changed| SyncEffect::Put {
            key: b"k".to_vec(),
            entry: Entry {
                value: value.to_vec(),
                owner: "me".into(),
                time: now,
            },
            changed,
        };
        let mut set = |t: &mut SyncTable, value: &[u8]| {
            t.set(&mut link, &mut net, b"k".to_vec(), value.to_vec())
                .map_err(|e| e.to_string())
        };
        assert_eq!(set(&mut t, b"a"), Ok(None));
        // The same value again renews the lease: the copy follows, users hear nothing new.
        assert_eq!(set(&mut t, b"a"), Ok(Some(b"a".to_vec())));
        assert_eq!(set(&mut t, b"b"), Ok(Some(b"a".to_vec())));
        assert_eq!(set(&mut t, b""), Ok(Some(b"b".to_vec())));
        // Deleting a key not held changes nothing and tells nobody.
        assert_eq!(set(&mut t, b""), Ok(None));
        assert_eq!(
            effects(&mut t),
            [
                put(b"a", true),
                put(b"a", false),
                put(b"b", true),
                SyncEffect::Removed { key: b"k".to_vec() },
            ]
        );
        assert_eq!(link.broadcasts.len(), 4);
        // A key leased to another node: refused, no change, no effect.
        t.store(b"x", b"theirs", "a", now, now).ok();
        effects(&mut t);
        assert!(matches!(
            t.set(&mut link, &mut net, b"x".to_vec(), b"mine".to_vec()),
            Err(Error::Leased { .. })
        ));
        assert!(effects(&mut t).is_empty());
        assert_eq!(link.broadcasts.len(), 4);
    }

    #[test]
    fn the_users_copy_follows_the_effects() {
        use super::super::{SyncEvent, SyncView};
        let mut t = SyncTable::new(true, 1 << 20);
        let view = SyncView::new(100);
        let now = 10_000;
        t.store(b"k", b"a", "o", now, now).ok();
        t.store(b"k", b"a", "o", now + 1, now + 1).ok();
        t.store(b"j", b"b", "o", now, now).ok();
        t.store(b"k", b"", "o", now, now).ok();
        while let Some(e) = t.poll_effect() {
            view.apply(e);
        }
        assert_eq!(*view.read(), t.data);
        let events: Vec<SyncEvent> =
            std::iter::from_fn(|| view.events.pop(Some(std::time::Duration::ZERO)).0).collect();
        let stored = |key: &[u8], value: &[u8]| SyncEvent::Stored {
            key: key.to_vec(),
            value: value.to_vec(),
            owner: "o".into(),
        };
        assert_eq!(
            events,
            [
                stored(b"k", b"a"),
                stored(b"j", b"b"),
                SyncEvent::Deleted { key: b"k".to_vec() }
            ]
        );
    }

    #[test]
    fn lease_rules() {
        let now = 10_000;
        // Free key, same owner, lapsed lease.
        assert!(may_store(None, "b", now, now, true));
        assert!(may_store(Some(&entry("a", now - 10)), "a", now, now, true));
        assert!(may_store(
            Some(&entry("a", now - LEASE_SECS - 1)),
            "b",
            now,
            now,
            true
        ));
        assert!(!may_store(
            Some(&entry("a", now - LEASE_SECS)),
            "b",
            now,
            now,
            true
        ));
        // Another owner within the lease: refused, newer or not.
        assert!(!may_store(Some(&entry("a", now - 10)), "b", now, now, true));
        // Equal times: the smaller owner id wins.
        assert!(may_store(Some(&entry("b", now)), "a", now, now, true));
        assert!(!may_store(Some(&entry("a", now)), "b", now, now, true));
        // Without leasing a strictly newer time wins, an older one does not.
        assert!(may_store(Some(&entry("a", now - 10)), "b", now, now, false));
        assert!(!may_store(
            Some(&entry("a", now)),
            "b",
            now - 10,
            now,
            false
        ));
    }
}
