//! Length-prefixed frames as a py2p stream carries them, for tests that write raw bytes to
//! a connection or a frame decoder.

/// `body` behind its 4-byte big-endian length (a body over 4 GiB, which no test writes,
/// would get a saturated length).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Every body framed, one after the other: a stream.
pub fn frames<B: AsRef<[u8]>>(bodies: &[B]) -> Vec<u8> {
    bodies.iter().flat_map(|b| frame(b.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_then_body() {
        assert_eq!(frame(b"ab"), [0, 0, 0, 2, b'a', b'b']);
        assert_eq!(frames(&[&b"a"[..], b""]), [0, 0, 0, 1, b'a', 0, 0, 0, 0]);
    }
}
