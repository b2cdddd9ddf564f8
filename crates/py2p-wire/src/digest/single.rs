//! sha-384 of one input: [`Sha384`], incremental, on `sha2` or OpenSSL by the input's
//! length, and [`sha384`] of a slice.

/// Input length (bytes) from which [`Sha384::for_len`] hashes with OpenSSL, when the
/// `openssl` feature is on.
pub const OPENSSL_FROM: usize = 1024;

/// Length of a sha-384 digest in bytes.
pub const SHA384_LEN: usize = 48;

/// An incremental sha-384.
pub struct Sha384(Backend);

enum Backend {
    Sha2(sha2::Sha384),
    #[cfg(feature = "openssl")]
    OpenSsl(openssl::sha::Sha384),
}

impl Sha384 {
    /// A hasher for about `len` bytes of input: the length only picks the implementation
    /// (see [`OPENSSL_FROM`]); any amount may be hashed and the digest is the same.
    pub fn for_len(len: usize) -> Sha384 {
        #[cfg(feature = "openssl")]
        if len >= OPENSSL_FROM {
            return Sha384(Backend::OpenSsl(openssl::sha::Sha384::new()));
        }
        let _ = len;
        Sha384(Backend::Sha2(sha2::Digest::new()))
    }

    /// Hashes `data` after what was hashed before.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Backend::Sha2(h) => sha2::Digest::update(h, data),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(h) => h.update(data),
        }
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> [u8; SHA384_LEN] {
        match self.0 {
            Backend::Sha2(h) => sha2::Digest::finalize(h).into(),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(h) => h.finish(),
        }
    }
}

impl std::fmt::Debug for Sha384 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.0 {
            Backend::Sha2(_) => "sha2",
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(_) => "openssl",
        };
        f.debug_tuple("Sha384").field(&backend).finish()
    }
}

/// sha-384 of `data`.
pub fn sha384(data: &[u8]) -> [u8; SHA384_LEN] {
    let mut h = Sha384::for_len(data.len());
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn bytes(len: usize) -> Vec<u8> {
        py2p_testkit::Rng::new(0x9E37_79B9_7F4A_7C15).bytes(len)
    }

    /// Whatever the length hint, each implementation gives sha2's digest, also when the
    /// input arrives in pieces that straddle the 128-byte blocks.
    #[test]
    fn every_length_hint_gives_sha2s_digest() {
        for len in [0, 1, 111, 112, 127, 128, 129, 200, 1023, 1024, 1025, 70_000] {
            let data = bytes(len);
            let want: [u8; 48] = sha2::Sha384::digest(&data).into();
            assert_eq!(sha384(&data), want, "{len}");
            for hint in [0, OPENSSL_FROM - 1, OPENSSL_FROM, usize::MAX] {
                for piece in [1, 7, 128, 1000, usize::MAX] {
                    let mut h = Sha384::for_len(hint);
                    for chunk in data.chunks(piece.min(len.max(1))) {
                        h.update(chunk);
                    }
                    assert_eq!(h.finish(), want, "len {len}, hint {hint}, pieces {piece}");
                }
            }
        }
    }

    #[test]
    fn the_hint_picks_the_implementation() {
        let small = format!("{:?}", Sha384::for_len(OPENSSL_FROM - 1));
        let large = format!("{:?}", Sha384::for_len(OPENSSL_FROM));
        assert_eq!(small, "Sha384(\"sha2\")");
        let want = if cfg!(feature = "openssl") {
            "Sha384(\"openssl\")"
        } else {
            "Sha384(\"sha2\")"
        };
        assert_eq!(large, want);
    }

    #[test]
    fn known_answer() {
        // FIPS 180-2, appendix D.1: sha-384("abc").
        let want = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                    8086072ba1e7cc2358baeca134c825a7";
        let got: String = sha384(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }
}
