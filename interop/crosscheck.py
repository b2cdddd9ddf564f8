#!/usr/bin/env python3
"""Live cross-check of our py2p CLI binary against the real py2p 0.5.607.

Usage (from the repository root, in the interop venv, see interop/requirements.txt):

    python interop/crosscheck.py --bin target/release/py2p [--count N] [--seed S]

The binary is driven through its batch contract:

  PATH decode [--compression NAME]...
      stdin: one frame per line, hex of the whole frame (len32 header included).
      stdout: one JSON object per input line,
      {"msg_type": HEX, "sender": HEX, "id": TEXT, "time": INT, "payload": [HEX, ...]}
      or {"error": TEXT}; exit 0 at end of input, 1 when any line failed.
  PATH encode
      stdin: one JSON object per line,
      {"msg_type": HEX, "sender": HEX, "time": INT, "payload": [HEX, ...], "compression": NAME|null}
      stdout: one line of frame hex per input line.

Sections, each run as ONE process invocation fed through stdin:
  (a) decode  - py2p encodes N random messages (plus fixed edge cases) with each of
                None, snappy, zlib, gzip, bz2, lzma; the binary decodes them; every field
                must match.
  (b) encode  - the binary encodes the same messages; py2p decodes each frame with
                feed_string(compressions=[flag] or []) and must get the same fields, and
                must really have decompressed it with that method; uncompressed frames
                must be byte-identical to py2p's InternalMessage(...).string.
  (c) garbage - ~20 invalid lines (non-hex, odd hex, truncated, forged checksum,
                4 GiB header, ...) interleaved with valid frames in one decode run:
                exactly one output line per input line, {"error": ...} for each bad
                line and the right message for each good one.

Prints a per-section summary and, last, `crosscheck: N passed, M failed`
(N and M count individual checks); exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time as timer

try:
    import snappy  # noqa: F401  (py2p only offers snappy when this imports)
except ImportError:  # pragma: no cover
    sys.exit("crosscheck.py: python-snappy is required (pip install -r interop/requirements.txt)")

from py2p import base
from py2p.base import InternalMessage, flags, pack_value, to_base_58

# Compression names as the CLI spells them; None = no compression.
METHODS: dict[str | None, bytes | None] = {
    None: None,
    "snappy": flags.snappy,
    "zlib": flags.zlib,
    "gzip": flags.gzip,
    "bz2": flags.bz2,
    "lzma": flags.lzma,
}
TIMEOUT = 120          # seconds per binary invocation
MAX_SHOWN = 5          # failure details printed per section
TEXT_CHARS = "abcdefghijklmnopqrstuvwxyz ABCDEFXYZ 0123456789 .,;:!?\n\té ü ß ñ 日本語 ключ 🎉 ∑"


# --------------------------------------------------------------------------- messages

class Msg:
    """A message's fields as plain bytes/ints (what both sides must agree on)."""

    def __init__(self, msg_type: bytes, sender: bytes, time: int, payload: list[bytes]):
        self.msg_type, self.sender, self.time, self.payload = msg_type, sender, time, payload

    def py2p(self, method: bytes | None = None) -> InternalMessage:
        """The py2p InternalMessage for these fields.

        py2p's constructor does `time = timestamp or getUTC()`, so time 0 is set afterwards
        (as feed_string itself does).
        """
        msg = InternalMessage(self.msg_type, self.sender, self.payload,
                              compression=[method] if method else None,
                              timestamp=self.time or 1)
        msg.time = self.time
        return msg

    def expected(self) -> dict:
        """The decode output expected from the binary."""
        return {"msg_type": self.msg_type, "sender": self.sender,
                "id": self.py2p().id.decode(), "time": self.time, "payload": self.payload}

    def encode_request(self, name: str | None) -> str:
        return json.dumps({"msg_type": self.msg_type.hex(), "sender": self.sender.hex(),
                           "time": self.time, "payload": [p.hex() for p in self.payload],
                           "compression": name})


def random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def random_text(rng: random.Random, max_bytes: int) -> bytes:
    """UTF-8 text of at most max_bytes bytes, mixing ASCII and multi-byte characters."""
    out, size = [], 0
    while True:
        ch = rng.choice(TEXT_CHARS).encode()
        if size + len(ch) > max_bytes:
            return b"".join(out)
        out.append(ch)
        size += len(ch)


