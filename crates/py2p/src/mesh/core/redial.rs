//! Redialling peers lost without our doing, backing off.

use std::time::{Duration, Instant};

use log::debug;
use py2p_net::Net;

use super::effect::Purpose;
use super::state::{LostPeer, MeshCore, FLAP_WINDOW};
use crate::mesh::resolver::Then;

impl MeshCore {
    /// Dials peers lost without our doing again, backing off, for `reconnect_for`: after a
    /// partition heals, the two sides find each other again (py2p only asks its remaining
    /// peers for theirs, which cannot bridge a cut).
    pub(super) fn redial_lost(&mut self, net: &mut dyn Net, now: Instant) {
        let give_up = self.config.reconnect_for;
        let mut due: Vec<String> = Vec::new();
        let connected_addrs: Vec<(String, u16)> =
            self.peers.values().filter_map(|p| p.addr.clone()).collect();
        self.lost.retain(|id, l| {
            if let Some(found) = l.found {
                // Back for the whole window: its losses are forgotten.
                return now.duration_since(found) < FLAP_WINDOW;
            }
            let keep = now.duration_since(l.since) <= give_up && !connected_addrs.contains(&l.addr);
            if keep && l.next_try <= now {
                due.push(id.clone());
            }
            keep
        });
        due.sort_unstable();
        for id in due {
            // A dial under way (from a peer list, or the last try) is left to finish.
            let dialling = self
                .dials
                .values()
                .any(|d| d.expected_id.as_deref() == Some(id.as_str()));
            let interval = self.config.reconnect_interval;
            let Some(l) = self.lost.get_mut(&id) else {
                continue;
            };
            if dialling {
                l.next_try = now + interval;
                continue;
            }
            l.attempts += 1;
            l.next_try = now + backoff(interval, l.attempts);
            let (host, port) = l.addr.clone();
            debug!(
                "redialling lost peer {id} at {host}:{port} (attempt {})",
                l.attempts
            );
            let then = Then {
                expected_id: Some(id),
                deferred: Vec::new(),
            };
            self.dial_advertised(net, &host, port, then, Purpose::Redial);
        }
    }

    /// Whether a peer list may make us dial `id` now. A peer lost once may be, however many
    /// redials failed (as py2p does: it asks its peers for theirs and dials who they name;
    /// after a partition heals, lists are how the halves find each other soonest). One that
    /// dropped us again soon after it came back (py2p's chord drops the outgoing connection
    /// it finds least useful, for one, then dials it again when a list names it) is not
    /// dialled from lists for the backoff of its flaps (`reconnect_interval` doubled per
    /// flap, at most a minute, from the loss): two nodes dialling each other straight back
    /// would open and close connections without end.
    pub(super) fn may_dial_listed(&self, id: &str, now: Instant) -> bool {
        // From the loss (`since`), not `next_try`: failed redials must not push it further.
        self.lost.get(id).is_none_or(|l| {
            l.found.is_some()
                || l.flaps == 0
                || now >= l.since + backoff(self.config.reconnect_interval, l.flaps)
        })
    }

    /// A lost peer completed a handshake again: not redialled any more, but remembered for
    /// [`FLAP_WINDOW`] in case it goes again.
    pub(super) fn found_again(&mut self, id: &str, now: Instant) {
        if let Some(l) = self.lost.get_mut(id) {
            l.found.get_or_insert(now);
        }
    }

    /// Forgets the peers lost longest ago until at most `keep` remain.
    pub(super) fn forget_lost_beyond(&mut self, keep: usize) {
        while self.lost.len() > keep {
            let Some(oldest) = self
                .lost
                .iter()
                .min_by(|a, b| a.1.since.cmp(&b.1.since).then_with(|| a.0.cmp(b.0)))
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            debug!("forgetting lost peer {oldest}: too many lost peers remembered");
            self.lost.remove(&oldest);
        }
    }

    /// Remembers a peer lost without our doing (its connection broke, or it closed it), to
    /// redial it at `addr` for `reconnect_for`; the oldest are forgotten past
    /// `max_lost_peers`. A peer that `closed` the connection itself again within
    /// [`FLAP_WINDOW`] of coming back is tried at the next, doubled, interval: one that keeps
    /// dropping us is dialled less and less. A broken connection (an I/O error: a reset, a
    /// cut) starts over at one interval: the network, not the peer, ended it.
    pub(super) fn remember_lost(
        &mut self,
        id: &str,
        addr: (String, u16),
        closed: bool,
        now: Instant,
    ) {
        if self.config.reconnect_for.is_zero() {
            return;
        }
        let flaps = match self.lost.get(id) {
            Some(l) if closed && l.found.is_some_and(|f| now.duration_since(f) < FLAP_WINDOW) => {
                l.flaps + 1
            }
            _ => 0,
        };
        if !self.lost.contains_key(id) {
            self.forget_lost_beyond(self.config.max_lost_peers.saturating_sub(1));
        }
        if flaps > 0 {
            debug!("peer {id} lost again soon after it came back ({flaps} time(s) in a row)");
        }
        self.lost.insert(
            id.to_owned(),
            LostPeer {
                addr,
                since: now,
                next_try: now + backoff(self.config.reconnect_interval, flaps),
                attempts: flaps,
                flaps,
                found: None,
            },
        );
    }
}

/// The wait before try `attempts` + 1 of a lost peer: `interval`, doubling per attempt, at
/// most a minute.
fn backoff(interval: Duration, attempts: u32) -> Duration {
    interval
        .saturating_mul(1 << attempts.min(4))
        .min(Duration::from_secs(60))
}
