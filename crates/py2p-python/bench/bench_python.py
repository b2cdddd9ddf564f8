"""The Python-level benchmark of py2p_rs against py2p 0.5.607: one Python program, run on
either package. Two nodes in one process; one broadcasts N messages, the other counts them in
a handler; the time is from the first send to the handler seeing the last message.

    python bench_python.py --impl py2p_rs|py2p [--messages N] [--runs R] [--json FILE]

Prints (and writes as JSON) the messages per second of each run and the best of them.
"""

import argparse
import importlib
import json
import socket
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_once(mesh, n, payload):
    receiver = mesh.mesh_socket('127.0.0.1', free_port())
    sender = mesh.mesh_socket('127.0.0.1', free_port())
    try:
        sender.connect('127.0.0.1', receiver.out_addr[1])
        if not wait_for(lambda: len(receiver.routing_table) == 1 and
                        len(sender.routing_table) == 1, 30):
            raise RuntimeError("the nodes did not connect")
        count = [0]
        done = threading.Event()

        def counter(msg, handler):
            count[0] += 1
            if count[0] == n:
                done.set()
            return True

        receiver.register_handler(counter)
        start = time.perf_counter()
        for _ in range(n):
            sender.send(payload)
        if not done.wait(600):
            raise RuntimeError("only %d of %d messages arrived" % (count[0], n))
        elapsed = time.perf_counter() - start
        return {"messages": n, "received": count[0], "seconds": elapsed,
                "msgs_per_sec": n / elapsed}
    finally:
        sender.close()
        receiver.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=["py2p_rs", "py2p"])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payload", type=int, default=64, help="bytes per message")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    mesh = importlib.import_module(args.impl + ".mesh")
    payload = b"x" * args.payload
    runs = []
    for i in range(args.runs):
        r = run_once(mesh, args.messages, payload)
        print("%s run %d: %d messages in %.3f s: %.0f msg/s"
              % (args.impl, i + 1, r["messages"], r["seconds"], r["msgs_per_sec"]),
              flush=True)
        runs.append(r)
    result = {"impl": args.impl, "messages": args.messages, "payload": args.payload,
              "python": sys.version.split()[0], "runs": runs,
              "best_msgs_per_sec": max(r["msgs_per_sec"] for r in runs)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print("%s best: %.0f msg/s" % (args.impl, result["best_msgs_per_sec"]))


if __name__ == "__main__":
    main()
