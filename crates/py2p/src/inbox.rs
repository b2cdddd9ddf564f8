//! The bounded queue between the event loop and `recv`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A queue the event loop fills and users drain. It never blocks the loop: when it holds
/// `capacity` items, or items of `max_bytes` together, the loop is told to stop reading (see
/// `Service::wants_input`), and a `recv` that makes room again wakes it.
pub struct Inbox<T> {
    items: Mutex<Queue<T>>,
    ready: Condvar,
    capacity: usize,
    max_bytes: usize,
    /// The loop stopped reading because the queue was full.
    pub paused: AtomicBool,
    /// Whether the queue is full, set under the lock at every change: the loop asks before
    /// each frame it reads, without taking the lock the reader takes for each item.
    full: AtomicBool,
    closed: AtomicBool,
    /// Threads waiting in `pop`: pushes wake someone only when someone waits (a wake-up is a
    /// system call, and the loop pushes every message).
    waiting: AtomicUsize,
    /// The room of an emptied queue is given back by [`Inbox::trim`] (the loop's tick), not
    /// as the queue empties: see [`Inbox::trimmed_on_tick`].
    trim_on_tick: bool,
}

/// Items with their sizes, and the sum of the sizes.
struct Queue<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// Tasks waiting in [`Inbox::poll_pop`], woken by the next push (or close).
    wakers: Vec<Waker>,
}

/// An emptied queue gives its room back when that room is larger than this. A burst (a
/// thousand peers connecting, each a `Connected` event) would otherwise leave the queue's
/// largest size allocated for good; below it, a queue that fills and empties all the time
/// keeps its room.
const KEEP_BYTES: usize = 64 << 10;

impl<T> Queue<T> {
    fn has_room(&self, capacity: usize, max_bytes: usize) -> bool {
        self.items.len() < capacity && self.bytes < max_bytes
    }

    /// The oldest item, and its size taken off the total. An emptied queue gives its room
    /// back unless `keep` (then [`Inbox::trim`] does).
    fn take(&mut self, keep: bool) -> Option<T> {
        let (item, bytes) = self.items.pop_front()?;
        self.bytes -= bytes;
        if !keep {
            self.give_back_room();
        }
        Some(item)
    }

    /// Frees the room of an empty queue larger than [`KEEP_BYTES`].
    fn give_back_room(&mut self) {
        if self.items.is_empty()
            && self
                .items
                .capacity()
                .saturating_mul(size_of::<(T, usize)>())
                > KEEP_BYTES
        {
            self.items = VecDeque::new();
        }
    }
}

impl<T> Inbox<T> {
    /// A queue of at most `capacity` items, whatever their size.
    pub fn new(capacity: usize) -> Self {
        Inbox::with_max_bytes(capacity, usize::MAX)
    }

    /// A queue of at most `capacity` items and `max_bytes` of sizes given to
    /// [`Inbox::push_sized`].
    pub fn with_max_bytes(capacity: usize, max_bytes: usize) -> Self {
        Inbox {
            items: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                wakers: Vec::new(),
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            paused: AtomicBool::new(false),
            full: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            trim_on_tick: false,
        }
    }

    /// The same queue, but an emptied queue keeps its room until [`Inbox::trim`]: a queue
    /// that a reader empties many times a second (the messages of a busy node, taken one by
    /// one) would otherwise grow again from nothing after each time, copying itself at
    /// every doubling.
    pub fn trimmed_on_tick(mut self) -> Self {
        self.trim_on_tick = true;
        self
    }

    /// Gives back the room of the queue if it is empty (for an inbox
    /// [`trimmed_on_tick`](Inbox::trimmed_on_tick), called at the loop's tick): the room of a
    /// burst is kept no longer than one tick after the queue emptied.
    pub fn trim(&self) {
        self.lock().give_back_room();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, item: T) {
        self.push_sized(item, 0);
    }

    /// Queues an item that counts `bytes` against `max_bytes`.
    pub fn push_sized(&self, item: T, bytes: usize) {
        let mut items = self.lock();
        items.bytes += bytes;
        items.items.push_back((item, bytes));
        self.note_room(&items);
        // Read under the lock: a waiter registers itself under it before it sleeps.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.ready.notify_one();
        }
        for waker in items.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Queues an item like [`Inbox::push_sized`] without waking anyone: the loop queues a
    /// turn's messages this way and calls [`Inbox::wake_waiters`] once at the end of the
    /// turn (one wake-up per batch instead of one per message, when a reader keeps up).
    pub fn push_sized_later(&self, item: T, bytes: usize) {
        let mut items = self.lock();
        items.bytes += bytes;
        items.items.push_back((item, bytes));
        self.note_room(&items);
    }

    /// Records whether the queue has room (under its lock, after a change); returns it.
    fn note_room(&self, items: &Queue<T>) -> bool {
        let room = items.has_room(self.capacity, self.max_bytes);
        self.full.store(!room, Ordering::Release);
        room
    }

    /// After a take: records the room, and whether the loop, paused for want of it, may
    /// read again.
    fn resume_after_take(&self, items: &Queue<T>) -> bool {
        self.note_room(items) && self.paused.load(Ordering::Acquire)
    }

    /// Wakes the readers waiting in `pop` and the tasks waiting in `poll_pop`, if any (items
    /// were queued with [`Inbox::push_sized_later`]). One lock per loop turn, not per message.
    pub fn wake_waiters(&self) {
        let mut items = self.lock();
        if items.items.is_empty() {
            return;
        }
        // Read under the lock: a waiter registers itself under it before it sleeps.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.ready.notify_all();
        }
        for waker in items.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Whether the queue has room, as of its last change.
    pub fn has_room(&self) -> bool {
        !self.full.load(Ordering::Acquire)
    }

