//! The simulator's hands on its scripted peers (what the node fuzz targets drive): add one,
//! make it dial, write, hang up, and read what it heard. Kept apart from [`ScriptedPeer`]
//! itself, which the nodes' module runs, so that no module imports one that imports it back.

use std::net::SocketAddr;

use py2p_net::Net;

use super::network::node_addr;
use super::node::{Actor, ActorCommand};
use super::scripted::ScriptedPeer;
use super::Sim;

impl Sim {
    /// Adds a scripted peer (it does nothing until told); returns its number.
    pub(super) fn add_scripted_peer(&mut self) -> usize {
        let config = self.network.config.mesh.clone();
        let index = self.slots.len();
        let endpoint = self.new_endpoint(index, 0, &config.net);
        self.push_slot(Actor::Scripted(Box::default()), endpoint, config, None)
    }

    pub(super) fn scripted(&mut self, i: usize) -> Option<&mut ScriptedPeer> {
        let slot = self.slots.get_mut(i)?;
        match &mut slot.actor {
            Actor::Scripted(s) if slot.alive => Some(s),
            _ => None,
        }
    }

    /// Runs `f` in scripted peer `i`'s turn, with its endpoint as the network it acts
    /// through.
    fn scripted_turn(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut ScriptedPeer, &mut dyn Net) + Send + 'static,
    ) {
        let Some((endpoint, actor @ Actor::Scripted(_), _)) = self.parts(i) else {
            return;
        };
        endpoint.command(ActorCommand::Scripted(Box::new(f)), actor);
        endpoint.commands_done(actor);
        self.after_turn(i);
    }

    /// Scripted peer `i` dials `addr`.
    pub(super) fn scripted_dial(&mut self, i: usize, addr: SocketAddr) {
        self.scripted_turn(i, move |_, net| {
            let _ = net.dial(addr);
        });
    }

    /// Scripted peer `i` dials node `target`.
    pub(super) fn scripted_dial_node(&mut self, i: usize, target: usize) {
        self.scripted_dial(i, node_addr(target));
    }

    /// Scripted peer `i` writes `bytes` on its oldest open connection; `false` when it has
    /// none.
    pub(super) fn scripted_send(&mut self, i: usize, bytes: Vec<u8>) -> bool {
        if self.scripted(i).is_none_or(|p| p.open.is_empty()) {
            return false;
        }
        self.scripted_turn(i, move |peer, net| {
            if let Some(&conn) = peer.open.iter().next() {
                net.send(conn, bytes.into());
            }
        });
        true
    }

    /// Scripted peer `i` hangs up every connection.
    pub(super) fn scripted_close(&mut self, i: usize) {
        self.scripted_turn(i, move |peer, net| {
            for &conn in &peer.open {
                net.close(conn);
            }
        });
    }

    /// Frame bodies scripted peer `i` received so far (the first few hundred).
    pub(super) fn scripted_heard(&mut self, i: usize) -> &[Vec<u8>] {
        self.scripted(i).map_or(&[], |p| p.heard.as_slice())
    }
}
