//! Large frames with every compression, both ways between py2p-wire and py2p 0.5.607's
//! `InternalMessage`: the sizes at which py2p-wire's bzip2 compresses a stream's blocks on
//! several threads (one stream of blocks made apart and merged), and py2p's own frames of
//! several blocks.
//!
//! Without the interop venv the test prints SKIPPED and passes (with
//! `PY2P_INTEROP=required` it fails instead).

mod common;

use std::path::Path;
use std::process::Command;

use common::python;
use py2p_wire::{Compression, Limits, Message};

const SENDER: &[u8] = b"interop-codec-sender";
const TIME: u64 = 1_700_000_000;
/// 1 MiB (two blocks merged; py2p: 900 kB and the rest) and 2.2 MB (four parts; py2p: three
/// blocks).
const SIZES: [usize; 2] = [1 << 20, 2_200_000];

/// Half text, half noise: compresses about as much as real traffic does.
fn payload(len: usize) -> Vec<u8> {
    py2p_testkit::payload::words_and_noise(len, &["compression"])
}

/// py2p decodes `rs-<flag>-<size>.bin` and checks the payload against `payload-<size>.bin`,
/// and encodes that payload into `py-<flag>-<size>.bin`; it prints one `ok` line per frame.
const SCRIPT: &str = r#"
import os, sys
from py2p.base import InternalMessage
d, sender, time = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
for name in sorted(os.listdir(d)):
    if not name.startswith("rs-"):
        continue
    _, flag, size = name[:-4].split("-")
    payload = open(os.path.join(d, "payload-%s.bin" % size), "rb").read()
    frame = open(os.path.join(d, name), "rb").read()
    m = InternalMessage.feed_string(frame, compressions=[bytes([int(flag)])])
    assert m.payload == (b"\x00", payload), name
    assert m.sender == sender, name
    out = InternalMessage(b"\x00", sender, [b"\x00", payload],
                          compression=[bytes([int(flag)])], timestamp=time).string
    open(os.path.join(d, "py-%s-%s.bin" % (flag, size)), "wb").write(out)
    print("ok", name, flush=True)
"#;

#[test]
fn large_frames_of_every_compression_both_ways() {
    let Some(py) = python() else { return };
    let dir = std::env::temp_dir().join(format!("py2p-interop-codec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut expected = Vec::new();
    for size in SIZES {
        let data = payload(size);
        std::fs::write(dir.join(format!("payload-{size}.bin")), &data).unwrap();
        let msg = Message::new(
            b"\x00".to_vec(),
            SENDER.to_vec(),
            vec![b"\x00".to_vec(), data],
            TIME,
        );
        for method in Compression::ALL {
            let name = format!("rs-{}-{size}.bin", method.flag());
            std::fs::write(dir.join(&name), msg.encode(Some(method))).unwrap();
            expected.push((method, size, name));
        }
    }
    let out = Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&dir)
        .arg(std::str::from_utf8(SENDER).unwrap())
        .arg(TIME.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "py2p failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let limits = Limits {
        max_frame_len: 8 << 20,
        max_decompressed_len: 8 << 20,
        ..Limits::default()
    };
    for (method, size, name) in &expected {
        assert!(
            stdout.lines().any(|l| l == format!("ok {name}")),
            "py2p did not read {name}: {stdout}"
        );
        let theirs = read(&dir, &format!("py-{}-{size}.bin", method.flag()));
        let back = Message::decode_frame(&theirs, &[*method], &limits)
            .unwrap_or_else(|e| panic!("py2p's {method} frame of {size} bytes: {e}"));
        assert_eq!(back.sender(), SENDER);
        assert_eq!(
            back.into_payload(),
            vec![b"\x00".to_vec(), payload(*size)],
            "{method} {size}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
