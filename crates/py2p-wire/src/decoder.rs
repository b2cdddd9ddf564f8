//! The incremental frame decoder.

use crate::WireError;

/// Length of the big-endian size header in front of every frame and every packet.
pub const HEADER_LEN: usize = 4;

/// Splits a byte stream into frame bodies, whatever pieces the bytes arrive in.
///
/// Push bytes as they are read, then take frames until [`FrameDecoder::next_frame`] returns
/// `Ok(None)`. A header announcing more than `max_frame_len` is refused as soon as its four
/// bytes are in, before any of the body is buffered; after an error the stream is out of
/// step and the decoder keeps returning that error (the connection should be closed).
///
/// ```
/// use py2p_wire::{FrameDecoder, WireError};
/// let mut d = FrameDecoder::new(1024);
/// d.push(&[0, 0, 0, 2, b'h']);
/// assert_eq!(d.next_frame(), Ok(None));
/// assert!(d.is_mid_frame());
/// d.push(&[b'i', 0, 0]);
/// assert_eq!(d.next_frame(), Ok(Some(b"hi".to_vec())));
/// assert_eq!(d.next_frame(), Ok(None));
/// d.push(&[0xFF, 0xFF]);
/// assert!(matches!(d.next_frame(), Err(WireError::FrameTooLarge { .. })));
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_frame_len: usize,
    failed: Option<WireError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames whose body exceeds `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_frame_len,
            failed: None,
        }
    }

    /// The configured maximum body length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Most of the buffer is consumed: move the rest down instead of growing.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame body, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let mut body = Vec::new();
        Ok(self.next_frame_into(&mut body)?.then_some(body))
    }

    /// Like [`FrameDecoder::next_frame`], but copies the next whole frame's body into `out`
    /// (cleared first) instead of a new `Vec`: a reader that reuses `out` allocates nothing
    /// per frame. Returns whether a frame was there (`out` is left empty when not).
    ///
    /// ```
    /// use py2p_wire::FrameDecoder;
    /// let mut d = FrameDecoder::new(1 << 20);
    /// d.push(&[0, 0, 0, 2, 7, 8, 0, 0]);
    /// let mut body = Vec::new();
    /// assert_eq!(d.next_frame_into(&mut body), Ok(true));
    /// assert_eq!(body, [7, 8]);
    /// assert_eq!(d.next_frame_into(&mut body), Ok(false));
    /// ```
    pub fn next_frame_into(&mut self, out: &mut Vec<u8>) -> Result<bool, WireError> {
        out.clear();
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some((header, rest)) = pending.split_first_chunk::<HEADER_LEN>() else {
            return Ok(false);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > self.max_frame_len {
            return Err(self.refuse(len));
        }
        let Some(body) = rest.get(..len) else {
            return Ok(false);
        };
        out.extend_from_slice(body);
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(true)
    }

    /// Appends from `data` (bytes just read) only what the frame begun in the buffer still
    /// lacks: the rest of its header, then of its body. Returns the bytes after it, for
    /// [`FrameDecoder::take_frame`]. With nothing buffered it takes nothing; after an error
    /// (or when the completed header is refused, which the next
    /// [`FrameDecoder::next_frame_into`] reports) it takes nothing more.
    ///
    /// ```
    /// use py2p_wire::FrameDecoder;
    /// let mut d = FrameDecoder::new(1 << 20);
    /// d.push(&[0, 0]);
    /// let rest = d.fill(&[0, 1, 7, 0, 0, 0, 1, 8]);
    /// assert_eq!(rest, [0, 0, 0, 1, 8]);
    /// assert_eq!(d.next_frame(), Ok(Some(vec![7])));
    /// assert_eq!(d.fill(rest), rest);
    /// ```
    pub fn fill<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if self.failed.is_some() {
            return &[];
        }
        let held = self.buffered_len();
        if held == 0 {
            return data;
        }
        let mut data = data;
        if held < HEADER_LEN {
            let (part, rest) = data.split_at((HEADER_LEN - held).min(data.len()));
            self.push(part);
            data = rest;
        }
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(header) = pending.first_chunk::<HEADER_LEN>() else {
            return data;
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > self.max_frame_len {
            return data;
        }
        let lacking = (HEADER_LEN + len).saturating_sub(pending.len());
        let (part, rest) = data.split_at(lacking.min(data.len()));
        self.push(part);
        rest
    }

    /// The next whole frame's body as a slice of `data` (bytes just read), without copying
    /// it, and `data` advanced past it. `Ok(None)` when the buffer holds bytes of an earlier
    /// read (complete them with [`FrameDecoder::fill`] first) or `data` does not begin with
    /// a whole frame: [`push`](FrameDecoder::push) what is left. A header announcing more
    /// than the maximum is refused as [`FrameDecoder::next_frame_into`] refuses it, and
    /// leaves the decoder failed.
    ///
    /// ```
    /// use py2p_wire::FrameDecoder;
    /// let mut d = FrameDecoder::new(1 << 20);
    /// let mut data = &[0, 0, 0, 2, 7, 8, 0, 0, 0][..];
    /// assert_eq!(d.take_frame(&mut data), Ok(Some(&[7, 8][..])));
    /// assert_eq!(d.take_frame(&mut data), Ok(None));
    /// d.push(data);
    /// assert!(d.is_mid_frame());
    /// ```
    pub fn take_frame<'a>(&mut self, data: &mut &'a [u8]) -> Result<Option<&'a [u8]>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buffered_len() > 0 {
            return Ok(None);
        }
        let Some((header, rest)) = data.split_first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > self.max_frame_len {
            return Err(self.refuse(len));
        }
        let (Some(body), Some(after)) = (rest.get(..len), rest.get(len..)) else {
            return Ok(None);
        };
        *data = after;
        Ok(Some(body))
    }

    /// A header announced `len` bytes, more than the maximum: the stream is out of step
    /// from here, and the decoder holds nothing more.
    fn refuse(&mut self, len: usize) -> WireError {
        let e = WireError::FrameTooLarge {
            len: len as u64,
            max: self.max_frame_len,
        };
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.start = 0;
        e
    }

    /// Whether a frame has begun and not yet been completed.
    pub fn is_mid_frame(&self) -> bool {
        self.buffered_len() > 0
    }

    /// Bytes held that do not yet form a whole frame (or have not been taken out yet).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes of memory the buffer holds on to.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases buffer memory beyond what pending bytes need (for idle connections).
    pub fn shrink(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn four_gib_header_is_refused_at_once() {
        let mut d = FrameDecoder::new(16 << 20);
        d.push(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(
            d.next_frame(),
            Err(WireError::FrameTooLarge {
                len: 0xFFFF_FFFF,
                max: 16 << 20
            })
        );
        // Poisoned: nothing more is buffered, the error repeats.
        d.push(&[0u8; 1000]);
        assert_eq!(d.buffered_len(), 0);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn empty_and_back_to_back_frames() {
        let mut d = FrameDecoder::new(10);
        d.push(&[0, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0, 10]);
        assert_eq!(d.next_frame(), Ok(Some(vec![])));
        assert_eq!(d.next_frame(), Ok(Some(vec![7])));
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.is_mid_frame());
        d.push(&[1; 10]);
        assert_eq!(d.next_frame(), Ok(Some(vec![1; 10])));
        assert!(!d.is_mid_frame());
        d.push(&[0, 0, 0, 11]);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn memory_stays_bounded_by_the_largest_frame() {
        let mut d = FrameDecoder::new(1000);
        let frame: Vec<u8> = [&[0, 0, 3, 232][..], &[9u8; 1000]].concat();
        for _ in 0..1000 {
            for chunk in frame.chunks(333) {
                d.push(chunk);
                while let Some(body) = d.next_frame().unwrap() {
                    assert_eq!(body.len(), 1000);
                }
            }
        }
        assert!(d.capacity() < 4 * 1004, "{}", d.capacity());
    }

    #[test]
    fn a_refused_header_in_a_read_fails_the_decoder() {
        let mut d = FrameDecoder::new(10);
        let mut data = &[0, 0, 0, 1, 7, 0, 0, 0, 11, 1, 2][..];
        assert_eq!(d.take_frame(&mut data), Ok(Some(&[7][..])));
        let e = WireError::FrameTooLarge { len: 11, max: 10 };
        assert_eq!(d.take_frame(&mut data), Err(e.clone()));
        // Nothing is taken or buffered after it.
        assert_eq!(d.fill(&[0, 0, 0, 1, 5]), &[] as &[u8]);
        d.push(&[0, 0, 0, 1, 5]);
        assert_eq!(d.buffered_len(), 0);
        assert_eq!(d.next_frame(), Err(e.clone()));
        assert_eq!(d.take_frame(&mut &[0, 0, 0, 0][..]), Err(e));
        // A refused header completed by `fill` is reported by the next frame taken.
        let mut d = FrameDecoder::new(10);
        d.push(&[0, 0]);
        assert_eq!(d.fill(&[0, 11, 1, 2, 3]), &[1, 2, 3]);
        assert!(d.next_frame().is_err());
    }

    /// `stream` in consecutive pieces of the lengths `cuts` gives, in turn (the last piece
    /// shorter if need be): the reads a connection might see.
    fn pieces<'a>(stream: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = stream;
        cuts.iter().cycle().map_while(move |&cut| {
            let (piece, after) = rest.split_at(cut.min(rest.len()));
            rest = after;
            (!piece.is_empty()).then_some(piece)
        })
    }

    proptest! {
        #[test]
        fn reads_taken_in_place_give_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..10),
            cuts in proptest::collection::vec(1usize..120, 1..50),
        ) {
            // As the endpoint reads: complete the buffered frame, take whole frames out of
            // the read, buffer the rest.
            let stream = py2p_testkit::frame::frames(&bodies);
            let mut d = FrameDecoder::new(50);
            let mut got = Vec::new();
            for piece in pieces(&stream, &cuts) {
                let mut data = d.fill(piece);
                while let Some(b) = d.next_frame().unwrap() {
                    got.push(b);
                }
                while let Some(b) = d.take_frame(&mut data).unwrap() {
                    got.push(b.to_vec());
                }
                d.push(data);
                // Never more than one frame is held.
                prop_assert!(d.buffered_len() < HEADER_LEN + 50);
            }
            prop_assert_eq!(got, bodies);
            prop_assert!(!d.is_mid_frame());
        }

        #[test]
        fn any_split_gives_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..10),
            cuts in proptest::collection::vec(1usize..20, 1..50),
        ) {
            let stream = py2p_testkit::frame::frames(&bodies);
            let mut d = FrameDecoder::new(50);
            let mut got = Vec::new();
            for piece in pieces(&stream, &cuts) {
                d.push(piece);
                // Both ways of taking frames, in turn.
                let mut reused = Vec::new();
                loop {
                    if got.len() % 2 == 0 {
                        let Some(b) = d.next_frame().unwrap() else { break };
                        got.push(b);
                    } else {
                        if !d.next_frame_into(&mut reused).unwrap() {
                            prop_assert!(reused.is_empty());
                            break;
                        }
                        got.push(reused.clone());
                    }
                }
            }
            prop_assert_eq!(got, bodies);
            prop_assert!(!d.is_mid_frame());
        }
    }
}
