//! Per-connection queues of bytes waiting for the socket.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::Frame;

/// Most frames given to one `writev`.
const GATHER: usize = 64;

/// Room of a buffer that small frames queued behind others share (one allocation for a
/// burst of them instead of one each).
const SHARED_ROOM: usize = 16 * 1024;

/// Frames waiting to be written, in order, with the bytes of the first already written
/// skipped. Frames are never interleaved or cut: the queue only ever appends whole frames
/// and writes from the front.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    frames: VecDeque<Frame>,
    /// Bytes of the front frame already written.
    offset: usize,
    /// Bytes not yet written, over all frames.
    bytes: usize,
}

thread_local! {
    /// A written shared buffer of [`SHARED_ROOM`], kept for the next burst on any of the
    /// thread's connections: not a new allocation, and new pages, per burst, and nothing
    /// more held per connection (one buffer per event-loop thread).
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl WriteQueue {
    /// Appends a whole frame.
    pub(crate) fn push(&mut self, frame: Frame) {
        if frame.is_empty() {
            return;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Appends the whole frame that `encode` appends to the buffer it is given, of at most
    /// `room` bytes, and returns its length. A frame queued behind others is written into
    /// the last one's buffer when that is owned and has the room (frames stay whole and in
    /// order: the bytes are the same as with a buffer each); else into a buffer of its own,
    /// of [`SHARED_ROOM`] when others wait (later small frames share it) and of `room` when
    /// the queue is empty (an idle connection holds nothing more than its frame).
    pub(crate) fn push_encoded(
        &mut self,
        room: usize,
        encode: &mut dyn FnMut(&mut Vec<u8>),
    ) -> usize {
        if let Some(back) = self.frames.back_mut().and_then(Frame::owned_mut) {
            if back.capacity() - back.len() >= room {
                let start = back.len();
                encode(back);
                let n = back.len() - start;
                self.bytes += n;
                return n;
            }
        }
        let mut frame = if self.frames.is_empty() || room > SHARED_ROOM / 4 {
            Vec::with_capacity(room)
        } else {
            let spare = SPARE.take();
            if spare.capacity() >= SHARED_ROOM {
                spare
            } else {
                Vec::with_capacity(SHARED_ROOM)
            }
        };
        encode(&mut frame);
        let n = frame.len();
        self.push(frame.into());
        n
    }

    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Writes as much as `w` takes, gathering up to 64 frames per call, until the queue is
    /// empty or `w` would block. Returns the bytes written.
    pub(crate) fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while !self.frames.is_empty() {
            let written = {
                // On the stack: 64 slices are 1 KiB, a size glibc's malloc serves from its
                // large bins after consolidating the small ones (a few per cent of a busy
                // mesh's CPU, profiled, when this was a `Vec` per call).
                let mut slices = [IoSlice::new(&[]); GATHER];
                let mut n = 0;
                for (slot, f) in slices.iter_mut().zip(self.frames.iter()) {
                    let part = if n == 0 {
                        f.get(self.offset..).unwrap_or_default()
                    } else {
                        f
                    };
                    *slot = IoSlice::new(part);
                    n += 1;
                }
                match w.write_vectored(slices.get(..n).unwrap_or_default()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            total += written;
            self.consume(written);
        }
        Ok(total)
    }

    /// Gives back all the room of an empty queue (the endpoint calls it on its timer, not
    /// after every write: a busy connection would free and grow it again for every burst).
    /// An idle connection then holds no queue at all: eight slots kept were 200 bytes per
    /// connection, a tenth of the memory of an idle one.
    pub(crate) fn shrink(&mut self) {
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
        }
    }

    /// Keeps a written frame's buffer as the thread's spare when it is a shared buffer and
    /// there is none yet.
    fn keep_spare(done: &mut Frame) {
        if let Some(buffer) = done.owned_mut() {
            if buffer.capacity() == SHARED_ROOM {
                let spare = SPARE.take();
                if spare.capacity() == 0 {
                    buffer.clear();
                    SPARE.set(std::mem::take(buffer));
                } else {
                    SPARE.set(spare);
                }
            }
        }
    }

    /// The unwritten part of the front frame.
    pub(crate) fn front_slice(&self) -> Option<&[u8]> {
        self.frames
            .front()
            .map(|f| f.get(self.offset..).unwrap_or_default())
    }

    /// Marks `n` bytes from the front as written.
    pub(crate) fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.frames.front() else {
                return;
            };
            let left = front.len() - self.offset;
            if n >= left {
                n -= left;
                self.offset = 0;
                if let Some(mut done) = self.frames.pop_front() {
                    WriteQueue::keep_spare(&mut done);
                }
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call and blocks every other call.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.cap);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `encode` for a frame of `len` bytes of `b`.
    fn bytes_of(len: usize, b: u8) -> impl FnMut(&mut Vec<u8>) {
        move |out: &mut Vec<u8>| out.extend(std::iter::repeat_n(b, len))
    }

    #[test]
    fn encoded_frames_behind_others_share_a_buffer_and_leave_whole_and_in_order() {
        let mut q = WriteQueue::default();
        // Alone in the queue: a buffer of the frame's room, no more.
        assert_eq!(q.push_encoded(10, &mut bytes_of(7, 1)), 7);
        assert_eq!(q.frames.len(), 1);
        assert!(q.frames[0].owned_mut().unwrap().capacity() < 64);
        // Behind it: a shared buffer, which the next small frames go into.
        for b in 2..=5 {
            assert_eq!(q.push_encoded(300, &mut bytes_of(200, b)), 200);
        }
        assert_eq!(q.frames.len(), 2, "four frames in one buffer");
        // A frame too large for what is left, or behind a shared frame: a buffer of its own.
        q.push_encoded(SHARED_ROOM, &mut bytes_of(SHARED_ROOM - 100, 6));
        assert_eq!(q.frames.len(), 3);
        q.push(Frame::shared(vec![7; 3]));
        q.push_encoded(300, &mut bytes_of(5, 8));
        assert_eq!(q.frames.len(), 5);
        // A frame that encodes to nothing queues nothing.
        q.push_encoded(300, &mut bytes_of(0, 9));
        assert_eq!(q.frames.len(), 5, "nothing appended to the last buffer");
        let want: Vec<u8> = [(7, 1), (200, 2), (200, 3), (200, 4), (200, 5)]
            .into_iter()
            .chain([(SHARED_ROOM - 100, 6), (3, 7), (5, 8)])
            .flat_map(|(n, b)| std::iter::repeat_n(b, n))
            .collect();
        assert_eq!(q.len(), want.len());
        // Written in small pieces with the queue growing meanwhile: the same bytes.
        let mut w = Trickle {
            out: Vec::new(),
            cap: 150,
            calls: 0,
        };
        q.write_to(&mut w).unwrap();
        q.push_encoded(300, &mut bytes_of(4, 10));
        while !q.is_empty() {
            q.write_to(&mut w).unwrap();
        }
        let mut want = want;
        want.extend([10; 4]);
        assert_eq!(w.out, want);
        // The written shared buffer is kept for the next burst (this thread's spare).
        let spare = SPARE.take();
        assert_eq!(spare.capacity(), SHARED_ROOM);
        let spare_at = spare.as_ptr();
        SPARE.set(spare);
        q.push_encoded(10, &mut bytes_of(3, 11));
        q.push_encoded(10, &mut bytes_of(3, 12));
        assert_eq!(q.frames.len(), 2);
        assert_eq!(
            q.frames[1].as_ptr(),
            spare_at,
            "the second frame went to the spare"
        );
        let mut out = Vec::new();
        q.write_to(&mut out).unwrap();
        assert_eq!(out, [11, 11, 11, 12, 12, 12]);
    }

    #[test]
    fn the_room_is_kept_between_bursts_and_given_back_by_shrink() {
        let mut q = WriteQueue::default();
        for _ in 0..100 {
            q.push(vec![1u8; 10].into());
        }
        let mut out = Vec::new();
        q.write_to(&mut out).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(q.is_empty());
        assert!(q.frames.capacity() >= 100, "kept for the next burst");
        q.push(vec![2u8; 10].into());
        q.shrink();
        assert!(q.frames.capacity() >= 100, "not while frames wait");
        q.write_to(&mut out).unwrap();
        q.shrink();
        assert_eq!(q.frames.capacity(), 0, "given back once empty");
    }

    #[test]
    fn partial_writes_keep_frames_whole_and_in_order() {
        let mut q = WriteQueue::default();
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let frame: Vec<u8> = (0..(i % 37) + 1).map(|j| (i + j) as u8).collect();
            expected.extend_from_slice(&frame);
            q.push(frame.into());
        }
        assert_eq!(q.len(), expected.len());
        let mut w = Trickle {
            out: Vec::new(),
            cap: 7,
            calls: 0,
        };
        while !q.is_empty() {
            q.write_to(&mut w).unwrap();
        }
        assert_eq!(w.out, expected);
    }
}