    // Public only for py2p-sim (feature `internals`); nobody asks whether it is empty.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut items = self.lock();
        self.ready.notify_all();
        for waker in items.wakers.drain(..) {
            waker.wake();
        }
    }

    /// The next item for an async task: ready with it (or with `None` once closed), else
    /// the task is woken by the next push. The flag says whether the loop should be woken.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<(Option<T>, bool)> {
        let mut items = self.lock();
        if let Some(item) = items.take(self.trim_on_tick) {
            let resume = self.resume_after_take(&items);
            return Poll::Ready((Some(item), resume));
        }
        if self.is_closed() {
            return Poll::Ready((None, false));
        }
        if !items.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            items.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Takes up to `n` items: waits up to `timeout` (`None`: until one comes or the inbox
    /// closes) for the first, then takes what else is waiting without waiting more. Returns
    /// the items and whether the loop should be woken to read again.
    pub fn pop_many(&self, n: usize, timeout: Option<Duration>) -> (Vec<T>, bool) {
        let (first, mut resume) = self.pop(timeout);
        let Some(first) = first else {
            return (Vec::new(), false);
        };
        let mut out = vec![first];
        let mut items = self.lock();
        while out.len() < n {
            let Some(item) = items.take(self.trim_on_tick) else {
                break;
            };
            out.push(item);
        }
        if self.resume_after_take(&items) {
            resume = true;
        }
        (out, resume)
    }

    /// Takes the next item, waiting up to `timeout` (`None`: until one comes or the inbox
    /// closes). Returns the item and whether the loop should be woken to read again.
    pub fn pop(&self, timeout: Option<Duration>) -> (Option<T>, bool) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut items = self.lock();
        loop {
            if let Some(item) = items.take(self.trim_on_tick) {
                let resume = self.resume_after_take(&items);
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
    fn an_emptied_queue_gives_back_the_room_of_a_burst() {
        let inbox = Inbox::new(100_000);
        // Small items: the room of a short queue is kept while it fills and empties.
        for round in 0..3 {
            for i in 0..100u64 {
                inbox.push(i);
            }
            while inbox.pop(Some(Duration::ZERO)).0.is_some() {}
            assert!(inbox.lock().items.capacity() >= 100, "round {round}");
        }
        // A burst past the limit: its room goes once the queue is empty, not before.
        for i in 0..10_000u64 {
            inbox.push(i);
        }
        assert_eq!(inbox.pop(Some(Duration::ZERO)).0, Some(0));
        assert!(inbox.lock().items.capacity() >= 9_999);
        let (rest, _) = inbox.pop_many(20_000, Some(Duration::ZERO));
        assert_eq!(rest.len(), 9_999);
        assert_eq!(inbox.lock().items.capacity(), 0);
    }

    #[test]
    fn an_inbox_trimmed_on_tick_keeps_its_room_until_the_tick() {
        let inbox = Inbox::new(100_000).trimmed_on_tick();
        for round in 0..3 {
            for i in 0..10_000u64 {
                inbox.push(i);
            }
            let (all, _) = inbox.pop_many(20_000, Some(Duration::ZERO));
            assert_eq!(all.len(), 10_000);
            assert!(inbox.lock().items.capacity() >= 10_000, "round {round}");
        }
        // Not while items wait.
        inbox.push(1);
        inbox.trim();
        assert!(inbox.lock().items.capacity() >= 10_000);
        assert_eq!(inbox.pop(Some(Duration::ZERO)).0, Some(1));
        inbox.trim();
        assert_eq!(inbox.lock().items.capacity(), 0);
    }

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

    #[test]
    fn pop_many_takes_what_waits_up_to_n() {
        let inbox = Inbox::new(100);
        assert_eq!(inbox.pop_many(5, Some(Duration::ZERO)).0, Vec::<i32>::new());
        for i in 0..7 {
            inbox.push(i);
        }
        assert_eq!(
            inbox.pop_many(5, Some(Duration::ZERO)).0,
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(inbox.pop_many(5, None).0, vec![5, 6]);
    }

    #[test]
    fn items_queued_later_wake_a_waiting_task() {
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(16);
        assert!(inbox.poll_pop(&mut cx).is_pending());
        inbox.push_sized_later(7, 0);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "woken before the end of the turn"
        );
        inbox.wake_waiters();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the task waiting for an item"
        );
        assert!(matches!(inbox.poll_pop(&mut cx), Poll::Ready((Some(7), _))));
    }

    #[test]
    fn items_queued_later_reach_a_waiting_reader_once_it_is_woken() {
        let inbox = Arc::new(Inbox::new(16));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let first = inbox.pop(None).0;
                let second = inbox.pop(Some(Duration::ZERO)).0;
                (first, second)
            })
        };
        ready_rx.recv().unwrap();
        // Wait until the reader sleeps in `pop` (the count is taken under the lock).
        while inbox.waiting.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        inbox.push_sized_later(1, 0);
        inbox.push_sized_later(2, 0);
        inbox.wake_waiters();
        assert_eq!(reader.join().unwrap(), (Some(1), Some(2)));
    }

    #[test]
    fn bytes_fill_the_inbox_as_well_as_items() {
        let inbox = Inbox::with_max_bytes(100, 1000);
        inbox.push_sized("a", 600);
        assert!(inbox.has_room());
        inbox.push_sized("b", 600);
        assert!(!inbox.has_room(), "1,200 bytes held");
        inbox.paused.store(true, Ordering::Release);
        // Taking the first leaves 600 bytes: room again, so the loop is to be woken.
        assert_eq!(inbox.pop(None), (Some("a"), true));
        assert!(inbox.has_room());
        assert_eq!(inbox.pop(None), (Some("b"), true));
    }
}
