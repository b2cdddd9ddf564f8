//! Per-connection queues of bytes waiting for the socket.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::Frame;

/// Most frames given to one `writev`.
const GATHER: usize = 64;

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

impl WriteQueue {
    /// Appends a whole frame.
    pub(crate) fn push(&mut self, frame: Frame) {
        if frame.is_empty() {
            return;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
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
                self.frames.pop_front();
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