def random_packet(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.10:
        return b""
    if kind < 0.20:
        return bytes([rng.randrange(0x0E)])  # a protocol sub-flag
    size = rng.randint(0, 64) if rng.random() < 0.4 else rng.randint(0, 5000)
    if kind < 0.45:
        return random_text(rng, size)
    return random_bytes(rng, size)


def random_message(rng: random.Random) -> Msg:
    r = rng.random()
    if r < 0.6:
        msg_type = bytes([rng.choice([0, 1, 2, 3, 4, rng.randrange(256)])])
    else:
        msg_type = random_bytes(rng, rng.randint(2, 6))
    r = rng.random()
    if r < 0.5:   # a node id as py2p makes them: base58 of a sha384-sized int
        sender = to_base_58(rng.getrandbits(384))
    elif r < 0.8:
        sender = random_bytes(rng, rng.randint(0, 40))
    else:
        sender = random_text(rng, 30)
    time = rng.randint(0, 100) if rng.random() < 0.1 else rng.randint(0, 2**40)
    payload = [random_packet(rng) for _ in range(rng.randint(0, 6))]
    return Msg(msg_type, sender, time, payload)


def zero_id_payload(time: int) -> bytes:
    """A packet whose message-id digest starts with a zero byte (about 1 in 256)."""
    n = 0
    while hashlib.sha384(b"zero-%d" % n + to_base_58(time)).digest()[0] != 0:
        n += 1
    return b"zero-%d" % n


def edge_messages() -> list[Msg]:
    """Fixed edge cases checked on every run, in addition to the random ones."""
    node = to_base_58(int.from_bytes(hashlib.sha384(b"crosscheck node").digest(), "big"))
    t = 1_790_000_000
    return [
        Msg(b"\x00", node, 0, [b"\x00", b"time zero"]),
        Msg(b"\x00", node, 1, [b"\x00", b"time one"]),
        Msg(b"\x02", node, 57, [b"\x02", b"time 57"]),
        Msg(b"\x02", node, 58, [b"\x02", b"time 58"]),
        Msg(b"\x00", node, 2**40, []),
        Msg(b"\x00", node, t, [b""]),
        Msg(b"", b"", t, [b"", b"", b"x", b""]),
        Msg(b"\x00", node, t, [zero_id_payload(t)]),
        Msg(b"\x02", node, t, [bytes(range(256))]),
        Msg(b"\x00", node, t, [b"A" * 20000]),  # highly compressible
    ]


# --------------------------------------------------------------------------- bookkeeping

class Section:
    """Counts checks for one section and remembers the first few failures."""

    def __init__(self, name: str):
        self.name, self.passed, self.failed, self.details = name, 0, 0, []

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            if len(self.details) < MAX_SHOWN:
                self.details.append(what)
        return ok

    def report(self) -> None:
        status = "ok" if not self.failed else "FAILED"
        print(f"  {self.name:<16} {self.passed:5d} passed {self.failed:5d} failed  {status}")
        for d in self.details:
            print(f"      - {d}")
        if self.failed > len(self.details):
            print(f"      ... and {self.failed - len(self.details)} more")


def run_binary(section: Section, binary: str, args: list[str], lines: list[str],
               status: int = 0) -> list[str]:
    """Run the binary once with all `lines` on stdin; return its output lines.

    Records a check that it started, exited `status` (1 when some line is expected to fail),
    and printed one line per input line.
    """
    stdin = "".join(line + "\n" for line in lines).encode()
    cmd = [binary, *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError) as e:
        section.check(False, f"`{' '.join(cmd)}` could not run: {e}")
        return []
    stderr_tail = proc.stderr.decode(errors="replace").strip()[-300:]
    section.check(proc.returncode == status,
                  f"`{' '.join(cmd)}` exited {proc.returncode}; stderr: {stderr_tail!r}")
    try:
        out = proc.stdout.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        section.check(False, f"output is not UTF-8: {e}")
        return []
    if out and out[-1] == "":
        out.pop()  # the newline ending the last line
    section.check(len(out) == len(lines),
                  f"{len(lines)} input lines but {len(out)} output lines")
    return out


def parse_decoded(line: str) -> dict | str:
    """Parse one decode output line into comparable fields, or return a problem text."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        return f"not JSON ({e}): {line[:120]!r}"
    if not isinstance(obj, dict):
        return f"not a JSON object: {line[:120]!r}"
    if "error" in obj:
        return f"error {obj['error']!r}"
    try:
        return {"msg_type": bytes.fromhex(obj["msg_type"]),
                "sender": bytes.fromhex(obj["sender"]),
                "id": obj["id"],
                "time": obj["time"],
                "payload": [bytes.fromhex(p) for p in obj["payload"]]}
    except (KeyError, TypeError, ValueError) as e:
        return f"malformed object ({e!r}): {line[:120]!r}"


def first_difference(a, b) -> int:
    """Index of the first differing element of two sequences (or the shorter length)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def describe(got, want) -> str:
    """A short description of how two field values differ."""
    if isinstance(got, (str, bytes)) and isinstance(want, (str, bytes)) and type(got) is type(want):
        at = first_difference(got, want)
        lo = max(0, at - 8)
        return (f"differs at {at} (lengths {len(got)}/{len(want)}): "
                f"got ...{got[lo:at + 8]!r} want ...{want[lo:at + 8]!r}")
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{len(got)} packets, want {len(want)}"
        at = first_difference(got, want)
        return f"packet {at} " + describe(got[at], want[at])
    return f"got {str(got)[:60]} want {str(want)[:60]}"


def diff(got: dict, want: dict) -> str:
    """Name the fields that differ, and how."""
    return "; ".join(f"{key}: {describe(got.get(key), value)}"
                     for key, value in want.items() if got.get(key) != value)


# --------------------------------------------------------------------------- sections

def check_decode(binary: str, msgs: list[Msg], name: str | None) -> Section:
    """(a) py2p encodes, the binary decodes."""
    section = Section(f"decode/{name or 'none'}")
    method = METHODS[name]
    frames = [m.py2p(method).string.hex() for m in msgs]
    args = ["decode"] + (["--compression", name] if name else [])
    out = run_binary(section, binary, args, frames)
    for i, m in enumerate(msgs):
        if i >= len(out):
            section.check(False, f"message {i}: no output line")
            continue
        got, want = parse_decoded(out[i]), m.expected()
        if isinstance(got, str):
            section.check(False, f"message {i}: {got}")
        else:
            section.check(got == want, f"message {i}: {diff(got, want)}")
    return section


def check_encode(binary: str, msgs: list[Msg], name: str | None) -> Section:
    """(b) the binary encodes, py2p decodes (and for no compression: byte equality)."""
    section = Section(f"encode/{name or 'none'}")
    method = METHODS[name]
    out = run_binary(section, binary, ["encode"], [m.encode_request(name) for m in msgs])
    for i, m in enumerate(msgs):
        if i >= len(out):
            section.check(False, f"message {i}: no output line")
            continue
        try:
            frame = bytes.fromhex(out[i].strip())
        except ValueError:
            section.check(False, f"message {i}: output is not hex: {out[i][:80]!r}")
            continue
        if method is None:
            want = m.py2p().string
            section.check(frame == want, f"message {i}: frame not byte-identical to py2p's, "
                                         f"{describe(frame, want)}")
        try:
            got = InternalMessage.feed_string(frame, compressions=[method] if method else [])
        except Exception as e:
            section.check(False, f"message {i}: py2p rejects the frame: {type(e).__name__}: {e}"[:200])
            continue
        if method is not None:
            # py2p falls back to parsing the raw body when decompression fails; require
            # that it really was compressed with the requested method.
            section.check(not got.compression_fail,
                          f"message {i}: py2p could not decompress the frame as {name}")
        fields = {"msg_type": bytes(got.msg_type), "sender": bytes(got.sender), "id": got.id.decode(),
                  "time": got.time, "payload": [bytes(p) for p in got.payload]}
        section.check(fields == m.expected(), f"message {i}: {diff(fields, m.expected())}")
    return section


def garbage_lines() -> list[tuple[str, str]]:
    """(description, line) pairs that must each produce {"error": ...}."""
    good = Msg(b"\x00", b"sender", 1_790_000_000, [b"\x00", b"hello"])
    frame = good.py2p().string
    body = frame[4:]
    t58 = good.py2p().time_58
    msg_id = good.py2p().id

    def packets(*pk: bytes) -> bytes:
        b = b"".join(pack_value(4, len(p)) + p for p in pk)
        return pack_value(4, len(b)) + b

    def id_over(payload: list[bytes], time58: bytes) -> bytes:
        return to_base_58(int.from_bytes(hashlib.sha384(b"".join(payload) + time58).digest(), "big"))

    forged = msg_id[:-1] + (b"2" if msg_id[-1:] != b"2" else b"3")
    zpay = [zero_id_payload(1_790_000_000)]
    hexes = [
        ("non-hex text", "this is not hex"),
        ("non-hex chars", "zz" * 8),
        ("odd-length hex", frame.hex()[:-1]),
        ("single hex digit", "0"),
        ("empty line", ""),
        ("0x prefix", "0x" + frame.hex()),
        ("space inside hex", frame.hex()[:10] + " " + frame.hex()[10:]),
        ("3-byte frame", "000000"),
        ("zero-length body", "00000000"),
        ("4 GiB header, small body", (b"\xff\xff\xff\xff" + body).hex()),
        ("4 GiB header alone", "ffffffff"),
        ("truncated by 1 byte", frame[:-1].hex()),
        ("truncated to half", frame[: len(frame) // 2].hex()),
        ("length header +1", (pack_value(4, len(body) + 1) + body).hex()),
        ("forged checksum", packets(b"\x00", b"sender", forged, t58, b"\x00", b"hello").hex()),
        ("only 3 packets", packets(b"\x00", b"sender", msg_id).hex()),
        ("time_58 outside alphabet", packets(b"\x00", b"s", id_over([b"x"], b"0O"), b"0O", b"x").hex()),
        ("time_58 not UTF-8", packets(b"\x00", b"s", id_over([b"x"], b"\xff"), b"\xff", b"x").hex()),
        ("byte-oriented base58 id", packets(b"\x00", b"s", b"1" + id_over(zpay, t58), t58, *zpay).hex()),
        ("inner length overruns body", (pack_value(4, 8) + pack_value(4, 999) + b"abcd").hex()),
        ("zlib frame, no --compression", good.py2p(flags.zlib).string.hex()),
    ]
    # Self-check: everything that is valid hex must really be rejected by py2p.
    for what, line in hexes:
        try:
            raw = bytes.fromhex(line)
        except ValueError:
            continue
        if line.strip() != line or " " in line:
            continue
        try:
            InternalMessage.feed_string(raw, compressions=[])
        except Exception:
            continue
        raise AssertionError(f"crosscheck bug: py2p accepts garbage case {what!r}")
    return hexes


def check_garbage(binary: str, rng: random.Random) -> Section:
    """(c) bad lines interleaved with good ones in one uncompressed decode run."""
    section = Section("decode/garbage")
    lines: list[str] = []
    expect: list[tuple[str, dict | None]] = []  # (description, fields or None for error)
    for what, bad in garbage_lines():
        good = random_message(rng)
        lines.append(good.py2p().string.hex())
        expect.append(("valid frame before " + what, good.expected()))
        lines.append(bad)
        expect.append((what, None))
    last = random_message(rng)
    lines.append(last.py2p().string.hex())
    expect.append(("final valid frame", last.expected()))

    # Garbage lines fail, so the run exits 1 (and still decodes every good line).
    out = run_binary(section, binary, ["decode"], lines, status=1)
    for i, (what, want) in enumerate(expect):
        if i >= len(out):
            section.check(False, f"line {i} ({what}): no output line")
            continue
        got = parse_decoded(out[i])
        if want is None:
            section.check(isinstance(got, str) and got.startswith("error "),
                          f"line {i} ({what}): expected an error object, got {out[i][:120]!r}")
        elif isinstance(got, str):
            section.check(False, f"line {i} ({what}): {got}")
        else:
            section.check(got == want, f"line {i} ({what}): {diff(got, want)}")
    return section


def main() -> int:
    parser = argparse.ArgumentParser(description="Cross-check the py2p CLI binary against py2p 0.5.607.")
    parser.add_argument("--bin", required=True, help="path to the py2p CLI binary")
    parser.add_argument("--count", type=int, default=300, help="random messages (default 300)")
    parser.add_argument("--seed", type=int, default=607, help="random seed (default 607)")
    args = parser.parse_args()

    assert base.version == "0.5.607", f"expected py2p 0.5.607, found {base.version}"
    started = timer.monotonic()
    rng = random.Random(args.seed)
    msgs = edge_messages() + [random_message(rng) for _ in range(args.count)]
    print(f"crosscheck: py2p {base.version}, {len(msgs)} messages "
          f"({args.count} random, seed {args.seed}, plus {len(msgs) - args.count} fixed), binary {args.bin}")

    sections: list[Section] = []
    print("(a) py2p encodes, binary decodes")
    for name in METHODS:
        sections.append(check_decode(args.bin, msgs, name))
        sections[-1].report()
    print("(b) binary encodes, py2p decodes")
    for name in METHODS:
        sections.append(check_encode(args.bin, msgs, name))
        sections[-1].report()
    print("(c) garbage lines between valid frames")
    sections.append(check_garbage(args.bin, rng))
    sections[-1].report()

    passed = sum(s.passed for s in sections)
    failed = sum(s.failed for s in sections)
    print(f"({timer.monotonic() - started:.1f} s)")
    print(f"crosscheck: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
