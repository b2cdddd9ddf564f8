//! The future: events ordered by virtual time, then by the order they were scheduled, so
//! that equal times never depend on anything but the run itself.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use py2p_net::ConnId;

/// Something that happens at a point of virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// Segments may have arrived at this end.
    Wake(ConnId),
    /// The peer of this end read bytes: the kernel's buffers have room again.
    Writable(ConnId),
    /// A dial reaches the dialled address.
    Syn {
        /// The dialling end.
        dialer: ConnId,
        /// Where it dialled.
        addr: SocketAddr,
        /// How many times it was sent before (TCP retransmits a lost SYN).
        attempt: u32,
    },
    /// A node's timers fire (every `tick_interval`).
    Tick {
        /// The node.
        node: usize,
        /// Its life: ticks of a node killed since are dropped.
        incarnation: u32,
    },
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    at: Duration,
    seq: u64,
    event: Event,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest must come out first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A priority queue of events by (time, sequence number).
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    /// The time of the next event.
    pub fn peek_time(&self) -> Option<Duration> {
        self.heap.peek().map(|e| e.at)
    }

    pub fn pop(&mut self) -> Option<(Duration, Event)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_insertion_order() {
        let mut q = EventQueue::default();
        let t = |ms| Duration::from_millis(ms);
        q.push(t(5), Event::Wake(ConnId::from_raw(1)));
        q.push(t(1), Event::Wake(ConnId::from_raw(2)));
        q.push(t(5), Event::Wake(ConnId::from_raw(3)));
        q.push(t(1), Event::Wake(ConnId::from_raw(4)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (t(1), Event::Wake(ConnId::from_raw(2))),
                (t(1), Event::Wake(ConnId::from_raw(4))),
                (t(5), Event::Wake(ConnId::from_raw(1))),
                (t(5), Event::Wake(ConnId::from_raw(3))),
            ]
        );
    }
}
