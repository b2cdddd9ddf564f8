//! Redialling peers lost without our doing, backing off.

use std::time::Instant;

use log::debug;
use py2p_net::Net;

use super::effect::Purpose;
use super::state::{LostPeer, MeshCore};
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
        // Found again (a handshake under its id): nothing more to do.
        let found: Vec<String> = self
            .lost
            .keys()
            .filter(|id| self.routing.contains_key(*id))
            .cloned()
            .collect();
        for id in found {
            self.lost.remove(&id);
        }
        self.lost.retain(|id, l| {
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
            let Some(l) = self.lost.get_mut(&id) else {
                continue;
            };
            if dialling {
                l.next_try = now + self.config.reconnect_interval;
                continue;
            }
            l.attempts += 1;
            let backoff = self
                .config
                .reconnect_interval
                .saturating_mul(1 << l.attempts.min(4))
                .min(std::time::Duration::from_secs(60));
            l.next_try = now + backoff;
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

    /// Remembers a peer lost without our doing (its connection broke), to redial it at `addr`
    /// for `reconnect_for`; the oldest are forgotten past `max_lost_peers`.
    pub(super) fn remember_lost(&mut self, id: &str, addr: (String, u16), now: Instant) {
        if self.config.reconnect_for.is_zero() {
            return;
        }
        self.forget_lost_beyond(self.config.max_lost_peers.saturating_sub(1));
        self.lost.insert(
            id.to_owned(),
            LostPeer {
                addr,
                since: now,
                next_try: now + self.config.reconnect_interval,
                attempts: 0,
            },
        );
    }
}
