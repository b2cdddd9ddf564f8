//! Frames as the write queues hold them: owned by one connection, or shared by many.

use std::ops::Deref;
use std::sync::Arc;

/// A whole frame (length header included) queued for a connection.
///
/// A frame sent to one connection is owned by its queue. A broadcast goes to every peer that
/// negotiated the same compression as the same bytes, so it is encoded once and
/// [shared](Frame::shared): each queue holds a reference, not a copy.
///
/// ```
/// use py2p_net::Frame;
/// let frame = Frame::shared(vec![0, 0, 0, 1, 42]);
/// let for_another_peer = frame.clone(); // no copy of the bytes
/// assert_eq!(&*for_another_peer, &[0, 0, 0, 1, 42]);
/// assert_eq!(Frame::from(vec![1, 2]).len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Frame {
    /// A frame whose clones share one buffer (moving `bytes` in, without copying them).
    pub fn shared(bytes: Vec<u8>) -> Frame {
        Frame(Repr::Shared(Arc::new(bytes)))
    }

    /// The buffer of an owned frame, to append whole frames to (a write queue's shared
    /// buffer of small frames); `None` for a shared one.
    pub(crate) fn owned_mut(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.0 {
            Repr::Owned(v) => Some(v),
            Repr::Shared(_) => None,
        }
    }

    /// The bytes, taken out without a copy when this is the only reference.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Owned(v) => v,
            Repr::Shared(a) => Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone()),
        }
    }
}

impl Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Shared(a) => a,
        }
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for Frame {
    fn from(bytes: Vec<u8>) -> Frame {
        Frame(Repr::Owned(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_frames_share_one_buffer_and_give_it_back_when_alone() {
        let a = Frame::shared(vec![1, 2, 3]);
        let b = a.clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
        let copy = a.into_vec(); // b still holds it: a copy
        assert_ne!(copy.as_ptr(), b.as_ptr());
        let ptr = b.as_ptr();
        let last = b.into_vec(); // the last reference: no copy
        assert_eq!(last.as_ptr(), ptr);
        let owned = Frame::from(vec![9]);
        assert_eq!(owned.into_vec(), vec![9]);
    }
}
