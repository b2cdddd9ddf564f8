//! The first bytes of a snappy raw block, without decompressing the rest: enough for a mesh
//! node to read a broadcast's id and drop a copy it has seen (most copies, in a waterfall)
//! before paying for the whole block.

/// Puts in `out` (cleared first) the first `want` bytes that the snappy raw block `data`
/// decompresses to, or all of them when the block is shorter; reads no more of `data` than
/// that needs. False when `data` does not start as a valid block (an offset before the start,
/// a literal or a copy past the announced length, input that ends before the bytes wanted):
/// then `out` says nothing. True says nothing of the rest of the block: only a whole decompression checks it.
pub fn snappy_prefix_into(data: &[u8], want: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let ok = decode_prefix(data, want, out).is_some();
    if !ok {
        out.clear();
    }
    ok
}

fn decode_prefix(data: &[u8], want: usize, out: &mut Vec<u8>) -> Option<()> {
    // The announced length: a varint of at most 32 bits.
    let mut len: u64 = 0;
    let mut s = 0;
    loop {
        let b = *data.get(s)?;
        len |= u64::from(b & 0x7f) << (7 * s);
        s += 1;
        if b < 0x80 {
            break;
        }
        if s == 5 {
            return None;
        }
    }
    let len = usize::try_from(u32::try_from(len).ok()?).ok()?;
    let target = want.min(len);
    out.reserve(target);
    // `produced` counts the block's output, of which `out` keeps the first `target` bytes.
    let mut produced = 0usize;
    while produced < target {
        let tag = *data.get(s)?;
        s += 1;
        let (n, offset) = match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    let bytes = data.get(s..s + extra)?;
                    n = bytes
                        .iter()
                        .rev()
                        .fold(0usize, |v, &b| (v << 8) | usize::from(b));
                    s += extra;
                }
                let n = n.checked_add(1)?;
                if produced + n > len {
                    return None;
                }
                // Only the part of the literal that is wanted must be there.
                let take = n.min(target - produced);
                out.extend_from_slice(data.get(s..s.checked_add(take)?)?);
                s += take;
                produced += n;
                continue;
            }
            1 => {
                let low = usize::from(*data.get(s)?);
                s += 1;
                (
                    4 + usize::from((tag >> 2) & 7),
                    (usize::from(tag >> 5) << 8) | low,
                )
            }
            2 => {
                let b = data.get(s..s + 2)?;
                s += 2;
                (
                    usize::from(tag >> 2) + 1,
                    usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])),
                )
            }
            _ => {
                let b = data.get(s..s + 4)?;
                s += 4;
                let mut word = [0u8; 4];
                word.copy_from_slice(b);
                (
                    usize::from(tag >> 2) + 1,
                    usize::try_from(u32::from_le_bytes(word)).ok()?,
                )
            }
        };
        if offset == 0 || offset > produced || produced + n > len {
            return None;
        }
        // Copies may overlap what they write (an offset below the length repeats a pattern).
        let take = n.min(target - produced);
        for _ in 0..take {
            let b = *out.get(out.len() - offset)?;
            out.push(b);
        }
        produced += n;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_the_start_of_the_whole_decompression() {
        // Text with repeats (copies of every size and offset) and noise (literals).
        let mut plain = Vec::new();
        let mut x: u32 = 7;
        for i in 0..3_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 3 == 0 {
                plain.extend_from_slice(b"a broadcast, and another ");
            }
            plain.push((x % 251) as u8);
            if i % 100 == 0 {
                plain.extend(std::iter::repeat_n(b'z', (x % 300) as usize));
            }
        }
        let block = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        let mut out = Vec::new();
        for want in (0..plain.len() + 10)
            .step_by(97)
            .chain([1, 2, 3, 155, 160, 168])
        {
            assert!(snappy_prefix_into(&block, want, &mut out), "{want}");
            assert_eq!(out, plain[..want.min(plain.len())], "{want}");
        }
        // An empty block.
        let empty = snap::raw::Encoder::new().compress_vec(b"").unwrap();
        assert!(snappy_prefix_into(&empty, 100, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn bad_blocks_say_false_and_never_panic() {
        let mut out = Vec::new();
        // A copy before the start; a literal past the announced length; a cut literal;
        // a length of more than 32 bits; nothing at all.
        assert!(!snappy_prefix_into(&[10, 0x01, 5], 10, &mut out));
        assert!(!snappy_prefix_into(
            &[2, 4 << 2, 1, 2, 3, 4, 5],
            10,
            &mut out
        ));
        assert!(!snappy_prefix_into(&[10, 9 << 2, 1, 2], 10, &mut out));
        assert!(!snappy_prefix_into(
            &[0xff, 0xff, 0xff, 0xff, 0x7f],
            10,
            &mut out
        ));
        assert!(!snappy_prefix_into(&[], 10, &mut out));
        assert!(out.is_empty());
        // Arbitrary bytes: an answer, never a panic, and a true one agrees with snap's.
        let mut x: u64 = 99;
        for _ in 0..20_000 {
            let mut data = Vec::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push(x as u8);
            }
            x = x.wrapping_add(1);
            if snappy_prefix_into(&data, 1 << 20, &mut out) {
                if let Ok(full) = snap::raw::Decoder::new().decompress_vec(&data) {
                    assert_eq!(out, full);
                }
            }
        }
    }
}
