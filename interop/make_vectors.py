#!/usr/bin/env python3
"""Write golden wire vectors for the Rust py2p-wire crate, using the real py2p.

How to run (from the repository root, with the interop venv, see
interop/requirements.txt):

    python interop/make_vectors.py            # writes crates/py2p-wire/tests/data/golden.json
    python interop/make_vectors.py -o FILE    # write somewhere else

Needs py2p==0.5.607 and python-snappy (the snappy vectors and the
``compression_json`` value depend on snappy being importable; the script
refuses to run without it). The output is deterministic: every random value
comes from a fixed seed, and every compressor used (snappy raw, zlib/gzip
via zlib with mtime 0, bz2, xz) is deterministic for a given library version.

Every vector is produced by py2p itself and then checked against py2p again
(round trip through ``InternalMessage.feed_string``); every entry of
``bad_frames`` is checked to make py2p raise, both with no compression
negotiated and with every method negotiated, so a decoder may try either.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import uuid
from pathlib import Path

try:
    import snappy  # noqa: F401  (py2p picks it up at import time)
except ImportError:  # pragma: no cover
    sys.exit("make_vectors.py: python-snappy is required (pip install -r interop/requirements.txt)")

from py2p import base
from py2p.base import InternalMessage, flags, pack_value, protocol, to_base_58

SEED = 0x50793250  # "Py2P"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "crates" / "py2p-wire" / "tests" / "data" / "golden.json"

# Compression methods by the names used in golden.json and by the CLI.
METHODS = {
    "snappy": flags.snappy,
    "zlib": flags.zlib,
    "gzip": flags.gzip,
    "bz2": flags.bz2,
    "lzma": flags.lzma,
}

# A "current-like" fixed time (2026-09-21T12:53:20Z), so output never depends on the clock.
NOW = 1_790_000_000


# --------------------------------------------------------------------------- helpers

def make_message(msg_type: bytes, sender: bytes, payload: list[bytes], time: int,
                 compression: bytes | None = None) -> InternalMessage:
    """Build a py2p InternalMessage with an exact time.

    py2p's constructor does ``self.time = timestamp or getUTC()``, so time 0
    cannot be passed in; feed_string sets ``msg.time`` afterwards, and so do we.
    """
    msg = InternalMessage(msg_type, sender, payload,
                          compression=[compression] if compression else None,
                          timestamp=time or 1)
    msg.time = time
    return msg


def sha384_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha384(data).digest(), "big")


def id_digest(payload: list[bytes], time: int) -> bytes:
    """The raw sha384 digest behind a message id."""
    return hashlib.sha384(b"".join(payload) + to_base_58(time)).digest()


def frame_from_packets(packets: list[bytes], trailer: bytes = b"") -> bytes:
    """Assemble a frame by hand (len32 || packets), for malformed cases."""
    body = b"".join(pack_value(4, len(p)) + p for p in packets) + trailer
    return pack_value(4, len(body)) + body


def check_decodes(frame: bytes, msg: InternalMessage, method: bytes | None) -> None:
    """Assert that py2p decodes `frame` back to `msg`'s fields."""
    got = InternalMessage.feed_string(frame, compressions=[method] if method else [])
    assert not got.compression_fail, "py2p could not decompress its own frame"
    assert (got.msg_type, got.sender, got.payload, got.time, got.id) == \
        (msg.msg_type, msg.sender, msg.payload, msg.time, msg.id)


def py2p_rejects(frame: bytes) -> bool:
    """True when py2p raises on `frame` with no compression AND with every method."""
    for comps in ([], list(base.compression)):
        try:
            InternalMessage.feed_string(frame, compressions=comps)
            return False
        except Exception:  # py2p raises AssertionError/IndexError/ValueError/...
            pass
    return True


def py2p_node_id(rng: random.Random, addr: tuple[str, int], prot: protocol) -> bytes:
    """A node id made exactly the way base_socket.__init__ makes one, with a seeded salt."""
    salt = str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode()
    return to_base_58(sha384_int(str(addr).encode() + prot.id + salt))


# --------------------------------------------------------------------------- sections

def base58_ints(rng: random.Random) -> list[dict]:
    fixed = [0, 1, 57, 58, 59, 58**2 - 1, 58**2, 2**32 - 1, 2**32, 58**11 - 1, 58**11,
             2**64 - 1, 2**64, 2**128, 2**384 - 1, 2**384]
    # ~30 random ints with an exact bit length, from tiny to larger than any digest.
    bit_lengths = [1, 2, 3, 5, 6, 7, 8, 12, 16, 24, 31, 32, 33, 48, 63, 64, 65, 96,
                   127, 128, 129, 160, 200, 255, 256, 257, 300, 383, 384, 385, 512, 1024]
    randoms = [rng.getrandbits(b) | (1 << (b - 1)) for b in bit_lengths]
    return [{"int": str(i), "text": to_base_58(i).decode()} for i in fixed + randoms]


