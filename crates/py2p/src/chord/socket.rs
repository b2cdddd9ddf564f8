//! `ChordSocket`: the handle users hold on a chord node.

use std::sync::mpsc;
use std::time::Duration;

use super::{ChordCommand, ChordConfig, ChordInfo, ChordTable};
use crate::config::MeshConfig;
use crate::mesh::{Command, MeshSocket};
use crate::Error;

/// A node of a distributed hash table, wire-compatible with py2p 0.5.607's `chord_socket`.
///
/// It is a mesh node underneath (its mesh methods are its own; [`ChordSocket::mesh`] gives the [`MeshSocket`]) on py2p's chord subnet,
/// `"chord"`. A node starts leeching: it can set and get, and holds no slots until
/// [`join`](ChordSocket::join). Each key lives in five slots on the joined nodes; a get
/// returns a value when three slots agree.
///
/// ```
/// use std::time::{Duration, Instant};
/// use py2p::{ChordConfig, ChordSocket};
///
/// let config = || ChordSocket::config().bind("127.0.0.1:0".parse().unwrap()).build();
/// let a = ChordSocket::bind(config(), ChordConfig::default())?;
/// let b = ChordSocket::bind(config(), ChordConfig::default())?;
/// b.connect(a.local_addr())?;
/// b.wait_for_peers(1, Duration::from_secs(10))?;
/// a.join()?;
/// b.join()?;
/// a.wait_for_ring(1, Duration::from_secs(10))?; // a knows b joined
/// b.wait_for_ring(1, Duration::from_secs(10))?;
///
/// a.set("colour", "blue")?;
/// // Sets and deletes are not acknowledged (as in py2p): another node reads the old value
/// // until the stores reach the slots' holders, so a reader that must see the write polls.
/// let t = Duration::from_secs(10);
/// let reads = |node: &ChordSocket, want: Option<&[u8]>| -> Result<bool, py2p::Error> {
///     let deadline = Instant::now() + t;
///     while Instant::now() < deadline {
///         if node.get("colour", t)?.as_deref() == want {
///             return Ok(true);
///         }
///         std::thread::sleep(Duration::from_millis(10)); // the stores are on their way
///     }
///     Ok(false)
/// };
/// assert!(reads(&b, Some(b"blue"))?);
/// b.delete("colour")?;
/// assert!(reads(&a, None)?);
/// # Ok::<(), py2p::Error>(())
/// ```
pub struct ChordSocket {
    mesh: MeshSocket,
    config: ChordConfig,
}

impl ChordSocket {
    /// A configuration builder whose subnet is py2p's for chord, `"chord"`.
    pub fn config() -> crate::config::MeshConfigBuilder {
        MeshConfig::builder().subnet("chord")
    }

    /// Binds and starts a chord node (leeching until [`join`](ChordSocket::join)).
    pub fn bind(config: MeshConfig, chord: ChordConfig) -> Result<ChordSocket, Error> {
        let table = chord.clone();
        let mesh =
            MeshSocket::start_with(config, None, move |id| Some(ChordTable::new(table, id)))?;
        Ok(ChordSocket {
            mesh,
            config: chord,
        })
    }

    fn command(&self, cmd: ChordCommand) -> Result<(), Error> {
        self.mesh.handle().send(Command::Chord(cmd))?;
        Ok(())
    }

    /// Starts holding slots: peers hand this node the slots it now holds.
    pub fn join(&self) -> Result<(), Error> {
        self.command(ChordCommand::Join)
    }

    /// Stops holding slots; those held go to the other joined nodes (kept when there is
    /// none).
    pub fn unjoin(&self) -> Result<(), Error> {
        self.command(ChordCommand::Unjoin)
    }

    /// Stores `value` at `key` in its five slots. An empty value deletes, as in py2p.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let (reply, rx) = mpsc::channel();
        self.command(ChordCommand::Set {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
            reply,
        })?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Stores every pair; stops at the first error.
    pub fn update<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), Error> {
        for (k, v) in pairs {
            self.set(k, v)?;
        }
        Ok(())
    }

    /// Deletes `key` from its five slots and from every node's key list; whether this node
    /// knew the key.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        let (reply, rx) = mpsc::channel();
        self.command(ChordCommand::Delete {
            key: key.as_ref().to_vec(),
            reply,
        })?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// The value at `key`: `Some` when three of its five slots agree within `timeout`,
    /// `None` when the key is missing or no three agree.
    pub fn get(&self, key: impl AsRef<[u8]>, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        let (reply, rx) = mpsc::channel();
        self.command(ChordCommand::Get {
            key: key.as_ref().to_vec(),
            timeout,
            reply,
        })?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// [`get`](ChordSocket::get) with the configured `get_timeout`.
    pub fn get_default(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.get(key, self.config.get_timeout)
    }

    /// The user keys this node knows of (set here, or announced by peers).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, Error> {
        let (reply, rx) = mpsc::channel();
        self.command(ChordCommand::Keys(reply))?;
        rx.recv().map_err(|_| Error::Closed)
    }

    /// Waits until this node knows at least `n` joined peers (each has told it so); the
    /// table's info then.
    pub fn wait_for_ring(&self, n: usize, timeout: Duration) -> Result<ChordInfo, Error> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let info = self.info()?;
            if info.joined_peers >= n {
                return Ok(info);
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{} of {n} joined peers after {timeout:?}",
                        info.joined_peers
                    ),
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The state of the node's table.
    pub fn info(&self) -> Result<ChordInfo, Error> {
        let (reply, rx) = mpsc::channel();
        self.command(ChordCommand::Info(reply))?;
        rx.recv().map_err(|_| Error::Closed)
    }
}

/// The mesh methods a ChordSocket user calls, stated here instead of a `Deref` to
/// [`MeshSocket`]; [`ChordSocket::mesh`] gives the rest.
impl ChordSocket {
    crate::mesh_methods::mesh_methods!();
}
