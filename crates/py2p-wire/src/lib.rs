//! The py2p 0.5 wire format, with no I/O.
//!
//! This crate reads and writes the traffic of the py2p peer-to-peer protocol exactly as the
//! reference Python package `py2p==0.5.607` does: the [`Flag`] bytes, py2p's integer
//! [`base58`], the five [`Compression`] methods and their negotiation, [`Protocol`] ids,
//! [`Message`] encode/decode (py2p's `InternalMessage`) and an incremental [`FrameDecoder`].
//!
//! Nothing here opens a socket, spawns a thread or logs: someone who only parses py2p traffic
//! depends on this crate alone. No input can panic it, and every buffer it fills from input is
//! bounded by [`Limits`].
//!
//! ```
//! use py2p_wire::{Compression, FrameDecoder, Limits, Message};
//!
//! let msg = Message::new(b"\x00".to_vec(), b"sender-id".to_vec(), vec![b"\x00".to_vec(), b"hi".to_vec()], 1_700_000_000);
//! let frame = msg.encode(Some(Compression::Zlib));
//!
//! // Bytes arrive in arbitrary pieces; the decoder hands out whole frame bodies.
//! let mut decoder = FrameDecoder::new(Limits::default().max_frame_len);
//! let (a, b) = frame.split_at(3);
//! decoder.push(a);
//! assert!(decoder.next_frame()?.is_none());
//! decoder.push(b);
//! let body = decoder.next_frame()?.expect("a whole frame");
//! let back = Message::decode_body(&body, &[Compression::Zlib], &Limits::default())?;
//! assert_eq!(back, msg);
//! assert_eq!(back.id(), msg.id());
//! # Ok::<(), py2p_wire::WireError>(())
//! ```
#![warn(missing_docs)]

pub mod base58;
pub mod compression;
mod decoder;
pub mod digest;
mod error;
mod flag;
mod limits;
mod message;
mod protocol;

pub use compression::method::Compression;
pub use decoder::{FrameDecoder, HEADER_LEN};
pub use error::WireError;
pub use flag::Flag;
pub use limits::Limits;
pub use message::unchecked::{DigestInput, Unchecked};
pub use message::{Head, Message, Payload, PayloadIter, PlainBody};
pub use protocol::{Encryption, Protocol, PROTOCOL_VERSION};
