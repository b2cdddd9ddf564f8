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
    /// The flags the loop reads before each frame, on a cache line of their own: the
    /// reader's lock and queue, written at every `recv`, are on another.
    flags: Flags,
    closed: AtomicBool,
    /// Threads waiting in `pop`: pushes wake someone only when someone waits (a wake-up is a
    /// system call, and the loop pushes every message).
    waiting: AtomicUsize,
    /// The room of an emptied queue is given back by [`Inbox::trim`] (the loop's tick), not
    /// as the queue empties: see [`Inbox::trimmed_on_tick`].
    trim_on_tick: bool,
}

/// Whether the loop paused and whether the queue is full. Aligned to a cache line (128
/// bytes: two lines, as a pair of lines is fetched together on some CPUs) so that the
/// loop's reads of them before every frame do not share a line with what readers write.
#[repr(align(128))]
#[derive(Default)]
struct Flags {
    /// The loop stopped reading because the queue was full.
    paused: AtomicBool,
    /// Whether the queue is full, written under the lock when it changes: the loop asks
    /// before each frame it reads, without taking the lock the reader takes for each
    /// item, and a line the reader does not write stays in the loop's cache.
    full: AtomicBool,
}

/// Items with their sizes, in batches as the loop hands them over: a batch goes in and
/// out of the queue as one `Vec` (a pointer's move), and items leave one by one from the
/// front batch.
struct Queue<T> {
    /// The oldest items, taken one by one.
    front: VecDeque<(T, usize)>,
    /// The batches behind it, oldest first.
    batches: VecDeque<Vec<(T, usize)>>,
    /// Items in `front` and `batches` together.
    len: usize,
    /// The sum of their sizes.
    bytes: usize,
    /// The buffer of the last batch emptied, for the loop's next one: a busy loop and its
    /// reader pass the same few buffers back and forth instead of allocating one per batch.
    spare: Vec<(T, usize)>,
    /// Tasks waiting in [`Inbox::poll_pop`], woken by the next push (or close).
    wakers: Vec<Waker>,
}

/// Items the loop took for an [`Inbox`] and has not handed over yet: it hands them over
/// together ([`Inbox::stage`], [`Inbox::flush`]), as one batch, under one lock. A lock per
/// item made the queue's cache line travel between the loop's core and the reader's for
/// every message.
pub struct Staged<T> {
    items: Vec<(T, usize)>,
    bytes: usize,
    /// The inbox's items and bytes as of the last hand-over: at least what it holds now,
    /// as only the loop adds.
    held: usize,
    held_bytes: usize,
    /// Items were handed over since readers were last woken.
    unwoken: bool,
}

impl<T> Default for Staged<T> {
    fn default() -> Self {
        Staged {
            items: Vec::new(),
            bytes: 0,
            held: 0,
            held_bytes: 0,
            unwoken: false,
        }
    }
}

