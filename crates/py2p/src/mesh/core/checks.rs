//! Broadcasts parked for their id checks, checked together.
//!
//! The id of every broadcast a node receives is checked by a sha-384 of its payload and
//! time. Hashed side by side ([`sha384_each`]), several short inputs share one pass of wide
//! instructions, so a broadcast that passes the seen check is decoded without its check and
//! parked here, and the parked ones are finished together: when [`PARKED_MAX`] wait, before
//! any other frame is handled (which keeps each connection's order), before any other call
//! of the node does anything, and at the end of each delivery run of the loop
//! (`Service::on_frames_done`). Finishing one is what handling it at once did: a mismatch is
//! the decode error it was, then the seen insert, the relay and the delivery, in the order
//! the frames came.
//!
//! An id that is parked is not in the seen set yet: a second copy of it in the same batch
//! (the waterfall brings copies from several peers) is parked too, and is dropped as a copy
//! when it is finished, after the first was taken; it is hashed only if the first was not
//! (a forged first copy must not hide the genuine second one).

#[cfg(test)]
mod tests;

use py2p_net::ConnId;
use py2p_wire::digest::sha384_each;
use py2p_wire::Unchecked;

use super::effect::Tables;
use super::input::Taken;
use super::out::Out;
use super::parked::{Parked, ParkedChecks};
use super::state::MeshCore;
use super::waterfall::Received;
use crate::mesh::seen::Key;

impl MeshCore {
    /// The broadcasts waiting for their id checks.
    pub(crate) fn parked(&self) -> &ParkedChecks {
        &self.parked
    }

    /// Parks a broadcast from `conn`, decoded without its id check (`key`: its id's key),
    /// with its body as it arrived (`received`).
    pub(super) fn park(
        &mut self,
        conn: ConnId,
        key: Key,
        msg: Unchecked,
        received: Option<Received<'_>>,
    ) {
        // A compressed body is copied only where a relay could send it on: to a routed
        // peer other than `conn`. Nothing that changes the routing table runs before
        // this broadcast is finished.
        let routing = &self.routing;
        let kept = received.and_then(|r| r.keep(|| routing.values().any(|&c| c != conn)));
        let copy = self.parked.items.iter().any(|p| p.key == key);
        self.parked.bytes += msg.message().body_len();
        self.parked.items.push_back(Parked {
            conn,
            key,
            msg: Some(msg),
            kept,
            digest: None,
            copy,
        });
    }

    /// A copy of a seen broadcast (its id's key: `key`) from `conn`: dropped now if nothing
    /// is parked, else when its turn comes.
    pub(super) fn drop_copy_in_turn(
        &mut self,
        net: &mut Out<'_>,
        conn: ConnId,
        key: Key,
    ) -> Taken<'static> {
        if self.parked.items.is_empty() {
            self.drop_copy(net, conn, key);
            return Taken::Done;
        }
        self.parked.items.push_back(Parked {
            conn,
            key,
            msg: None,
            kept: None,
            digest: None,
            copy: true,
        });
        Taken::Parked
    }

    /// Finishes the oldest parked broadcast (all of them are hashed together first); `false`
    /// when none was parked. The node carries out the effects of each before the next.
    pub(crate) fn finish_next(&mut self, net: &mut Out<'_>, tables: Tables) -> bool {
        let Some(front) = self.parked.items.front() else {
            return false;
        };
        if front.unhashed() {
            self.hash_parked();
        }
        let Some(p) = self.parked.items.pop_front() else {
            return false;
        };
        let Some(msg) = p.msg else {
            self.drop_copy(net, p.conn, p.key);
            return true;
        };
        self.parked.bytes = self.parked.bytes.saturating_sub(msg.message().body_len());
        let digest = match p.digest {
            Some(digest) => digest,
            // A copy of one parked before it that was taken: dropped as any copy of a
            // seen broadcast. Else (that one was forged, or too old) it is checked now.
            None if p.copy && self.seen.contains_key(p.key) => {
                self.drop_copy(net, p.conn, p.key);
                return true;
            }
            None => msg.digest(),
        };
        match msg.check(&digest) {
            Ok(msg) => {
                let received = p.kept.as_ref().map(Received::of_kept);
                self.handle_message(net, p.conn, msg, received, tables);
            }
            Err(e) => {
                if self.handle_decode_error(net, p.conn, e) {
                    // Closed for it: the loop hands nothing more of the connection's input
                    // to the node, so what of it is parked goes too.
                    self.parked.closed.push(p.conn);
                    let before = self.parked.items.len();
                    self.parked.items.retain(|q| q.conn != p.conn);
                    if self.parked.items.len() != before {
                        self.parked.bytes = self
                            .parked
                            .items
                            .iter()
                            .filter_map(|q| q.msg.as_ref())
                            .map(|m| m.message().body_len())
                            .sum();
                    }
                }
            }
        }
        true
    }

    /// Hashes together every parked broadcast not hashed yet, but the copies of ones before
    /// them.
    fn hash_parked(&mut self) {
        let parked = &mut self.parked;
        let mut digests = std::mem::take(&mut parked.digests);
        digests.clear();
        sha384_each(
            parked
                .items
                .iter()
                .filter(|p| p.unhashed())
                .filter_map(|p| p.msg.as_ref())
                .map(Unchecked::digest_input),
            &mut digests,
        );
        for (p, digest) in parked
            .items
            .iter_mut()
            .filter(|p| p.unhashed())
            .zip(&digests)
        {
            p.digest = Some(*digest);
        }
        parked.digests = digests;
    }
}
