//! `SyncSocket`: the handle users hold on a sync-table node.

use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use py2p_wire::Protocol;

use super::{Entry, SyncCommand, SyncEvent, SyncTable, SyncView};
use crate::config::MeshConfig;
use crate::mesh::{Command, MeshSocket};
use crate::Error;

/// A dictionary kept equal across every node of a network, wire-compatible with py2p
/// 0.5.607's `sync_socket`, leases included.
///
/// It is a mesh node underneath (its mesh methods are its own; [`SyncSocket::mesh`] gives the [`MeshSocket`]), on a network of its
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
    /// The node's copy of the table, and its changes.
    view: Arc<SyncView>,
    leasing: bool,
    limits: py2p_wire::Limits,
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
        let view = Arc::new(SyncView::new(65_536));
        let table = SyncTable::new(leasing, config.max_table_bytes);
        let limits = config.net.limits;
        let mesh = MeshSocket::start(config, Some((table, view.clone())))?;
        Ok(SyncSocket {
            mesh,
            view,
            leasing,
            limits,
        })
    }

    /// Whether this table enforces leases.
    pub fn leasing(&self) -> bool {
        self.leasing
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.view.read()
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
        let sender_id_len = self.mesh.id().len();
        crate::connection::check_size(
            &self.limits,
            sender_id_len,
            &[vec![0], key.to_vec(), value.to_vec()],
        )?;
        let (tx, rx) = mpsc::channel();
        let on_loop = self.mesh.handle().is_loop_thread();
        // On the loop thread (in a handler) the answer cannot be waited for: the write is
        // checked against the table as it stands, which nothing changes until the handler
        // returns, and the loop applies it then.
        let early = if on_loop {
            Some(self.check_here(key)?)
        } else {
            None
        };
        let cmd = SyncCommand::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            reply: tx,
        };
        self.mesh.handle().send(Command::Sync(cmd))?;
        match early {
            Some(old) => Ok(old),
            None => rx.recv().map_err(|_| Error::Closed)?,
        }
    }

    /// The lease rule for a write of ours to `key` now; the value it replaces.
    fn check_here(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let data = self.read();
        let current = data.get(key);
        if !super::table::may_store(current, self.mesh.id(), now, now, self.leasing) {
            let (owner, time) = current.map_or((String::new(), 0), |e| (e.owner.clone(), e.time));
            return Err(Error::Leased {
                key: key.to_vec(),
                owner,
                until: time.saturating_add(super::LEASE_SECS),
            });
        }
        Ok(current.map(|e| e.value.clone()))
    }

    /// Stores `value` at `key` and tells the network. Fails with [`Error::Leased`] when
    /// another node holds the key's lease. An empty value deletes the key, as in py2p.
    ///
    /// Called from a handler (on the event-loop thread) it does not wait: the lease is
    /// checked against the table as it is, and the write is applied when the handler returns.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write(key.as_ref(), value.as_ref()).map(|_| ())
    }

    /// Deletes `key` across the network (py2p's `del table[key]`). Fails with
    /// [`Error::NoSuchKey`] when the key holds no value, as py2p raises `KeyError`.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        self.pop(key).map(|_| ())
    }

    /// Removes `key` and returns its value (py2p's `pop(key)`); [`Error::NoSuchKey`] when
    /// it holds none (py2p's `KeyError`). [`SyncSocket::pop_or`] is `pop(key, default)`.
    pub fn pop(&self, key: impl AsRef<[u8]>) -> Result<Vec<u8>, Error> {
        let key = key.as_ref();
        if !self.contains(key) {
            return Err(Error::NoSuchKey(key.to_vec()));
        }
        self.write(key, b"")?
            .ok_or_else(|| Error::NoSuchKey(key.to_vec()))
    }

    /// Removes `key` and returns its value, or `default` when it holds none (py2p's
    /// `pop(key, default)`).
    pub fn pop_or(&self, key: impl AsRef<[u8]>, default: Vec<u8>) -> Result<Vec<u8>, Error> {
        match self.pop(key) {
            Err(Error::NoSuchKey(_)) => Ok(default),
            other => other,
        }
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

    fn wait(&self, timeout: Option<Duration>) -> Option<Duration> {
        if self.mesh.handle().is_loop_thread() {
            Some(Duration::ZERO)
        } else {
            timeout
        }
    }

    /// The next change to the table, waiting at most `timeout` (not at all on the event-loop
    /// thread).
    pub fn next_change(&self, timeout: Duration) -> Option<SyncEvent> {
        self.view.events.pop(self.wait(Some(timeout))).0
    }

    /// An iterator of changes that waits for each; it ends when the socket closes (on the
    /// event-loop thread: when none is waiting).
    pub fn changes(&self) -> impl Iterator<Item = SyncEvent> + '_ {
        std::iter::from_fn(move || self.view.events.pop(self.wait(None)).0)
    }
}

/// The mesh methods a SyncSocket user calls, stated here instead of a `Deref` to
/// [`MeshSocket`]; [`SyncSocket::mesh`] gives the rest.
impl SyncSocket {
    crate::mesh_methods::mesh_methods!();
}
