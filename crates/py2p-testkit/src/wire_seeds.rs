//! The hand-made seed corpus of the wire fuzz targets ([`crate::wire::TARGETS`]).

use py2p_wire::{Compression, Message};

use crate::corpus::{SeedFile, SEED_PREFIX};
use crate::wire::FUZZ_MAX_FRAME_LEN;

/// `lzma.compress(bytes(1 << 20))` by Python 3.11 (what py2p sends): an xz bomb of 284 bytes.
const PY_XZ_BOMB: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a3efffff00d95d00006ffdffffa3b7ff473e481572396151b89228e6a38607f9eee41e82d32fc53a3c014bb17ec98a8a4d2fa30dd97fa6e38c231153e05918c5758ae277f8b6947f0c6ac0de744964e2e95c53b204d8f7440cab5f0d6d46e9e5c37688b79657acb64de1691d6ffb4b88106c42cb883f5c008fd04eaf262894711f3d8f24e1709ea7235fec28cb85d195988a7e2a91f22775f719c006984d98fdd8afd5900fc42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522af7e495250000000000c2f6ba3ea2706b600001f5018080400079977f47b1c467fb020000000004595a";

/// `lzma.compress((b"the quick brown fox jumps over the lazy py2p peer " * 6)[:300])` by
/// Python 3.11: LZMA2-compressed data from Python's own encoder.
const PY_XZ_TEXT: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a3e0012b00355d003a1a08ce76c7e5e9d60734c3d10ebfce55e1aabde0e48f9801dd8de507549e65255f273a6a7eb5972828595878b4959b20276a80000000000066a387aff9d46e23000151ac0200000093b5591bb1c467fb020000000004595a";

fn unhex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    crate::Rng::new(seed).bytes(len)
}

fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy py2p peer "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// A plain message body made of the given packets.
fn body_of(packets: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in packets {
        body.extend_from_slice(&(p.len() as u32).to_be_bytes());
        body.extend_from_slice(p);
    }
    body
}

/// A frame (header + body).
fn frame_of(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A [`frame_decoder`](crate::wire::frame_decoder) input pushing `stream` at once.
fn whole(stream: &[u8]) -> Vec<u8> {
    let mut data = vec![0];
    data.extend_from_slice(stream);
    data
}

/// A [`frame_decoder`](crate::wire::frame_decoder) input pushing `stream` in chunks of `sizes`.
fn chunked(sizes: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut data = vec![sizes.len() as u8];
    data.extend_from_slice(sizes);
    data.extend_from_slice(stream);
    data
}

fn method_name(method: Option<Compression>) -> &'static str {
    method.map_or("none", Compression::name)
}

