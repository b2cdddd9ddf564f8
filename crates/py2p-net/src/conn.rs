//! One connection as the sans-I/O [`Endpoint`](crate::Endpoint) holds it: no socket, only
//! state. Bytes come in as slices and go out through any [`Write`].

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use py2p_wire::FrameDecoder;

use crate::tls::TlsLayer;
use crate::write_queue::WriteQueue;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A dial that the driver has not reported connected yet.
    Connecting,
    /// TCP is up; the TLS handshake runs. The service has not heard of the connection.
    TlsHandshake,
    /// Frames flow; the service was told (`on_open`).
    Open,
}

/// A connection: its decoder, its write queue, its TLS session (SSL mode) and its timers.
pub(crate) struct Conn {
    pub peer_addr: SocketAddr,
    pub outgoing: bool,
    pub phase: Phase,
    pub decoder: FrameDecoder,
    /// Whole frames not yet handed to the socket (or to TLS).
    pub queue: WriteQueue,
    /// Boxed: a TLS session is over a kilobyte, which plaintext connections need not carry.
    pub tls: Option<Box<TlsLayer>>,
    /// When the current phase began.
    pub since: Instant,
    /// Last time bytes arrived.
    pub last_read: Instant,
    /// Last time the queue was empty or bytes were written.
    pub last_write_progress: Instant,
    /// Frames wait in the decoder (input paused): they are the service's to take.
    pub read_pending: bool,
    /// The peer closed its side; the connection closes once its buffered frames are delivered.
    pub peer_closed: bool,
}

impl Conn {
    /// Boxed: the endpoint's ordered map then holds a pointer per slot. Its leaves are often
    /// half full (ids only ascend), so inline records cost about twice their size.
    pub fn new(peer_addr: SocketAddr, outgoing: bool, max_frame: usize, now: Instant) -> Box<Self> {
        Box::new(Conn {
            peer_addr,
            outgoing,
            phase: if outgoing {
                Phase::Connecting
            } else {
                Phase::Open
            },
            decoder: FrameDecoder::new(max_frame),
            queue: WriteQueue::default(),
            tls: None,
            since: now,
            last_read: now,
            last_write_progress: now,
            read_pending: false,
            peer_closed: false,
        })
    }

    /// Bytes waiting to be written: queued frames and encrypted records.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.tls.as_deref().map_or(0, TlsLayer::pending)
    }

    /// Whether anything waits for the socket.
    pub fn has_output(&self) -> bool {
        self.phase != Phase::Connecting
            && (!self.queue.is_empty() || self.tls.as_deref().is_some_and(TlsLayer::wants_write))
    }

    /// Bytes of unfinished input held.
    pub fn buffered(&self) -> usize {
        self.decoder.buffered_len()
    }

    /// Writes what `w` takes now (encrypting frames on the way in SSL mode). Returns the
    /// bytes written.
    pub fn write_to(&mut self, w: &mut dyn Write) -> io::Result<usize> {
        match &mut self.tls {
            None => {
                if self.phase != Phase::Open {
                    return Ok(0);
                }
                self.queue.write_to(w)
            }
            Some(tls) => {
                let mut total = 0;
                loop {
                    tls.stage(&mut self.queue);
                    let n = tls.write_to(w)?;
                    total += n;
                    if n == 0 || self.queue.is_empty() && !tls.wants_write() {
                        return Ok(total);
                    }
                }
            }
        }
    }

    /// Everything still queued as bytes, for a last best-effort write at a local close
    /// (with a `close_notify` in SSL mode).
    pub fn last_words(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Connecting {
            return out;
        }
        match &mut self.tls {
            None => {
                let _ = self.queue.write_to(&mut out);
            }
            Some(tls) => {
                if !tls.is_handshaking() {
                    while !self.queue.is_empty() {
                        tls.stage(&mut self.queue);
                        match tls.write_to(&mut out) {
                            Ok(n) if n > 0 => {}
                            _ => break,
                        }
                    }
                    tls.close_notify();
                }
                let _ = tls.write_to(&mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection carries a `Conn`, idle or not: it stays small (the TLS session,
    /// over a kilobyte, is boxed), for the memory per idle connection.
    #[test]
    fn a_connection_record_is_small() {
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 256, "Conn is {size} bytes");
    }
}
