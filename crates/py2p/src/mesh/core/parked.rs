//! The broadcasts parked for their id checks (see `checks.rs`, which finishes them): what
//! each keeps while it waits, and the batch's bounds.

use std::collections::VecDeque;

use py2p_net::ConnId;
use py2p_wire::digest::SHA384_LEN;
use py2p_wire::{Compression, Unchecked};

use crate::mesh::seen::Key;

/// How many broadcasts wait for their id checks at most: a multiple of the four inputs
/// `sha384_each` hashes side by side, and few enough that a turn's first delivery is not
/// held back long.
pub(crate) const PARKED_MAX: usize = 16;

/// Broadcasts whose plain body is longer than this are checked at once, not parked: the
/// parked messages' memory stays under [`PARKED_MAX`] times this, and hashing side by side
/// pays for short inputs.
pub(super) const PARK_BODY_MAX: usize = 4096;

/// A broadcast waiting for its id check, or a copy of a seen one to drop in its turn.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) conn: ConnId,
    /// Its id's key in the seen set.
    pub(super) key: Key,
    /// `None`: a copy of a broadcast seen when it came, dropped when its turn comes (its
    /// drop withdraws our held relay to its sender: that must happen after what was
    /// parked before it, as it did when frames were handled as they came).
    pub(super) msg: Option<Unchecked>,
    /// Its compressed body as it arrived, for its relay.
    pub(super) kept: Option<KeptBody>,
    /// The sha-384 of its payload and time, once made.
    pub(super) digest: Option<[u8; SHA384_LEN]>,
    /// A broadcast parked before it has the same key: it is hashed only if that one was
    /// not taken.
    pub(super) copy: bool,
}

impl Parked {
    /// Whether it still needs its digest: not hashed yet, and no copy (a copy is hashed only
    /// if the broadcast parked before it with the same key was not taken).
    pub(super) fn unhashed(&self) -> bool {
        self.digest.is_none() && !self.copy
    }
}

/// The broadcasts parked for their id checks, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ParkedChecks {
    pub(super) items: VecDeque<Parked>,
    /// Their plain bodies' bytes together (what they would hold in the inbox).
    pub(super) bytes: usize,
    /// The digests of one batch, kept between batches (no allocation per batch).
    pub(super) digests: Vec<[u8; SHA384_LEN]>,
    /// Connections closed for a forged broadcast while the parked ones were finished, since
    /// the last frame was taken: the frame that made them finish is dropped if it came
    /// from one (the loop would not have handed it).
    pub(super) closed: Vec<ConnId>,
}

impl ParkedChecks {
    /// How many wait.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Their plain bodies' bytes together.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the batch is full: it is to be finished now.
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= PARKED_MAX
    }

    /// Whether `conn` was closed while the parked broadcasts were finished, since the last
    /// frame was taken.
    pub(super) fn closed(&self, conn: ConnId) -> bool {
        self.closed.contains(&conn)
    }

    /// A frame is taken: what was closed before is known to the loop.
    pub(super) fn forget_closed(&mut self) {
        if !self.closed.is_empty() {
            self.closed.clear();
        }
    }
}

/// A broadcast's compressed body as it arrived, kept while it waits for its id check (the
/// frame's body does not outlive the callback that lent it), for its relay: see
/// `Received::keep`.
#[derive(Debug)]
pub(super) struct KeptBody {
    pub(super) method: Option<Compression>,
    /// Whether the time packet arrived in its one canonical spelling.
    pub(super) canonical_time: bool,
    pub(super) body: Vec<u8>,
}
