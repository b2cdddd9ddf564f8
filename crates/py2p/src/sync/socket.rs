//! `SyncSocket`: the handle users hold on a sync-table node.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{mpsc, Arc, RwLock};
use std::time::Duration;

use py2p_wire::Protocol;

use super::{Entry, SyncCommand, SyncEvent, SyncTable};
use crate::config::MeshConfig;
use crate::inbox::Inbox;
use crate::mesh::{Command, MeshSocket};
use crate::Error;

/// A dictionary kept equal across every node of a network, wire-compatible with py2p
/// 0.5.607's `sync_socket`, leases included.
///
/// It is a mesh node underneath (it dereferences to [`MeshSocket`]), on a network of its
/// own: the subnet gets py2p's leasing digit appended (`sync1` with leases, `sync0` without),
/// so leasing and non-leasing tables never mix. Reads are local and cheap; writes go through
/// the event loop, which checks the lease and broadcasts the change.
///
/// ```
/// use std::time::Duration;
/// use py2p::{MeshConfig, SyncEvent, SyncSocket};
///
/// let config = || SyncSocket::config().bind("127.0.0.1:0".parse().unwrap()).build();
/// let a = SyncSocket::bind(config(), true)?;
/// let b = SyncSocket::bind(config(), true)?;
/// b.connect(a.local_addr())?;
/// b.wait_for_peers(1, Duration::from_secs(10))?;
///
/// a.set("colour", "blue")?;
/// // b hears of it as an event.
/// loop {
///     if let Some(SyncEvent::Stored { key, .. }) = b.next_change(Duration::from_secs(10)) {
///         if key == b"colour" { break; }
///     }
/// }
/// assert_eq!(b.get("colour"), Some(b"blue".to_vec()));
/// // a holds the lease for an hour: from the next second on, b may not overwrite it (within
/// // the same second py2p's tie-break, the smaller owner id, decides).
/// match b.set("colour", "red") {
///     Err(py2p::Error::Leased { owner, until, .. }) => println!("leased to {owner} until {until}"),
///     other => println!("{other:?}"),
/// }
/// # Ok::<(), py2p::Error>(())
/// ```
pub struct SyncSocket {
    mesh: MeshSocket,
    data: Arc<RwLock<HashMap<Vec<u8>, Entry>>>,
    events: Arc<Inbox<SyncEvent>>,
    leasing: bool,
}

impl SyncSocket {
    /// A configuration builder whose subnet is py2p's default for sync tables, `"sync"`.
    pub fn config() -> crate::config::MeshConfigBuilder {
        MeshConfig::builder().subnet("sync")
    }

    /// Binds and starts a sync node. The leasing digit is appended to the subnet.
    pub fn bind(mut config: MeshConfig, leasing: bool) -> Result<SyncSocket, Error> {
        let subnet = format!("{}{}", config.protocol.subnet, u8::from(leasing));
        config.protocol = Protocol::new(subnet, config.protocol.encryption);
        let events = Arc::new(Inbox::new(65_536));
        let table = SyncTable::new(leasing, config.max_table_bytes, events.clone());
        let data = table.data.clone();
        let mesh = MeshSocket::start(config, Some(table))?;
        Ok(SyncSocket {
            mesh,
            data,
            events,
            leasing,
        })
    }

    /// Whether this table enforces leases.
    pub fn leasing(&self) -> bool {
        self.leasing
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The value at `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.read().get(key.as_ref()).map(|e| e.value.clone())
    }

    /// The value at `key` with its owner and time.
    pub fn entry(&self, key: impl AsRef<[u8]>) -> Option<Entry> {
        self.read().get(key.as_ref()).cloned()
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> bool {
        self.read().contains_key(key.as_ref())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The keys, as they are now.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.read().keys().cloned().collect()
    }

    /// The values, as they are now.
    pub fn values(&self) -> Vec<Vec<u8>> {
        self.read().values().map(|e| e.value.clone()).collect()
    }

    /// The key/value pairs, as they are now.
    pub fn items(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read()
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// A copy of the whole table.
    pub fn snapshot(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        self.read()
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    fn write(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (tx, rx) = mpsc::channel();
        let cmd = SyncCommand::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            reply: tx,
        };
        self.mesh.handle().send(Command::Sync(cmd))?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Stores `value` at `key` and tells the network. Fails with [`Error::Leased`] when
    /// another node holds the key's lease. An empty value deletes the key, as in py2p.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write(key.as_ref(), value.as_ref()).map(|_| ())
    }

    /// Deletes `key` across the network; returns the value it had here.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.write(key.as_ref(), b"")
    }

    /// Removes `key` and returns its value (py2p's `pop`).
    pub fn pop(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.delete(key)
    }

    /// Stores every pair; stops at the first refused key.
    pub fn update<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), Error> {
        for (k, v) in pairs {
            self.set(k, v)?;
        }
        Ok(())
    }

    /// The next change to the table, waiting at most `timeout`.
    pub fn next_change(&self, timeout: Duration) -> Option<SyncEvent> {
        self.events.pop(Some(timeout)).0
    }

    /// An iterator of changes that waits for each; it ends when the socket closes.
    pub fn changes(&self) -> impl Iterator<Item = SyncEvent> + '_ {
        std::iter::from_fn(move || self.events.pop(None).0)
    }
}

impl Deref for SyncSocket {
    type Target = MeshSocket;
    fn deref(&self) -> &MeshSocket {
        &self.mesh
    }
}

/// Iterator of table changes (see [`SyncSocket::changes`]).
pub type SyncEvents<'a> = Box<dyn Iterator<Item = SyncEvent> + 'a>;
