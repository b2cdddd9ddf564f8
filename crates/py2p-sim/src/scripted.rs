//! A peer with no logic of its own: whoever drives the simulation (a fuzz target) decides
//! every byte it sends, when it dials and when it hangs up.

use std::collections::BTreeSet;

use py2p_net::{CloseReason, ConnId, ConnInfo, Net, Service};

/// Frame bodies a scripted peer keeps of what it heard, at most.
const MAX_HEARD: usize = 256;

/// The state of a scripted peer: its connections and what it heard on them.
#[derive(Debug, Default)]
pub(super) struct ScriptedPeer {
    /// Connections open (dials that completed, and accepted ones).
    pub open: BTreeSet<ConnId>,
    /// Frame bodies received, oldest first (the first [`MAX_HEARD`]).
    pub heard: Vec<Vec<u8>>,
}

impl Service for ScriptedPeer {
    type Command = ();

    fn on_open(&mut self, _net: &mut dyn Net, conn: ConnId, _info: &ConnInfo) {
        self.open.insert(conn);
    }

    fn on_frame(&mut self, _net: &mut dyn Net, _conn: ConnId, body: &[u8]) {
        if self.heard.len() < MAX_HEARD {
            self.heard.push(body.to_vec());
        }
    }

    fn on_close(&mut self, _net: &mut dyn Net, conn: ConnId, _reason: &CloseReason) {
        self.open.remove(&conn);
    }

    fn on_command(&mut self, _net: &mut dyn Net, _cmd: ()) {}

    fn on_tick(&mut self, _net: &mut dyn Net) {}
}
