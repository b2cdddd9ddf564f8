//! State shared between the event loop and the user's threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use log::warn;

use super::Command;
use crate::config::MeshConfig;
use crate::inbox::Inbox;
use crate::message::{Message, PeerEvent, PeerInfo};

/// What the loop publishes for the user's threads, so that `peers()` never waits on the loop
/// and `status()` need not when the loop is busy in a handler: the routing table (updated
/// before every peer event), a copy of the counters (after every turn), and the errors.
#[derive(Default)]
pub(crate) struct Published {
    pub peers: Vec<PeerInfo>,
    /// The status as of the end of the loop's last turn (`errors` and `inbox` left empty).
    pub status: Option<super::Status>,
    pub errors: VecDeque<String>,
    pub errors_total: u64,
}

/// Bytes waiting to be written, and bytes of user sends not yet taken by the loop: atomics,
/// so that a send under the high-water mark and the loop's count after each command take no
/// lock (a lock shared by a sender and the loop, taken for every message, was a futex call
/// per message whenever they met).
#[derive(Default)]
struct Backlog {
    queued: AtomicUsize,
    in_flight: AtomicUsize,
    closed: AtomicBool,
    /// Senders waiting in `reserve`: the loop wakes them only when there are some (a
    /// condvar's notify is a system call even with no one waiting).
    waiting: AtomicUsize,
    /// Held by a sender from counting itself as waiting until it sleeps, and by the loop to
    /// notify: no wake-up is lost between a sender's check and its sleep.
    lock: Mutex<()>,
    /// Times the loop woke waiting senders.
    wakeups: AtomicUsize,
}

impl Backlog {
    fn total(&self) -> usize {
        self.queued
            .load(Ordering::SeqCst)
            .saturating_add(self.in_flight.load(Ordering::SeqCst))
    }
}

/// A sender that waited wakes when the backlog has fallen to this fraction of the high-water
/// mark (or, after `RECHECK`, to the mark itself): a sender kept at the mark would otherwise
/// sleep and be woken once per message (a futex call and two context switches each), taking
/// the CPU the loops need to drain the backlog.
const LOW_WATER_DIVISOR: usize = 2;
/// How long a waiting sender sleeps before it settles for the high-water mark.
const RECHECK: Duration = Duration::from_millis(100);

pub struct Shared {
    pub inbox: Inbox<Message>,
    pub events: Inbox<PeerEvent>,
    pub handle: OnceLock<py2p_net::LoopHandle<Command>>,
    backlog: Backlog,
    drained: Condvar,
    high_water: usize,
    low_water: usize,
    published: Mutex<Published>,
    max_errors: usize,
    /// The loop is running a user's handler (so it cannot answer commands now).
    pub in_handler: AtomicBool,
}

impl Shared {
    pub fn new(config: &MeshConfig) -> Shared {
        let high_water = config.send_high_water;
        Shared {
            inbox: Inbox::with_max_bytes(config.inbox_capacity, config.inbox_max_bytes)
                .trimmed_on_tick(),
            events: Inbox::new(65_536),
            handle: OnceLock::new(),
            backlog: Backlog::default(),
            drained: Condvar::new(),
            high_water,
            low_water: high_water / LOW_WATER_DIVISOR,
            published: Mutex::new(Published::default()),
            max_errors: config.max_status_errors,
            in_handler: AtomicBool::new(false),
        }
    }

    pub fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an error for `status()` (the most recent `max_status_errors` are kept).
    pub fn note_error(&self, text: String) {
        let mut p = self.published();
        p.errors_total += 1;
        if self.max_errors == 0 {
            return;
        }
        while p.errors.len() >= self.max_errors {
            p.errors.pop_front();
        }
        p.errors.push_back(text);
    }

    /// Whether the loop is inside a user's handler.
    pub fn busy(&self) -> bool {
        self.in_handler.load(Ordering::Acquire)
    }

    pub fn push_event(&self, event: PeerEvent) {
        if self.events.has_room() {
            self.events.push(event);
        } else {
            warn!("peer event queue full; dropping {event:?}");
        }
    }

