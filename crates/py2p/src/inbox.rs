//! The bounded queue between the event loop and `recv`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A queue the event loop fills and users drain. It never blocks the loop: when it holds
/// `capacity` items the loop is told to stop reading (see `Service::wants_input`), and a
/// `recv` that makes room again wakes it.
pub(crate) struct Inbox<T> {
    items: Mutex<VecDeque<T>>,
    ready: Condvar,
    capacity: usize,
    /// The loop stopped reading because the queue was full.
    pub paused: AtomicBool,
    closed: AtomicBool,
    /// Threads waiting in `pop`: pushes wake someone only when someone waits (a wake-up is a
    /// system call, and the loop pushes every message).
    waiting: AtomicUsize,
}

impl<T> Inbox<T> {
    pub fn new(capacity: usize) -> Self {
        Inbox {
            items: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            paused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, item: T) {
        let mut items = self.lock();
        items.push_back(item);
        // Read under the lock: a waiter registers itself under it before it sleeps.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.ready.notify_one();
        }
    }

    pub fn has_room(&self) -> bool {
        self.lock().len() < self.capacity
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _guard = self.lock();
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Takes the next item, waiting up to `timeout` (`None`: until one comes or the inbox
    /// closes). Returns the item and whether the loop should be woken to read again.
    pub fn pop(&self, timeout: Option<Duration>) -> (Option<T>, bool) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut items = self.lock();
        loop {
            if let Some(item) = items.pop_front() {
                let resume = items.len() < self.capacity && self.paused.load(Ordering::Acquire);
                return (Some(item), resume);
            }
            if self.is_closed() {
                return (None, false);
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return (None, false);
                    }
                    Some(left)
                }
            };
            self.waiting.fetch_add(1, Ordering::Relaxed);
            items = match left {
                None => self.ready.wait(items).unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    self.ready
                        .wait_timeout(items, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pop_waits_for_push_and_reports_room() {
        let inbox = Arc::new(Inbox::new(2));
        let producer = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                for i in 0..3 {
                    inbox.push(i);
                }
            })
        };
        producer.join().unwrap();
        assert!(!inbox.has_room());
        inbox.paused.store(true, Ordering::Release);
        // Still full after the first: no reason to wake the loop yet.
        assert_eq!(inbox.pop(None), (Some(0), false));
        assert_eq!(inbox.pop(Some(Duration::ZERO)), (Some(1), true));
        assert_eq!(inbox.pop(Some(Duration::ZERO)), (Some(2), true));
        assert_eq!(inbox.pop(Some(Duration::from_millis(1))), (None, false));
        inbox.close();
        assert_eq!(inbox.pop(None), (None, false));
    }
}
