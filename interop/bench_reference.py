#!/usr/bin/env python3
"""Reference timings of py2p 0.5.607's message codec, for `cargo xtask bench`.

Times, for a 200-byte and a 64 KiB payload and for no compression and each of
py2p's compressions, the same operations as crates/py2p-wire/benches/codec.rs:

- encode/<size>/<method>: InternalMessage(b"\\x00", sender, [b"\\x00", payload],
  compression=[flag], timestamp=t).string
- decode/<size>/<method>: InternalMessage.feed_string(frame, compressions=[flag])
- floor/<size>: sha384 of the payload and base-58 time, then base-58 of the
  digest (py2p's message id)

- encode_size/<size>/<method>, decode_size/<size>/<method>: encode and decode against the
  payload size, 16B, 256B, 4KiB, 64KiB and 1MiB (--quick: 16B, 4KiB and 1MiB), with
  shorter repetitions.

Payloads are byte-for-byte those of the Rust benchmark (same xorshift64
generator). Each operation is timed timeit-style: the loop count is calibrated
so that one repetition lasts at least a minimum time, then several
repetitions are run; the result is the median of the per-operation times.

Prints JSON on stdout: {"py2p": version, "python": version,
"implementation": name, "unit": "seconds/op", "results": {id: seconds}}.
Progress goes to stderr.
"""

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time

from py2p import base
from py2p.base import InternalMessage, flags

SENDER = b"2GYdwPhgnAvHdrDozHeNL3JPHeMXpsK4j7i9MDgRg2oNbsHhaNWZGNkrSvvJotRa4KNQ6A"
TIME = 1_700_000_000
SIZES = [("200B", 200), ("64KiB", 64 * 1024)]
WORDS = [
    "peer", "message", "the", "of", "network", "broadcast", "py2p", "node",
    "whisper", "and", "compression", "to", "a", "socket", "handshake", "id",
]
CURVE_SIZES = [("16B", 16), ("256B", 256), ("4KiB", 4 << 10), ("64KiB", 64 << 10),
               ("1MiB", 1 << 20)]
QUICK_CURVE_SIZES = ("16B", "4KiB", "1MiB")
METHODS = [
    ("none", None),
    ("snappy", flags.snappy),
    ("zlib", flags.zlib),
    ("gzip", flags.gzip),
    ("bz2", flags.bz2),
    ("lzma", flags.lzma),
]
MASK = (1 << 64) - 1


def payload(length):
    """The deterministic payload of the Rust benchmark (see codec.rs)."""
    x = 0x9E3779B97F4A7C15
    out = bytearray()
    while len(out) < length:
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        if x & 1 == 0:
            out += WORDS[(x >> 8) % len(WORDS)].encode() + b" "
        else:
            out += x.to_bytes(8, "big")
    return bytes(out[:length])


def measure(fn, min_time, repeat):
    """Median seconds per call of fn(), timeit-style."""
    number = 1
    while True:  # calibrate like timeit.Timer.autorange
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        number *= 2 if elapsed > min_time / 10 else 10
    per_op = [elapsed / number]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        per_op.append((time.perf_counter() - start) / number)
    return statistics.median(per_op)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter repetitions, fewer of them")
    parser.add_argument("--only", default="",
                        help="run only ids containing this text (several texts separated "
                             "by commas: ids containing any of them)")
    parser.add_argument("--part", choices=("base", "curve", "all"), default="all",
                        help="base: encode/decode/floor at 200B and 64KiB; curve: the size "
                             "curves (encode_size, decode_size); all: both")
    args = parser.parse_args()
    min_time, repeat = (0.05, 3) if args.quick else (0.2, 7)

    missing = [name for name, flag in METHODS
               if flag is not None and flag not in base.compression]
    if missing:
        sys.exit("py2p lacks compression methods %s (is python-snappy installed?)"
                 % ", ".join(missing))

    results = {}

    def record(op_id, fn, timing=(min_time, repeat)):
        if not any(part in op_id for part in args.only.split(",")):
            return
        results[op_id] = measure(fn, *timing)
        print("%-26s %12.3f us" % (op_id, results[op_id] * 1e6), file=sys.stderr)

    def codec(size_name, size, encode_id, decode_id, timing=(min_time, repeat)):
        packets = [b"\x00", payload(size)]
        for method_name, flag in METHODS:
            compression = [flag] if flag is not None else []

            def encode(compression=compression, packets=packets):
                return InternalMessage(b"\x00", SENDER, packets,
                                       compression=compression,
                                       timestamp=TIME).string

            frame = encode()
            back = InternalMessage.feed_string(frame, compressions=compression)
            assert back.payload == tuple(packets), (size_name, method_name)

            def decode(frame=frame, compression=compression):
                return InternalMessage.feed_string(frame, compressions=compression)

            record("%s/%s/%s" % (encode_id, size_name, method_name), encode, timing)
            record("%s/%s/%s" % (decode_id, size_name, method_name), decode, timing)
        return packets

    for size_name, size in SIZES if args.part != "curve" else ():
        packets = codec(size_name, size, "encode", "decode")

        time_58 = base.to_base_58(TIME)

        def floor(packets=packets, time_58=time_58):
            digest = hashlib.sha384(b"".join(packets) + time_58)
            return base.to_base_58(int(digest.hexdigest(), 16))

        record("floor/%s" % size_name, floor)

    # The size curves: shorter repetitions (the 1 MiB cases take up to a second each).
    curve_timing = (0.02, 3) if args.quick else (0.1, 5)
    for size_name, size in CURVE_SIZES if args.part != "base" else ():
        if args.quick and size_name not in QUICK_CURVE_SIZES:
            continue
        codec(size_name, size, "encode_size", "decode_size", curve_timing)

    json.dump({
        "py2p": base.version,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "unit": "seconds/op",
        "results": results,
    }, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
