//! Time: what was sent leaves the resend window, a due repair runs, gets and lookups past
//! their deadline are answered; and shutdown.

use super::*;

impl ChordTable {
    pub fn on_tick(&mut self, core: &mut dyn MeshLink, net: &mut dyn Net) {
        let now = net.now();
        let window = self.config.resend_window;
        self.recent.retain(|_, (queue, bytes)| {
            while queue
                .front()
                .is_some_and(|s| now.duration_since(s.at) > window)
            {
                if let Some(old) = queue.pop_front() {
                    *bytes = bytes.saturating_sub(old.value.len() + 128);
                }
            }
            !queue.is_empty()
        });
        if self.repair_at.is_some_and(|t| t <= now) {
            self.repair_at = None;
            self.repair(core, net);
        }
        let mut late: Vec<u64> = self
            .gets
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        late.sort_unstable();
        for gid in late {
            if let Some(get) = self.gets.remove(&gid) {
                self.answer_request(get.req, ChordAnswer::Get(get.settle()));
            }
        }
        let timeout = self.config.lookup_timeout;
        let mut stale: Vec<(Method, Key)> = self
            .lookups
            .iter()
            .filter(|(_, l)| now.duration_since(l.created) > timeout)
            .map(|(k, _)| *k)
            .collect();
        stale.sort_unstable();
        for (method, key) in stale {
            if let Some(l) = self.lookups.remove(&(method, key)) {
                debug!(
                    "chord: lookup {} {key:?} unanswered in {timeout:?}",
                    method.name()
                );
                let waiters = l
                    .waiters
                    .into_iter()
                    .filter(|w| matches!(w, Waiter::Peer(_)))
                    .collect();
                self.answer(core, net, method, &key, waiters, b"");
            }
        }
        // Gets whose lookups are all gone (answered "missing" above) are over already;
        // the rest wait for their deadline.
    }

    /// Gets end when the node stops: their askers hear what the answers so far decide
    /// (with fewer than three agreeing, "missing").
    pub fn on_shutdown(&mut self) {
        let mut gets: Vec<(u64, PendingGet)> = self.gets.drain().collect();
        gets.sort_unstable_by_key(|(gid, _)| *gid);
        for (_, get) in gets {
            self.answer_request(get.req, ChordAnswer::Get(get.settle()));
        }
    }
}