    /// Waits while more than the high-water mark of bytes wait for peers, then counts `bytes`
    /// as in flight. Returns false when the socket closed meanwhile. A sender that had to
    /// wait goes on once the backlog is down to the low-water mark (half the high one), or
    /// down to the high one after `RECHECK`. Senders that pass the check together may each
    /// add one message over the mark.
    pub fn reserve(&self, bytes: usize) -> bool {
        let b = &self.backlog;
        if b.total() > self.high_water && !b.closed.load(Ordering::SeqCst) {
            self.wait_for_room();
        }
        b.in_flight.fetch_add(bytes, Ordering::SeqCst);
        !b.closed.load(Ordering::SeqCst)
    }

    fn wait_for_room(&self) {
        let b = &self.backlog;
        let mut guard = b.lock.lock().unwrap_or_else(|p| p.into_inner());
        // Counted before the check: the loop either sees a waiter and notifies (under the
        // lock, so after this sender sleeps), or updated the counts before this check.
        b.waiting.fetch_add(1, Ordering::SeqCst);
        let mut mark = self.low_water;
        while !b.closed.load(Ordering::SeqCst) && b.total() > mark {
            let (g, timeout) = self
                .drained
                .wait_timeout(guard, RECHECK)
                .unwrap_or_else(|p| p.into_inner());
            guard = g;
            if timeout.timed_out() {
                mark = self.high_water;
            }
        }
        b.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
    }

    /// A send reserved with `reserve` has been queued; `queued` is the loop's new total.
    pub fn command_done(&self, bytes: usize, queued: usize) {
        self.update(bytes, queued);
    }

    /// What senders see: bytes in flight and queued.
    #[cfg(test)]
    pub fn backlog_total(&self) -> usize {
        self.backlog.total()
    }

    /// The loop's total of queued bytes after a turn.
    #[cfg(test)]
    pub fn set_backlog(&self, queued: usize) {
        self.update(0, queued);
    }

    /// Releases `done` reserved bytes, records the queued total, and wakes the senders that
    /// wait when it is down to the low-water mark.
    fn update(&self, done: usize, queued: usize) {
        let b = &self.backlog;
        if done > 0 {
            // Saturating: the loop's own sends were never reserved.
            let _ = b
                .in_flight
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    Some(n.saturating_sub(done))
                });
        }
        b.queued.store(queued, Ordering::SeqCst);
        if b.waiting.load(Ordering::SeqCst) > 0 && b.total() <= self.low_water {
            let _guard = b.lock.lock().unwrap_or_else(|p| p.into_inner());
            b.wakeups.fetch_add(1, Ordering::Relaxed);
            self.drained.notify_all();
        }
    }

    pub fn close(&self) {
        self.backlog.closed.store(true, Ordering::SeqCst);
        {
            let _guard = self.backlog.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.drained.notify_all();
        }
        self.inbox.close();
        self.events.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiting_sender_is_woken_at_the_low_water_mark_not_before() {
        let mut config = MeshConfig::builder().build();
        config.send_high_water = 1000;
        let shared = Arc::new(Shared::new(&config));
        shared.set_backlog(1500);
        let sender = {
            let shared = shared.clone();
            std::thread::spawn(move || shared.reserve(10))
        };
        while shared.backlog.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Under the high-water mark but over half of it: the sender would send one message
        // and wait again, so it is not woken (it was, for every command, before).
        shared.set_backlog(900);
        shared.command_done(0, 600);
        assert_eq!(shared.backlog.wakeups.load(Ordering::SeqCst), 0);
        shared.set_backlog(500);
        assert!(
            sender.join().unwrap(),
            "the sender goes on, the socket open"
        );
        // The wake-up at 500, unless the sender had settled for the high-water mark after
        // waiting `RECHECK` already (a loaded machine).
        assert!(shared.backlog.wakeups.load(Ordering::SeqCst) <= 1);
        assert_eq!(shared.backlog.in_flight.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn senders_under_the_mark_do_not_wait_and_close_releases_waiters() {
        let mut config = MeshConfig::builder().build();
        config.send_high_water = 1000;
        let shared = Arc::new(Shared::new(&config));
        assert!(shared.reserve(400));
        assert!(shared.reserve(400));
        // The loop's own sends were never reserved: releasing them saturates.
        shared.command_done(10_000, 0);
        assert_eq!(shared.backlog.in_flight.load(Ordering::SeqCst), 0);
        shared.set_backlog(5000);
        let sender = {
            let shared = shared.clone();
            std::thread::spawn(move || shared.reserve(10))
        };
        while shared.backlog.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        shared.close();
        assert!(!sender.join().unwrap(), "a closed socket refuses the send");
    }
}
