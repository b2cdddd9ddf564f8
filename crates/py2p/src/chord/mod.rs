//! The chord table: py2p's `chord_socket`, a distributed hash table on a mesh network.
//!
//! Each user key is stored in five slots, one per hash table (`sha1 << 224`,
//! `sha224 << 160`, `sha256 << 128`, `sha384`, `sha512`); the joined node whose id most
//! closely precedes a slot key on the ring (distance `(key - id) mod 2**384`) holds it. A
//! get asks the five holders and needs three to agree.
//!
//! - `key`: hashing, base-58 keys, the ring distance;
//! - `store`: the slots a node holds, within `max_table_bytes`;
//! - `wire`: the chord messages;
//! - `table`: the node's chord state and what each message does, a plain state machine;
//! - `effect`: its requests in and answers out, as values (`command`: the users' requests
//!   with their reply channels, which the node keeps);
//! - `socket`: [`ChordSocket`](crate::ChordSocket), what users hold.

pub(crate) mod command;
pub(crate) mod config;
mod effect;
pub(crate) mod info;
mod key;
pub(crate) mod socket;
mod store;
pub(crate) mod table;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use self::command::{ChordCommand, ChordReply};
pub(crate) use self::config::ChordConfig;
pub(crate) use self::effect::{ChordAnswer, ChordEffect, ChordRequest, RequestId};
pub(crate) use self::info::ChordInfo;
pub use self::key::{hashes, responsible, Key, Method};
pub(crate) use self::table::ChordTable;
pub(crate) use self::wire::is_chord_packets;
