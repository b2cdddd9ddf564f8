//! Deterministic payloads that compress about as much as real traffic does, for the codec
//! benchmarks and the tests of large frames.

/// `len` bytes from a fixed-seed xorshift64: each step appends either one of `words` and a
/// space or eight noise bytes (noise only when `words` is empty). The same arguments give
/// the same bytes on every machine, so benchmark rows stay comparable between runs.
pub fn words_and_noise(len: usize, words: &[&str]) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pick = usize::try_from(x >> 8).unwrap_or(0) % words.len().max(1);
        match words.get(pick) {
            Some(word) if x & 1 == 0 => {
                out.extend_from_slice(word.as_bytes());
                out.push(b' ');
            }
            _ => out.extend_from_slice(&x.to_be_bytes()),
        }
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_every_time_and_both_kinds_of_step() {
        let a = words_and_noise(10_000, &["peer", "node"]);
        assert_eq!(a.len(), 10_000);
        assert_eq!(a, words_and_noise(10_000, &["peer", "node"]));
        let text = a
            .windows(5)
            .filter(|w| w == b"peer " || w == b"node ")
            .count();
        assert!(text > 100 && text < 2_000, "{text} words");
        assert!(!words_and_noise(100, &[]).windows(5).any(|w| w == b"peer "));
    }
}