def base58_digests() -> list[dict]:
    """sha384 digests of counter strings: a few ordinary ones, then ones with leading zero bytes."""
    ordinary, zero1, zero2 = [], [], []
    counter = 0
    while len(zero1) < 5 or len(zero2) < 2:
        digest = hashlib.sha384(b"py2p-golden-%d" % counter).digest()
        if digest[:2] == b"\0\0":
            zero2.append(digest)
        elif digest[0] == 0 and len(zero1) < 5:
            zero1.append(digest)
        elif counter < 6:
            ordinary.append(digest)
        counter += 1
    out = []
    for digest in ordinary + zero1 + zero2:
        out.append({"hex": digest.hex(),
                    "text": to_base_58(int.from_bytes(digest, "big")).decode()})
    return out


def protocols() -> list[dict]:
    cases = [("mesh", "Plaintext"), ("sync1", "Plaintext"), ("sync0", "Plaintext"),
             ("chord", "Plaintext"), ("", "Plaintext"), ("mesh", "SSL"),
             ("réseau-網絡-🛰", "Plaintext"), ("sync1", "SSL")]
    return [{"subnet": s, "encryption": e, "id": protocol(s, e).id.decode()} for s, e in cases]


def find_zero_id_payloads(prefix: bytes, time: int, zero_bytes: int, count: int) -> list[bytes]:
    """Search payload packets whose message-id digest starts with `zero_bytes` zero bytes."""
    found, n = [], 0
    while len(found) < count:
        packet = prefix + b"-%d" % n
        digest = id_digest([packet], time)
        if digest[:zero_bytes] == b"\0" * zero_bytes and \
                (zero_bytes > 1 or digest[1] != 0):
            found.append(packet)
        n += 1
    return found


