//! One TCP connection as the event loop holds it.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use py2p_wire::FrameDecoder;

use crate::write_queue::WriteQueue;

/// A connection: its socket, its frame decoder and its write queue.
pub(crate) struct Connection {
    pub stream: TcpStream,
    pub peer_addr: SocketAddr,
    /// A dial that has not completed yet.
    pub connecting: bool,
    pub decoder: FrameDecoder,
    pub queue: WriteQueue,
    /// Last time bytes arrived.
    pub last_read: Instant,
    /// Last time the queue was empty or bytes were written.
    pub last_write_progress: Instant,
    /// Readable data may be waiting that was not read, or frames not yet delivered (input
    /// paused, or the read budget used up).
    pub read_pending: bool,
    /// The peer closed its side; the connection closes once its buffered frames are delivered.
    pub peer_closed: bool,
}

/// The result of one read turn.
pub(crate) enum ReadOutcome {
    /// The socket has no more bytes for now.
    Drained,
    /// The peer closed its side.
    Eof,
}

impl Connection {
    pub fn new(
        stream: TcpStream,
        peer_addr: SocketAddr,
        outgoing: bool,
        max_frame: usize,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            peer_addr,
            connecting: outgoing,
            decoder: FrameDecoder::new(max_frame),
            queue: WriteQueue::default(),
            last_read: now,
            last_write_progress: now,
            read_pending: false,
            peer_closed: false,
        }
    }

    /// Reads until the socket would block or `budget` bytes were read, into the decoder.
    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        now: Instant,
    ) -> io::Result<(ReadOutcome, bool)> {
        let mut total = 0;
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Ok((ReadOutcome::Eof, total > 0)),
                Ok(n) => {
                    self.decoder.push(buf.get(..n).unwrap_or_default());
                    self.last_read = now;
                    total += n;
                    if total >= budget {
                        self.read_pending = true;
                        return Ok((ReadOutcome::Drained, true));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((ReadOutcome::Drained, total > 0))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
