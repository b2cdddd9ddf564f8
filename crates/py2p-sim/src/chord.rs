//! Chord nodes in a simulation: [`ChordSocket`](py2p::ChordSocket)'s table on a simulated
//! node, and the user's calls on it.

use std::sync::mpsc;
use std::time::Duration;

use super::network::{node_addr, PORT};
use super::node::Actor;
use super::simulator::Sim;
use py2p::internals::{ChordCommand, ChordTable, Command};
use py2p::{ChordConfig, ChordInfo};

impl Sim {
    /// Adds a chord node, as [`ChordSocket`](py2p::ChordSocket) runs one: the run's mesh
    /// configuration on the subnet `"chord"`, leeching until [`Sim::chord_join`]. Returns
    /// its number.
    pub fn add_chord_node(&mut self) -> usize {
        self.add_chord_node_with(ChordConfig::default())
    }

    /// Adds a chord node with its own chord limits and timers.
    pub fn add_chord_node_with(&mut self, chord: ChordConfig) -> usize {
        let mut config = self.network.config.mesh.clone();
        config.protocol = py2p_wire::Protocol::new("chord", config.protocol.encryption);
        let index = self.slots.len();
        let addr = node_addr(index);
        config.bind = addr;
        config.out_addr = Some((addr.ip().to_string(), PORT));
        let mut endpoint = self.new_endpoint(index, 0, &config.net);
        let mut node = self.new_mesh_node(index, 0, &config, None, &mut endpoint);
        node.core.chord = Some(ChordTable::new(chord, &node.id));
        self.push_slot(Actor::Mesh(Box::new(node)), endpoint, config, None)
    }

    fn chord_command(&mut self, i: usize, cmd: ChordCommand) -> bool {
        self.slots
            .get(i)
            .and_then(|s| s.actor.mesh())
            .is_some_and(|m| m.core.chord.is_some())
            && self.command(i, Command::Chord(cmd))
    }

    /// Chord node `i` joins the ring ([`ChordSocket::join`](py2p::ChordSocket::join)).
    pub fn chord_join(&mut self, i: usize) -> bool {
        self.chord_command(i, ChordCommand::Join)
    }

    /// Chord node `i` leaves the ring ([`ChordSocket::unjoin`](py2p::ChordSocket::unjoin)).
    pub fn chord_unjoin(&mut self, i: usize) -> bool {
        self.chord_command(i, ChordCommand::Unjoin)
    }

    /// Sets `key` on chord node `i`; `None` when it is not a live chord node.
    pub fn chord_set(
        &mut self,
        i: usize,
        key: &[u8],
        value: &[u8],
    ) -> Option<Result<(), py2p::Error>> {
        let (reply, answer) = mpsc::channel();
        let cmd = ChordCommand::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            reply,
        };
        self.chord_command(i, cmd).then(|| answer.try_recv().ok())?
    }

    /// Deletes `key` on chord node `i`; `None` when it is not a live chord node.
    pub fn chord_delete(&mut self, i: usize, key: &[u8]) -> Option<Result<bool, py2p::Error>> {
        let (reply, answer) = mpsc::channel();
        let cmd = ChordCommand::Delete {
            key: key.to_vec(),
            reply,
        };
        self.chord_command(i, cmd).then(|| answer.try_recv().ok())?
    }

    /// Gets every key of `keys` on chord node `i` at once, running the simulation until
    /// all are answered (each within `timeout` of virtual time): the values, `None` where
    /// no three slots agreed (or `i` is not a live chord node).
    pub fn chord_get_many<K: AsRef<[u8]>>(
        &mut self,
        i: usize,
        keys: &[K],
        timeout: Duration,
    ) -> Vec<Option<Vec<u8>>> {
        let mut answers: Vec<Option<mpsc::Receiver<Option<Vec<u8>>>>> = Vec::new();
        for key in keys {
            let (reply, answer) = mpsc::channel();
            let cmd = ChordCommand::Get {
                key: key.as_ref().to_vec(),
                timeout,
                reply,
            };
            answers.push(self.chord_command(i, cmd).then_some(answer));
        }
        let deadline = self.now() + timeout + Duration::from_secs(1);
        let mut out: Vec<Option<Option<Vec<u8>>>> = vec![None; keys.len()];
        loop {
            let mut waiting = false;
            for (slot, rx) in out.iter_mut().zip(&answers) {
                if slot.is_some() {
                    continue;
                }
                match rx.as_ref().map(mpsc::Receiver::try_recv) {
                    None | Some(Err(mpsc::TryRecvError::Disconnected)) => *slot = Some(None),
                    Some(Ok(v)) => *slot = Some(v),
                    Some(Err(mpsc::TryRecvError::Empty)) => waiting = true,
                }
            }
            if !waiting || self.now() > deadline || !self.step() {
                break;
            }
        }
        out.into_iter().map(Option::flatten).collect()
    }

    /// The state of chord node `i`'s table.
    pub fn chord_info(&self, i: usize) -> Option<ChordInfo> {
        let slot = self.slots.get(i).filter(|s| s.alive)?;
        Some(slot.actor.mesh()?.core.chord.as_ref()?.info())
    }
}
