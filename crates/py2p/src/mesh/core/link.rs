//! The mesh node as the sync and chord tables see it ([`MeshLink`]).

use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

use super::state::MeshCore;
use crate::mesh::link::MeshLink;

impl MeshLink for MeshCore {
    fn id(&self) -> &str {
        &self.id
    }

    fn routed_conn(&self, id: &str) -> Option<ConnId> {
        self.routing.get(id).copied()
    }

    fn peer_id_of(&self, conn: ConnId) -> Option<String> {
        self.peers.get(&conn)?.id.clone()
    }

    fn peer_label_of(&self, conn: ConnId) -> String {
        self.peers
            .get(&conn)
            .map_or_else(|| conn.to_string(), |p| p.label())
    }

    fn routed_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.routing.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    fn send_to(&mut self, net: &mut dyn Net, conn: ConnId, msg_type: Flag, payload: Vec<Vec<u8>>) {
        MeshCore::send_to(self, net, conn, msg_type, payload);
    }

    fn broadcast(&mut self, net: &mut dyn Net, payload: Vec<Vec<u8>>) {
        MeshCore::broadcast(self, net, payload);
    }
}