impl<T> Staged<T> {
    /// How many items wait to be handed over.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Staged items are handed over once this many wait, before the end of the loop's turn (a
/// turn reads up to a mebibyte per connection): readers take them meanwhile, as they took
/// each message when it was pushed, and a batch's buffer stays small (about 11 KB of
/// messages).
const STAGE_ITEMS: usize = 64;

/// An emptied queue gives its room back when that room is larger than this. A burst (a
/// thousand peers connecting, each a `Connected` event) would otherwise leave the queue's
/// largest size allocated for good; below it, a queue that fills and empties all the time
/// keeps its room.
const KEEP_BYTES: usize = 64 << 10;

/// The bytes of memory a buffer of `capacity` items of type `I` holds.
fn room<I>(capacity: usize) -> usize {
    capacity.saturating_mul(size_of::<I>())
}

impl<T> Queue<T> {
    fn has_room(&self, capacity: usize, max_bytes: usize) -> bool {
        self.len < capacity && self.bytes < max_bytes
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one item, at the end of the last batch (or in a new one).
    fn push(&mut self, item: T, bytes: usize) {
        match self.batches.back_mut() {
            Some(last) if last.len() < STAGE_ITEMS => last.push((item, bytes)),
            _ => {
                let mut batch = std::mem::take(&mut self.spare);
                batch.push((item, bytes));
                self.batches.push_back(batch);
            }
        }
        self.len += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Queues a batch after the items already queued.
    fn push_batch(&mut self, batch: Vec<(T, usize)>, bytes: usize) {
        self.len += batch.len();
        self.bytes = self.bytes.saturating_add(bytes);
        self.batches.push_back(batch);
    }

    /// The oldest item, and its size taken off the total. An emptied queue gives its room
    /// back unless `keep` (then [`Inbox::trim`] does).
    fn take(&mut self, keep: bool) -> Option<T> {
        if self.front.is_empty() {
            self.next_batch();
        }
        let (item, bytes) = self.front.pop_front()?;
        self.len -= 1;
        self.bytes = self.bytes.saturating_sub(bytes);
        if !keep && self.is_empty() {
            self.give_back_room();
        }
        Some(item)
    }

    /// Makes the oldest batch the front, if there is one. The emptied front's buffer (a
    /// `Vec` again without a copy) is kept for the loop's next batch, unless a larger one
    /// is kept already.
    #[cold]
    fn next_batch(&mut self) {
        while self.front.is_empty() {
            let Some(next) = self.batches.pop_front() else {
                return;
            };
            let done = Vec::from(std::mem::replace(&mut self.front, VecDeque::from(next)));
            if self.spare.capacity() < done.capacity() {
                self.spare = done;
            }
        }
    }

    /// Frees the buffers of an empty queue: the front's and the spare batch, and the list
    /// of batches when it is larger than [`KEEP_BYTES`].
    fn give_back_room(&mut self) {
        if !self.is_empty() {
            return;
        }
        self.front = VecDeque::new();
        self.spare = Vec::new();
        if room::<Vec<(T, usize)>>(self.batches.capacity()) > KEEP_BYTES {
            self.batches = VecDeque::new();
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
                front: VecDeque::new(),
                batches: VecDeque::new(),
                len: 0,
                bytes: 0,
                spare: Vec::new(),
                wakers: Vec::new(),
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            flags: Flags::default(),
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
        items.push(item, bytes);
        self.note_room(&items);
        // Read under the lock: a waiter registers itself under it before it sleeps.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.ready.notify_one();
        }
        for waker in items.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Queues an item that counts `bytes` against `max_bytes`, in `staged` first, without
    /// waking anyone (the loop queues a turn's messages this way): the items are handed over when [`STAGE_ITEMS`] wait,
    /// when the queue could be full with them (so that [`Inbox::has_room_with`] answers
    /// exactly, as `has_room` did after each push), and by [`Inbox::flush`] at the end of
    /// the loop's turn.
    pub fn stage(&self, staged: &mut Staged<T>, item: T, bytes: usize) {
        if staged.items.capacity() == 0 {
            staged.items.reserve_exact(STAGE_ITEMS);
        }
        staged.bytes = staged.bytes.saturating_add(bytes);
        staged.items.push((item, bytes));
        if staged.items.len() >= STAGE_ITEMS || !self.room_for(staged) {
            drop(self.hand_over(staged));
        }
    }

    /// Whether the queue had room for the staged items as of the last hand-over (an
    /// upper bound of what it holds now: readers only take).
    fn room_for(&self, staged: &Staged<T>) -> bool {
        staged.held.saturating_add(staged.items.len()) < self.capacity
            && staged.held_bytes.saturating_add(staged.bytes) < self.max_bytes
    }

    /// Moves the staged items into the queue, under one lock, without waking anyone.
    fn hand_over(&self, staged: &mut Staged<T>) -> std::sync::MutexGuard<'_, Queue<T>> {
        let mut items = self.lock();
        if !staged.items.is_empty() {
            // The next batch goes in the buffer of one the readers emptied, if there is one.
            let next = std::mem::take(&mut items.spare);
            let batch = std::mem::replace(&mut staged.items, next);
            items.push_batch(batch, staged.bytes);
            staged.bytes = 0;
            staged.unwoken = true;
            self.note_room(&items);
        }
        staged.held = items.len;
        staged.held_bytes = items.bytes;
        items
    }

    /// Hands over what is staged and wakes the readers and tasks waiting for items, if
    /// any were handed over since they were last woken: the end of the loop's turn, one
    /// wake-up per turn instead of one per message when a reader keeps up. Takes no lock
    /// when nothing was staged.
    pub fn flush(&self, staged: &mut Staged<T>) {
        if staged.is_empty() && !staged.unwoken {
            return;
        }
        let mut items = self.hand_over(staged);
        staged.unwoken = false;
        self.wake(&mut items);
    }

    /// Whether the queue has room with the staged items in it too, as of its last change
    /// ([`Inbox::has_room`] when nothing is staged). Exact: [`Inbox::stage`] hands the
    /// items over whenever the bound it keeps could be passed.
    pub fn has_room_with(&self, staged: &Staged<T>) -> bool {
        self.has_room() && (staged.is_empty() || self.room_for(staged))
    }

    /// [`Inbox::has_room_with`] with `more` items of `bytes` staged after the staged ones
    /// (ones the loop holds back for a moment). An upper bound of what the queue would
    /// hold, as the staged items' bound is: `false` may mean only that the bound could be
    /// reached.
    pub fn has_room_with_more(&self, staged: &Staged<T>, more: usize, bytes: usize) -> bool {
        if more == 0 {
            return self.has_room_with(staged);
        }
        self.has_room()
            && staged
                .held
                .saturating_add(staged.items.len())
                .saturating_add(more)
                < self.capacity
            && staged
                .held_bytes
                .saturating_add(staged.bytes)
                .saturating_add(bytes)
                < self.max_bytes
    }

    /// Records whether the queue has room (under its lock, after a change); returns it.
    /// The flag is written only when it changes (see [`Flags`]).
    fn note_room(&self, items: &Queue<T>) -> bool {
        let room = items.has_room(self.capacity, self.max_bytes);
        if self.flags.full.load(Ordering::Relaxed) == room {
            self.flags.full.store(!room, Ordering::Release);
        }
        room
    }

    /// After a take: records the room, and whether the loop, paused for want of it, may
    /// read again.
    fn resume_after_take(&self, items: &Queue<T>) -> bool {
        self.note_room(items) && self.flags.paused.load(Ordering::Acquire)
    }

    /// Records whether the loop reads (`paused` false) or stopped for want of room; the
    /// flag is written only when it changes (the loop asks before every frame).
    pub fn set_paused(&self, paused: bool) {
        if self.flags.paused.load(Ordering::Acquire) != paused {
            self.flags.paused.store(paused, Ordering::Release);
        }
    }

    /// Wakes the readers and tasks waiting for items, if items wait (under the lock).
    fn wake(&self, items: &mut Queue<T>) {
        if items.is_empty() {
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
        !self.flags.full.load(Ordering::Acquire)
    }

    // Public only for py2p-sim (feature `internals`); nobody asks whether it is empty.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.lock().len
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
        // The clock is read only when there is something to wait for.
        let mut deadline = None;
        let mut items = self.lock();
        loop {
            if let Some(item) = items.take(self.trim_on_tick) {
                let resume = self.resume_after_take(&items);
                return (Some(item), resume);
            }
            if self.is_closed() {
                return (None, false);
            }
            let left = match timeout {
                None => None,
                Some(t) if t.is_zero() => return (None, false),
                Some(t) => {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + t);
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

    /// The bytes of the buffers an inbox holds: the front batch's, the spare one's, and
    /// the list of batches.
    fn room_held<T>(inbox: &Inbox<T>) -> usize {
        let q = inbox.lock();
        room::<(T, usize)>(q.front.capacity() + q.spare.capacity())
            + room::<Vec<(T, usize)>>(q.batches.capacity())
    }

    #[test]
    fn an_emptied_queue_gives_back_the_room_of_a_burst() {
        let inbox = Inbox::new(1_000_000);
        // Small items: the list of batches of a short queue is kept while it fills and
        // empties, the batches' buffers are not.
        for round in 0..3 {
            for i in 0..1_000u64 {
                inbox.push(i);
            }
            while inbox.pop(Some(Duration::ZERO)).0.is_some() {}
            let q = inbox.lock();
            assert!(q.batches.capacity() >= 1_000 / STAGE_ITEMS, "round {round}");
            assert_eq!(q.front.capacity() + q.spare.capacity(), 0, "round {round}");
        }
        // A burst past the limit: its room goes once the queue is empty, not before.
        for i in 0..200_000u64 {
            inbox.push(i);
        }
        assert_eq!(inbox.pop(Some(Duration::ZERO)).0, Some(0));
        assert!(room_held(&inbox) > KEEP_BYTES);
        let (rest, _) = inbox.pop_many(300_000, Some(Duration::ZERO));
        assert_eq!(rest, (1..200_000).collect::<Vec<_>>());
        assert_eq!(room_held(&inbox), 0);
    }

    #[test]
    fn an_inbox_trimmed_on_tick_keeps_its_room_until_the_tick() {
        let inbox = Inbox::new(1_000_000).trimmed_on_tick();
        for round in 0..3 {
            for i in 0..200_000u64 {
                inbox.push(i);
            }
            let (all, _) = inbox.pop_many(300_000, Some(Duration::ZERO));
            assert_eq!(all.len(), 200_000);
            assert!(room_held(&inbox) > KEEP_BYTES, "round {round}");
        }
        // Not while items wait.
        inbox.push(1);
        inbox.trim();
        assert!(room_held(&inbox) > KEEP_BYTES);
        assert_eq!(inbox.pop(Some(Duration::ZERO)).0, Some(1));
        inbox.trim();
        assert_eq!(room_held(&inbox), 0);
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
        inbox.set_paused(true);
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
        let mut staged = Staged::default();
        assert!(inbox.poll_pop(&mut cx).is_pending());
        inbox.stage(&mut staged, 7, 0);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "woken before the end of the turn"
        );
        inbox.flush(&mut staged);
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
        let mut staged = Staged::default();
        inbox.stage(&mut staged, 1, 0);
        inbox.stage(&mut staged, 2, 0);
        inbox.flush(&mut staged);
        assert_eq!(reader.join().unwrap(), (Some(1), Some(2)));
    }

    #[test]
    fn bytes_fill_the_inbox_as_well_as_items() {
        let inbox = Inbox::with_max_bytes(100, 1000);
        inbox.push_sized("a", 600);
        assert!(inbox.has_room());
        inbox.push_sized("b", 600);
        assert!(!inbox.has_room(), "1,200 bytes held");
        inbox.set_paused(true);
        // Taking the first leaves 600 bytes: room again, so the loop is to be woken.
        assert_eq!(inbox.pop(None), (Some("a"), true));
        assert!(inbox.has_room());
        assert_eq!(inbox.pop(None), (Some("b"), true));
    }

    #[test]
    fn staged_items_are_handed_over_in_batches_and_at_the_flush() {
        let inbox = Inbox::new(1_000);
        let mut staged = Staged::default();
        for i in 0..STAGE_ITEMS as u32 - 1 {
            inbox.stage(&mut staged, i, 1);
        }
        assert_eq!(inbox.len(), 0, "nothing handed over before a batch is full");
        assert_eq!(staged.len(), STAGE_ITEMS - 1);
        inbox.stage(&mut staged, 1_000, 1);
        assert_eq!(inbox.len(), STAGE_ITEMS, "a full batch goes in at once");
        assert!(staged.is_empty());
        inbox.stage(&mut staged, 2_000, 1);
        assert_eq!(inbox.pop(Some(Duration::ZERO)).0, Some(0));
        inbox.flush(&mut staged);
        assert!(staged.is_empty());
        // In the order staged.
        let (rest, _) = inbox.pop_many(1_000, Some(Duration::ZERO));
        let mut want: Vec<u32> = (1..STAGE_ITEMS as u32 - 1).collect();
        want.extend([1_000, 2_000]);
        assert_eq!(rest, want);
        assert_eq!(inbox.lock().bytes, 0);
    }

    #[test]
    fn room_with_staged_items_is_exact_for_items_and_bytes() {
        // Each count: the answer after every item is the one a push per item gave.
        for (capacity, max_bytes, size) in [(5, usize::MAX, 0), (1_000, 50, 10), (3, 25, 10)] {
            let inbox = Inbox::with_max_bytes(capacity, max_bytes);
            let pushed = Inbox::with_max_bytes(capacity, max_bytes);
            let mut staged = Staged::default();
            for i in 0..8 {
                inbox.stage(&mut staged, i, size);
                pushed.push_sized(i, size);
                assert_eq!(
                    inbox.has_room_with(&staged),
                    pushed.has_room(),
                    "item {i} of capacity {capacity}, max bytes {max_bytes}"
                );
            }
            // Readers take some: room again, staged or not.
            let (_, resume) = inbox.pop_many(4, Some(Duration::ZERO));
            let _ = pushed.pop_many(4, Some(Duration::ZERO));
            assert!(!resume, "the loop never paused");
            assert_eq!(inbox.has_room_with(&staged), pushed.has_room());
            inbox.stage(&mut staged, 9, size);
            pushed.push_sized(9, size);
            assert_eq!(inbox.has_room_with(&staged), pushed.has_room());
            assert_eq!(inbox.len() + staged.len(), pushed.len());
        }
    }

    #[test]
    fn a_flush_with_nothing_staged_takes_no_lock() {
        let inbox = Arc::new(Inbox::new(16));
        let mut staged = Staged::default();
        inbox.stage(&mut staged, 1, 0);
        inbox.flush(&mut staged);
        let held = inbox.lock();
        // The lock is held here: a flush that took it would not return while it is.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let flusher = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                inbox.flush(&mut staged);
                let _ = done_tx.send(());
            })
        };
        let done = done_rx.recv_timeout(Duration::from_secs(30));
        drop(held);
        flusher.join().unwrap();
        assert!(done.is_ok(), "the flush waited for the lock");
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn the_loop_stages_in_the_buffers_readers_emptied() {
        let inbox = Inbox::new(1_000).trimmed_on_tick();
        let mut staged = Staged::default();
        let mut seen = Vec::new();
        let mut next = 0u32;
        for _ in 0..6 {
            for _ in 0..STAGE_ITEMS {
                inbox.stage(&mut staged, next, 1);
                next += 1;
            }
            // The whole batch went in at once; the buffer to stage in next is empty.
            assert!(staged.is_empty());
            seen.push((staged.items.as_ptr(), staged.items.capacity()));
            let (got, _) = inbox.pop_many(STAGE_ITEMS, Some(Duration::ZERO));
            assert_eq!(got.len(), STAGE_ITEMS);
        }
        assert_eq!(
            inbox.pop_many(1_000, Some(Duration::ZERO)).0,
            Vec::<u32>::new()
        );
        // From the third batch on, each is staged in a buffer the reader emptied: three
        // buffers go round (the one staged in, the reader's front, the spare).
        assert!(
            seen[2..].iter().all(|&(_, cap)| cap >= STAGE_ITEMS),
            "{seen:?}"
        );
        assert_eq!(seen[5], seen[2], "{seen:?}");
        assert_ne!(seen[3], seen[2], "{seen:?}");
    }
}