/// The hand-made seed corpus of every fuzz target.
///
/// Small files: valid frames under each compression (whole and in pieces), truncated and
/// concatenated frames, a 4 GiB header, a header just over the limit, malformed bodies
/// (bad checksum, bad base-58 time, packet overrun, too few and too many packets),
/// decompression bombs and garbage.
pub fn seed_corpus() -> Vec<SeedFile> {
    let mut files = Vec::new();
    let mut add = |target: &'static str, name: &str, data: Vec<u8>| {
        files.push(SeedFile {
            target,
            name: format!("{SEED_PREFIX}{name}"),
            data,
        });
    };

    // -- frame_decoder ------------------------------------------------------------------
    let fd = "frame_decoder";
    let time = 1_700_000_000;
    let small = Message::new(
        b"\x00".to_vec(),
        b"seed-sender".to_vec(),
        vec![b"\x00".to_vec(), b"hello".to_vec()],
        time,
    );
    let texty = Message::new(
        b"\x02".to_vec(),
        b"seed-sender".to_vec(),
        vec![b"\x0a".to_vec(), text(300)],
        time,
    );
    let methods: Vec<Option<Compression>> = std::iter::once(None)
        .chain(Compression::PREFERENCE.into_iter().map(Some))
        .collect();
    for &m in &methods {
        add(
            fd,
            &format!("valid-{}", method_name(m)),
            whole(&texty.encode(m)),
        );
        add(
            fd,
            &format!("chunked-{}", method_name(m)),
            chunked(&[1, 3, 0, 7, 64], &small.encode(m)),
        );
    }
    let plain = small.encode(None);
    let zlib = texty.encode(Some(Compression::Zlib));
    add(
        fd,
        "two-frames",
        chunked(&[5], &[plain.as_slice(), zlib.as_slice()].concat()),
    );
    add(fd, "byte-by-byte", chunked(&[1], &plain));
    add(
        fd,
        "truncated-header",
        whole(plain.get(..2).unwrap_or_default()),
    );
    add(
        fd,
        "truncated-body",
        whole(plain.get(..plain.len() - 3).unwrap_or_default()),
    );
    add(
        fd,
        "empty-frame-then-valid",
        whole(&[&[0, 0, 0, 0], plain.as_slice()].concat()),
    );
    add(fd, "4gib-header", whole(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]));
    add(
        fd,
        "4gib-header-after-valid",
        chunked(&[2, 9], &[plain.as_slice(), &[0xFF; 8]].concat()),
    );
    let over = (FUZZ_MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    add(
        fd,
        "just-over-limit",
        whole(&[over.as_slice(), &[0; 16]].concat()),
    );
    let at_limit = frame_of(&noise(FUZZ_MAX_FRAME_LEN, 7));
    add(fd, "at-limit-garbage", whole(&at_limit));
    add(fd, "garbage", whole(&noise(96, 11)));
    add(fd, "garbage-chunked", chunked(&[4, 4, 1], &noise(80, 13)));

    let bomb_zlib = Compression::Zlib.compress(&vec![0; 1 << 20]);
    add(fd, "zlib-bomb", whole(&frame_of(&bomb_zlib)));
    let bomb_bz2 = Compression::Bz2.compress(&vec![0; 1 << 20]);
    add(fd, "bz2-bomb", whole(&frame_of(&bomb_bz2)));
    add(fd, "xz-bomb", whole(&frame_of(&unhex(PY_XZ_BOMB))));
    // A snappy header announcing 1 GiB of output.
    add(
        fd,
        "snappy-huge-len",
        whole(&frame_of(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61])),
    );

    let id = small.id().as_bytes().to_vec();
    let time_58 = small.time_58().into_bytes();
    let mut bad_id = id.clone();
    if let Some(first) = bad_id.first_mut() {
        *first = if *first == b'2' { b'3' } else { b'2' };
    }
    add(
        fd,
        "bad-checksum",
        whole(&frame_of(&body_of(&[
            b"\x00", b"s", &bad_id, &time_58, b"\x00", b"hello",
        ]))),
    );
    add(
        fd,
        "bad-base58-time",
        whole(&frame_of(&body_of(&[
            b"\x00", b"s", &id, b"0OIl", b"\x00", b"hello",
        ]))),
    );
    add(
        fd,
        "time-overflow",
        whole(&frame_of(&body_of(&[
            b"\x00",
            b"s",
            &id,
            &[b'z'; 20],
            b"\x00",
        ]))),
    );
    add(
        fd,
        "too-few-packets",
        whole(&frame_of(&body_of(&[b"\x00", b"s", &id]))),
    );
    let many = Message::new(
        b"\x00".to_vec(),
        b"s".to_vec(),
        vec![b"x".to_vec(); 20],
        time,
    );
    add(fd, "too-many-packets", whole(&many.encode(None)));
    let empty_payload = Message::new(b"\x00".to_vec(), b"s".to_vec(), Vec::new(), time);
    add(fd, "empty-payload", whole(&empty_payload.encode(None)));
    let mut overrun = body_of(&[b"\x00", b"s", &id, &time_58]);
    overrun.extend_from_slice(&[0, 0, 1, 0, b'x']);
    add(fd, "packet-overrun", whole(&frame_of(&overrun)));

    // -- decompress ---------------------------------------------------------------------
    let dc = "decompress";
    for m in Compression::PREFERENCE {
        let packed = m.compress(&text(300));
        add(dc, &format!("{}-text", m.name()), packed.clone());
        add(dc, &format!("{}-empty", m.name()), m.compress(b""));
        add(
            dc,
            &format!("{}-truncated", m.name()),
            packed.get(..packed.len() / 2).unwrap_or_default().to_vec(),
        );
        let mut flipped = packed;
        let middle = flipped.len() / 2;
        if let Some(byte) = flipped.get_mut(middle) {
            *byte ^= 0x55;
        }
        add(dc, &format!("{}-corrupted", m.name()), flipped);
    }
    add(dc, "zlib-bomb", bomb_zlib);
    add(
        dc,
        "gzip-bomb",
        Compression::Gzip.compress(&vec![0; 1 << 20]),
    );
    add(dc, "bz2-bomb", bomb_bz2);
    add(dc, "xz-bomb-python", unhex(PY_XZ_BOMB));
    add(dc, "xz-text-python", unhex(PY_XZ_TEXT));
    add(
        dc,
        "snappy-huge-len",
        vec![0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61],
    );
    let bz2_twice = [
        Compression::Bz2.compress(b"one "),
        Compression::Bz2.compress(b"two"),
    ]
    .concat();
    add(dc, "bz2-two-streams", bz2_twice);
    let mut trailing = Compression::Zlib.compress(&text(100));
    trailing.extend_from_slice(b"trailing garbage");
    add(dc, "zlib-trailing-garbage", trailing);
    add(dc, "empty", Vec::new());
    add(dc, "garbage", noise(128, 17));
    add(dc, "text-uncompressed", text(200));

    files
}
