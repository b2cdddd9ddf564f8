//! State shared between the event loop and the user's threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Bytes waiting to be written, and bytes of user sends not yet taken by the loop.
#[derive(Default)]
struct Backlog {
    queued: usize,
    in_flight: usize,
    closed: bool,
    /// Senders waiting in `reserve`: the loop wakes them only when there are some (a
    /// condvar's notify is a system call even with no one waiting).
    waiting: usize,
}

pub struct Shared {
    pub inbox: Inbox<Message>,
    pub events: Inbox<PeerEvent>,
    pub handle: OnceLock<py2p_net::LoopHandle<Command>>,
    backlog: Mutex<Backlog>,
    drained: Condvar,
    high_water: usize,
    published: Mutex<Published>,
    max_errors: usize,
    /// The loop is running a user's handler (so it cannot answer commands now).
    pub in_handler: AtomicBool,
}

impl Shared {
    pub fn new(config: &MeshConfig) -> Shared {
        let high_water = config.send_high_water;
        Shared {
            inbox: Inbox::with_max_bytes(config.inbox_capacity, config.inbox_max_bytes),
            events: Inbox::new(65_536),
            handle: OnceLock::new(),
            backlog: Mutex::new(Backlog::default()),
            drained: Condvar::new(),
            high_water,
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

    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits while more than the high-water mark of bytes wait for peers, then counts `bytes`
    /// as in flight. Returns false when the socket closed meanwhile.
    pub fn reserve(&self, bytes: usize) -> bool {
        let mut b = self.backlog();
        while !b.closed && b.queued + b.in_flight > self.high_water {
            b.waiting += 1;
            b = self
                .drained
                .wait_timeout(b, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            b.waiting -= 1;
        }
        b.in_flight += bytes;
        !b.closed
    }

    /// A send reserved with `reserve` has been queued; `queued` is the loop's new total.
    pub fn command_done(&self, bytes: usize, queued: usize) {
        self.update(bytes, queued);
    }

    /// The loop's total of queued bytes after a turn.
    pub fn set_backlog(&self, queued: usize) {
        self.update(0, queued);
    }

    /// Releases `done` reserved bytes, records the queued total, and wakes the senders that
    /// wait when it is under the high-water mark.
    fn update(&self, done: usize, queued: usize) {
        let mut b = self.backlog();
        b.in_flight = b.in_flight.saturating_sub(done);
        b.queued = queued;
        if b.waiting > 0 && b.queued + b.in_flight <= self.high_water {
            self.drained.notify_all();
        }
    }

    pub fn close(&self) {
        self.backlog().closed = true;
        self.drained.notify_all();
        self.inbox.close();
        self.events.close();
    }
}
