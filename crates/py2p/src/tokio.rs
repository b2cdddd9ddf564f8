//! An async face for tokio applications (cargo feature `tokio`).
//!
//! The node still runs on its own event-loop thread; what this adds is a way to wait for it
//! without blocking a runtime thread: [`AsyncMeshSocket::recv`]`.await`, a [`Stream`] of
//! messages and one of peer events, and an async [`AsyncMeshSocket::connect`]. Everything
//! else (`send`, `whisper`, `peers`, `status`, handlers) is the [`MeshSocket`]'s own, through
//! [`AsyncMeshSocket::socket`]; those calls never wait on the network, except `send` while
//! more than `send_high_water` bytes are queued for peers (send large volumes from
//! `tokio::task::spawn_blocking`).
//!
//! ```no_run
//! # async fn run() -> Result<(), py2p::Error> {
//! use py2p::tokio::AsyncMeshSocket;
//! use py2p::{MeshConfig, MeshSocket};
//!
//! let node = AsyncMeshSocket::new(MeshSocket::bind(MeshConfig::default())?);
//! node.connect("127.0.0.1:4444".parse().unwrap()).await?;
//! node.socket().send(&["hello"])?;
//! while let Some(msg) = node.recv().await {
//!     println!("{:?}", msg.packets());
//! }
//! # Ok(()) }
//! ```

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use futures_core::Stream;

use crate::mesh::{Command, ConnectReply};
use crate::{Error, MeshSocket, Message, PeerEvent};

/// A [`MeshSocket`] with async reads; cheap to clone (the socket is shared).
#[derive(Clone)]
pub struct AsyncMeshSocket {
    socket: Arc<MeshSocket>,
}

impl AsyncMeshSocket {
    /// Wraps a socket.
    pub fn new(socket: MeshSocket) -> AsyncMeshSocket {
        AsyncMeshSocket {
            socket: Arc::new(socket),
        }
    }

    /// The socket, for everything that does not wait (`send`, `whisper`, `peers`, ...).
    pub fn socket(&self) -> &MeshSocket {
        &self.socket
    }

    /// The next message; `None` once the socket is closed.
    pub async fn recv(&self) -> Option<Message> {
        let shared = self.socket.shared().clone();
        let (msg, resume) = poll_fn(|cx| shared.inbox.poll_pop(cx)).await;
        if resume {
            self.socket.handle().resume();
        }
        msg
    }

    /// The next peer event; `None` once the socket is closed.
    pub async fn next_event(&self) -> Option<PeerEvent> {
        let shared = self.socket.shared().clone();
        poll_fn(|cx| shared.events.poll_pop(cx)).await.0
    }

    /// Messages as they arrive; the stream ends when the socket closes.
    pub fn messages(&self) -> MessageStream {
        MessageStream {
            socket: self.socket.clone(),
        }
    }

    /// Peer events as they happen; the stream ends when the socket closes.
    pub fn events(&self) -> EventStream {
        EventStream {
            socket: self.socket.clone(),
        }
    }

    /// Dials `addr` and resolves once the peer's handshake is in (its id) or the dial failed,
    /// as [`MeshSocket::connect`] does, without blocking a runtime thread.
    pub async fn connect(&self, addr: SocketAddr) -> Result<String, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tell = move |result| {
            let _ = tx.send(result);
        };
        self.socket.handle().send(Command::Connect {
            addr,
            expected_id: None,
            reply: ConnectReply::Notify(Box::new(tell)),
        })?;
        match rx.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(error)) => Err(Error::Connect { addr, error }),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Stops the node (as [`MeshSocket::close`]); the streams end.
    pub fn close(&self) {
        self.socket.close();
    }
}

/// A [`Stream`] of the messages a socket receives; see [`AsyncMeshSocket::messages`].
pub struct MessageStream {
    socket: Arc<MeshSocket>,
}

impl Stream for MessageStream {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let socket = &self.socket;
        socket.shared().inbox.poll_pop(cx).map(|(msg, resume)| {
            if resume {
                socket.handle().resume();
            }
            msg
        })
    }
}

/// A [`Stream`] of a socket's peer events; see [`AsyncMeshSocket::events`].
pub struct EventStream {
    socket: Arc<MeshSocket>,
}

impl Stream for EventStream {
    type Item = PeerEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PeerEvent>> {
        self.socket.shared().events.poll_pop(cx).map(|(e, _)| e)
    }
}
