//! Handing messages to the user: handlers (with their `Connection`) and the inbox.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use log::{debug, error};
use py2p_net::ConnId;
use py2p_wire::Flag;

use super::path::Path;
use super::state::MeshCore;
use crate::connection::{is_user_sub_flag, Connection};
use crate::message::{Message, MessageKind};

impl MeshCore {
    /// The handle a handler gets on the connection `conn`.
    pub(super) fn connection(&self, conn: ConnId) -> Connection {
        let peer = self.peers.get(&conn);
        Connection {
            conn,
            peer_id: peer.and_then(|p| p.id.clone()),
            addr: peer.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.tcp_addr),
            out_addr: peer.and_then(|p| p.addr.clone()),
            outgoing: peer.is_some_and(|p| p.outgoing),
            limits: self.limits,
            sender_id_len: self.id.len(),
            handle: self.shared.handle.get().cloned(),
        }
    }

    pub(super) fn deliver(&mut self, conn: ConnId, msg: py2p_wire::Message) {
        // How it travelled: a broadcast went through the waterfall (and was de-duplicated);
        // anything else came to this node alone. A broadcast sub-flag in a message sent to
        // this node alone does not make it a broadcast: a peer could otherwise hand the user
        // a copy of a broadcast it already has.
        let kind = if Flag::from_packet(msg.msg_type()) == Some(Flag::BROADCAST) {
            MessageKind::Broadcast
        } else {
            MessageKind::Whisper
        };
        // Users' messages, their own sub-flags included, reach `recv`; the protocol's
        // (a `store` on a node without a table, say) reach only the handlers, as in py2p.
        let queued = msg.payload().first().is_some_and(|p| is_user_sub_flag(p));
        let message = Message { wire: msg, kind };
        if !self.handlers.is_empty() {
            // While the handlers run, `status()` is answered from the published copy.
            self.publish_status(std::time::Duration::from_millis(1));
            if !self.conn_handles.contains_key(&conn) {
                let handle = self.connection(conn);
                self.conn_handles.insert(conn, handle);
            }
            let Some(connection) = self.conn_handles.get(&conn) else {
                return;
            };
            self.shared
                .in_handler
                .store(true, std::sync::atomic::Ordering::Release);
            let mut taken = false;
            for handler in self.handlers.iter_mut() {
                match catch_unwind(AssertUnwindSafe(|| handler(&message, connection))) {
                    Ok(true) => {
                        taken = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) => {
                        self.counters.handler_panics += 1;
                        let text = format!(
                            "a message handler panicked on message {} from {}",
                            message.id(),
                            message.sender()
                        );
                        error!("{text}; the node goes on");
                        self.shared.note_error(text);
                    }
                }
            }
            self.shared
                .in_handler
                .store(false, std::sync::atomic::Ordering::Release);
            if taken {
                return;
            }
        }
        if queued {
            self.counters.hit(Path::Delivered);
            self.counters.received += 1;
            let bytes = message.wire.body_len();
            // Readers are woken once at the end of the loop's turn (`on_backlog`).
            self.shared.inbox.push_sized_later(message, bytes);
        } else {
            self.counters.hit(Path::Unknown);
            debug!(
                "ignoring message with sub-flag {:?} from {}",
                message.payload().first(),
                message.sender()
            );
        }
    }
}