def message_cases(rng: random.Random) -> list[tuple]:
    """(name, msg_type, sender, payload, time, include_uncompressed_frame) tuples."""
    mesh = protocol("mesh", "Plaintext")
    # A realistic 65-character node id (only ~11 % of py2p ids are that short; most are 66).
    while True:
        node65 = py2p_node_id(rng, ("127.0.0.1", 4444), mesh)
        if len(node65) == 65:
            break
    while True:
        node66 = py2p_node_id(rng, ("10.0.0.7", 44565), mesh)
        if len(node66) == 66:
            break
    out_addr = json.dumps(["127.0.0.1", 4444]).encode()
    peer_list = json.dumps([[["10.0.0.7", 44565], node66.decode()]]).encode()
    B, W = flags.broadcast, flags.whisper

    cases = [
        ("empty_payload_list", B, node65, [], NOW),
        ("one_empty_packet", B, node65, [b""], NOW),
        ("empty_packets_mixed", W, node66, [b"", b"a", b"", b""], NOW),
        ("one_200_byte_packet", B, node65, [rng.randbytes(200)], NOW),
        ("several_packets", W, node65,
         [rng.randbytes(n) for n in (1, 7, 64, 255, 256, 1000, 4096)], NOW),
        ("binary_all_byte_values", B, node65,
         [bytes(range(256)), bytes(reversed(range(256)))], NOW),
        ("utf8_text", W, node66,
         ["héllo wörld".encode(), "日本語のテキスト".encode(), "emoji 🎉🚀".encode(),
          "Ελληνικά, русский, עברית".encode()], NOW),
        ("time_0", B, node65, [B, b"time zero"], 0),
        ("time_1", B, node65, [B, b"time one"], 1),
        ("time_57", B, node65, [B, b"time 57"], 57),
        ("time_58", B, node65, [B, b"time 58"], 58),
        ("time_2_32", B, node65, [B, b"time 2**32"], 2**32),
        ("time_2_40", B, node65, [B, b"time 2**40"], 2**40),
        ("time_now", B, node65, [B, b"current-like time"], NOW),
        # Messages as a py2p mesh node really sends them.
        ("mesh_handshake", W, node65,
         [flags.handshake, node65, mesh.id, out_addr, base.json_compressions.encode()], NOW),
        ("mesh_peers", W, node65, [flags.peers, peer_list], NOW),
        ("mesh_broadcast", B, node66, [B, b"hello, mesh"], NOW),
        ("mesh_whisper", W, node66, [W, b"psst"], NOW),
        ("mesh_request_peers", B, node65, [flags.request, b"*"], NOW),
        ("renegotiate_compression", flags.renegotiate, node65,
         [flags.compression, json.dumps(["\x13", "\x11"]).encode()], NOW),
        ("renegotiate_resend", flags.renegotiate, node65, [flags.resend], NOW),
        ("sync_store", B, node66, [flags.store, b"key", b"value"], NOW),
        ("sync_delete", B, node66, [flags.store, b"key", b""], NOW),
        ("multi_byte_msg_type", b"custom-type", b"\x00\x01\x02", [b"x"], 12345),
        ("empty_msg_type_and_sender", b"", b"", [b"payload"], 99),
    ]
    # Ids whose sha384 digest begins with 0x00 (and one with 0x0000): a byte-oriented
    # (Bitcoin-style) base-58 would add a leading '1' to these.
    for i, packet in enumerate(find_zero_id_payloads(b"zero-id", NOW, 1, 3)):
        cases.append((f"id_digest_leading_zero_{i}", B, node65, [packet], NOW))
    for packet in find_zero_id_payloads(b"zero-id-2", NOW, 2, 1):
        cases.append(("id_digest_two_leading_zeros", B, node65, [packet], NOW))
    # Big packets (kept in the file with their uncompressed frame).
    cases.append(("packet_100KiB_random", B, node65, [rng.randbytes(100 * 1024)], NOW))
    text = b"".join(b"line %06d: the quick brown fox jumps over the lazy dog\n" % i
                    for i in range(256 * 1024 // 56 + 1))[: 256 * 1024]
    cases.append(("packet_256KiB_compressible", B, node65, [text], NOW))
    return cases


def messages(rng: random.Random) -> list[dict]:
    out = []
    for name, msg_type, sender, payload, time in message_cases(rng):
        msg = make_message(msg_type, sender, payload, time)
        frame = msg.string
        check_decodes(frame, msg, None)
        compressed = {}
        for mname, flag in METHODS.items():
            cframe = make_message(msg_type, sender, payload, time, flag).string
            check_decodes(cframe, msg, flag)
            compressed[mname] = cframe.hex()
        out.append({
            "name": name,
            "msg_type": msg.msg_type.hex(),
            "sender": msg.sender.hex(),
            "time": msg.time,
            "payload": [p.hex() for p in msg.payload],
            "id": msg.id.decode(),
            "frame": frame.hex(),
            "compressed": compressed,
        })
    return out


def bad_frames() -> list[dict]:
    """Frames py2p's feed_string rejects, each checked below."""
    t58 = to_base_58(NOW)
    payload = [flags.broadcast, b"hello"]
    good = make_message(flags.broadcast, b"sender", payload, NOW)
    good_frame, body = good.string, good.string[4:]
    good_id = good.id

    def mid(payload, time58):  # id over an arbitrary time_58 text
        return to_base_58(int.from_bytes(hashlib.sha384(b"".join(payload) + time58).digest(), "big"))

    forged = bytearray(good_id)
    forged[-1] = ord("2") if forged[-1] != ord("2") else ord("3")
    zero_payload = find_zero_id_payloads(b"zero-id", NOW, 1, 1)
    zero_digest = id_digest(zero_payload, NOW)
    zlib_frame = make_message(flags.broadcast, b"sender", payload, NOW, flags.zlib).string
    zbody = bytearray(zlib_frame[4:])
    zbody[-1] ^= 0xFF  # break the adler32 trailer, and so the whole zlib stream

    cases = [
        ("forged_checksum", frame_from_packets([b"\x00", b"sender", bytes(forged), t58] + payload),
         "id packet differs from base58(sha384(payload || time_58)) in its last character"),
        ("id_for_other_time", frame_from_packets([b"\x00", b"sender", good_id, to_base_58(NOW + 1)] + payload),
         "time_58 changed after the id was computed"),
        ("id_for_other_payload", frame_from_packets([b"\x00", b"sender", good_id, t58, payload[0], b"hellO"]),
         "payload changed after the id was computed"),
        ("id_bitcoin_style_leading_one",
         frame_from_packets([b"\x00", b"s", b"1" + mid(zero_payload, t58), t58] + zero_payload),
         "digest %s.. starts with 0x00; a byte-oriented base58 adds a leading '1', py2p does not"
         % zero_digest[:2].hex()),
        ("id_empty", frame_from_packets([b"\x00", b"sender", b"", t58] + payload), "empty id packet"),
        ("id_with_trailing_space", frame_from_packets([b"\x00", b"sender", good_id + b" ", t58] + payload),
         "id packet has a trailing space"),
        ("length_header_one_too_big", pack_value(4, len(body) + 1) + body,
         "len32 announces one byte more than the body has"),
        ("length_header_one_too_small", pack_value(4, len(body) - 1) + body,
         "len32 announces one byte less than the body has"),
        ("length_header_zero", pack_value(4, 0) + body, "len32 is 0 but a body follows"),
        ("length_header_4GiB", b"\xff\xff\xff\xff" + body, "len32 announces 4 GiB - 1 bytes"),
        ("truncated_frame", good_frame[:-3], "frame cut 3 bytes short of its header's length"),
        ("header_only", good_frame[:4], "only the len32 header"),
        ("empty_frame", b"", "no bytes at all (py2p: empty body, no packets)"),
        ("short_frame_3_bytes", b"\x00\x00\x00", "3 bytes: py2p reads len32=0 and finds no packets"),
        ("zero_length_body", pack_value(4, 0), "len32=0, empty body: no packets"),
        ("one_packet", frame_from_packets([b"\x00"]), "only msg_type"),
        ("two_packets", frame_from_packets([b"\x00", b"sender"]), "msg_type and sender only"),
        ("three_packets", frame_from_packets([b"\x00", b"sender", good_id]), "no time_58 packet"),
        ("time58_char_zero", frame_from_packets([b"\x00", b"s", mid(payload, b"0A"), b"0A"] + payload),
         "time_58 contains '0', not in the base-58 alphabet (id computed over the same text)"),
        ("time58_char_capital_O", frame_from_packets([b"\x00", b"s", mid(payload, b"AOA"), b"AOA"] + payload),
         "time_58 contains 'O'"),
        ("time58_char_capital_I", frame_from_packets([b"\x00", b"s", mid(payload, b"I"), b"I"] + payload),
         "time_58 contains 'I'"),
        ("time58_char_lower_l", frame_from_packets([b"\x00", b"s", mid(payload, b"l"), b"l"] + payload),
         "time_58 contains 'l'"),
        ("time58_char_plus", frame_from_packets([b"\x00", b"s", mid(payload, b"+"), b"+"] + payload),
         "time_58 contains '+'"),
        ("time58_non_ascii", frame_from_packets([b"\x00", b"s", mid(payload, "é".encode()), "é".encode()] + payload),
         "time_58 is UTF-8 text outside the alphabet"),
        ("time58_invalid_utf8", frame_from_packets([b"\x00", b"s", mid(payload, b"\xff"), b"\xff"] + payload),
         "time_58 is not even UTF-8"),
        ("time58_leading_one_literal_id",
         frame_from_packets([b"\x00", b"s", mid(payload, b"1" + t58), b"1" + t58] + payload),
         "time_58 has a leading '1' and the id was computed over that literal text; py2p "
         "recomputes the id from the canonical time text, so the checksum fails"),
        ("time58_empty_literal_id", frame_from_packets([b"\x00", b"s", mid(payload, b""), b""] + payload),
         "empty time_58 with the id over the empty text (py2p reads time 0 and hashes '1')"),
        ("inner_length_overruns_body",
         pack_value(4, 10) + pack_value(4, 1000) + b"\x00\x01\x02\x03\x04\x05",
         "first packet header announces 1000 bytes in a 10-byte body: one short packet only"),
        ("corrupt_zlib_body", pack_value(4, len(zbody)) + bytes(zbody),
         "zlib-compressed frame with its last byte flipped: fails every decompressor, "
         "and the raw body is not a valid packet run"),
    ]
    out = []
    for name, frame, why in cases:
        assert py2p_rejects(frame), f"py2p accepts bad frame {name!r}"
        out.append({"name": name, "frame": frame.hex(), "why": why})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    assert base.version == "0.5.607", base.version
    assert base.compression[0] == flags.snappy, "py2p did not pick up python-snappy"
    rng = random.Random(SEED)
    doc = {
        "generator": "py2p 0.5.607 via interop/make_vectors.py",
        "base58": base58_ints(rng),
        "base58_bytes": base58_digests(),
        "protocols": protocols(),
        "compression_json": base.json_compressions,
        "messages": messages(rng),
        "bad_frames": bad_frames(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1e6:.2f} MB): "
          + ", ".join(f"{len(v)} {k}" for k, v in doc.items() if isinstance(v, list)))


if __name__ == "__main__":
    main()
