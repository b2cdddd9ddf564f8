//! What the sync and chord tables need of the mesh node they are part of: its id, the
//! routing table, and sending. The mesh core implements it; the tables import this module,
//! not the core, so neither side imports the other.

use py2p_net::{ConnId, Net};
use py2p_wire::Flag;

/// The mesh node as a table sees it.
pub(crate) trait MeshLink {
    /// This node's id.
    fn id(&self) -> &str;
    /// The connection routed to the peer `id`.
    fn routed_conn(&self, id: &str) -> Option<ConnId>;
    /// The id of the peer on `conn`, once its handshake is complete.
    fn peer_id_of(&self, conn: ConnId) -> Option<String>;
    /// The peer on `conn` as log lines name it (id and address).
    fn peer_label_of(&self, conn: ConnId) -> String;
    /// The ids of the routed peers, sorted.
    fn routed_ids(&self) -> Vec<String>;
    /// Sends a message of ours (`msg_type`, `payload`) to one connection.
    fn send_to(&mut self, net: &mut dyn Net, conn: ConnId, msg_type: Flag, payload: Vec<Vec<u8>>);
    /// A broadcast of ours to every peer.
    fn broadcast(&mut self, net: &mut dyn Net, payload: Vec<Vec<u8>>);
}
