//! py2p's renegotiation: undecodable frames, compression lists, resends.

use log::{debug, warn};
use py2p_net::{ConnId, Net};
use py2p_wire::{compression, Flag, WireError};

use super::effect::Effect;
use super::path::Path;
use super::state::MeshCore;

impl MeshCore {
    /// Counts, logs and answers an undecodable frame from `conn`; whether the connection is
    /// closed for it.
    pub(super) fn handle_decode_error(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        e: WireError,
    ) -> bool {
        self.counters.decode_errors += 1;
        self.hit(Path::Undecodable);
        let max = self.config.max_decode_errors;
        let Some(peer) = self.peers.get_mut(&conn) else {
            return false;
        };
        peer.decode_errors += 1;
        let text = format!("{}: undecodable frame: {e}", peer.label());
        warn!("{text}");
        self.effects.push_back(Effect::Error(text));
        let fatal = matches!(
            e,
            WireError::DecompressedTooLarge { .. } | WireError::TooManyPackets { .. }
        );
        if fatal || peer.decode_errors > max {
            warn!(
                "{}: closing after {} undecodable frame(s)",
                peer.label(),
                peer.decode_errors
            );
            net.close(conn);
            return true;
        }
        // py2p's recovery: ask the peer to stop compressing and to send its last message again.
        self.send_to(
            net,
            conn,
            Flag::RENEGOTIATE,
            vec![vec![Flag::COMPRESSION.0], b"[]".to_vec()],
        );
        self.send_to(net, conn, Flag::RENEGOTIATE, vec![vec![Flag::RESEND.0]]);
        false
    }

    pub(super) fn handle_renegotiate(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        payload: py2p_wire::Payload<'_>,
    ) {
        let ours = self.config.compressions.clone();
        if !self.peers.contains_key(&conn) {
            return;
        }
        let flag = payload.first().and_then(Flag::from_packet);
        self.hit(match flag {
            Some(Flag::COMPRESSION) => Path::RenegotiateCompression,
            Some(Flag::RESEND) => Path::RenegotiateResend,
            _ => Path::RenegotiateOther,
        });
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        match flag {
            Some(Flag::COMPRESSION) => {
                let list = payload
                    .get(1)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                let theirs = match compression::from_json(&list) {
                    Ok(t) => t,
                    Err(e) => {
                        warn!("{}: bad renegotiate list: {e}", peer.label());
                        return;
                    }
                };
                let respond = peer.theirs != theirs;
                self.peers_dirty = true;
                peer.compression = compression::negotiate(&ours, &theirs);
                peer.theirs = theirs;
                debug!("{}: compression now {:?}", peer.label(), peer.compression);
                if respond {
                    let json = compression::to_json(&peer.compression);
                    self.send_to(
                        net,
                        conn,
                        Flag::RENEGOTIATE,
                        vec![vec![Flag::COMPRESSION.0], json.into_bytes()],
                    );
                }
            }
            Some(Flag::RESEND) => {
                let Some(last) = peer.last_sent.clone() else {
                    return;
                };
                // The same message again: same time, same id (py2p stamps it anew, and then
                // every peer that had it already delivers it a second time).
                debug!("{}: resending the last message", peer.label());
                if let Some(frame) = self.frame_for(conn, &last) {
                    net.send(conn, frame.into());
                }
            }
            _ => debug!("{}: unknown renegotiate message", peer.label()),
        }
    }
}
