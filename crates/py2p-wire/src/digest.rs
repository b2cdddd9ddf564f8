//! sha-384, the checksum behind every message id, from the fastest implementation at hand.
//!
//! Two implementations give the same digest: `sha2` (pure Rust, its AVX2 code where the CPU
//! has it) and, with the `openssl` feature (on by default), the system's libcrypto through
//! the `openssl` crate. On x86-64 OpenSSL's hand-scheduled SHA-512 is about 1.4× `sha2`'s
//! from a few KiB up, but its set-up per call makes it slower for short input, where most
//! messages are: [`Sha384::for_len`] picks OpenSSL from [`OPENSSL_FROM`] bytes on and `sha2`
//! below (measured on an AMD EPYC: equal at 512 B, OpenSSL ahead from 1 KiB).
//!
//! [`sha384_each`] hashes many inputs in one call (the ids of a run of broadcasts, the checks
//! of a run of received frames). On x86-64 CPUs with AVX2 it hashes inputs under
//! [`OPENSSL_FROM`] bytes four at a time, one per 64-bit lane of 256-bit registers (our own
//! SHA-512 compression in `digest/lanes.rs`, about 2.3× `sha2`'s throughput per input of 200
//! bytes there); longer inputs, a lone input, other targets and CPUs without AVX2 are hashed
//! one at a time by [`Sha384`]. The digests are the same either way.
//!
//! ```
//! use py2p_wire::digest::Sha384;
//! let parts: [&[u8]; 2] = [b"hello ", b"world"];
//! let mut h = Sha384::for_len(11);
//! for part in parts {
//!     h.update(part);
//! }
//! assert_eq!(h.finish(), py2p_wire::digest::sha384(b"hello world"));
//! ```

mod each;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod single;

pub use each::sha384_each;
pub use single::{sha384, Sha384, OPENSSL_FROM, SHA384_LEN};
