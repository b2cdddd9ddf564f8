"""The Python-level benchmark of py2p_rs against py2p 0.5.607: one Python program, run on
either package. Two nodes in one process; one broadcasts N messages, the other counts them in
a handler; the time is from the first send to the handler seeing the last message.

    python bench_python.py --impl py2p_rs|py2p [--messages N] [--runs R] [--window W]
                           [--json FILE]

Prints (and writes as JSON) the messages per second of each run and the best of the runs
that counted every message (a run that loses messages is reported as such).
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


def run_once(mesh, n, payload, window, patience):
    receiver = mesh.mesh_socket('127.0.0.1', free_port())
    sender = mesh.mesh_socket('127.0.0.1', free_port())
    try:
        sender.connect('127.0.0.1', receiver.out_addr[1])
        if not wait_for(lambda: len(receiver.routing_table) == 1 and
                        len(sender.routing_table) == 1, 30):
            raise RuntimeError("the nodes did not connect")
        count = [0]
        # With a window, the sender keeps at most `window` messages uncounted (py2p writes a
        # frame with one `sock.send`, which under a flood can write part of it).
        target = [n]
        progress = threading.Event()

        def counter(msg, handler):
            count[0] += 1
            if count[0] >= target[0]:
                progress.set()
            return True

        receiver.register_handler(counter)
        # Each message differs (its number in front): a broadcast's id hashes its payload and
        # its second, and a repeated id is dropped as already seen.
        messages = [b"%08d" % i + payload[8:] for i in range(n)]
        start = time.perf_counter()
        complete = True
        for sent, m in enumerate(messages, 1):
            sender.send(m)
            if sent == n or (window and sent % window == 0):
                # Wait for the window before this one (for everything, at the end).
                target[0] = n if sent == n else sent - window
                progress.clear()
                if count[0] < target[0] and not progress.wait(patience):
                    complete = False
                    break
        elapsed = time.perf_counter() - start
        if complete and count[0] != n:
            raise RuntimeError("%d messages counted, %d sent" % (count[0], n))
        return {"messages": n, "received": count[0], "seconds": elapsed,
                "complete": complete, "msgs_per_sec": n / elapsed if complete else None}
    finally:
        sender.close()
        receiver.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=["py2p_rs", "py2p"])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payload", type=int, default=64, help="bytes per message")
    parser.add_argument("--window", type=int, default=0,
                        help="most messages in flight (0: no limit)")
    parser.add_argument("--patience", type=float, default=30.0,
                        help="seconds without the last message before a run counts as "
                             "having lost messages")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    mesh = importlib.import_module(args.impl + ".mesh")
    payload = b"x" * args.payload
    runs = []
    for i in range(args.runs):
        r = run_once(mesh, args.messages, payload, args.window, args.patience)
        if r["complete"]:
            print("%s run %d: %d messages in %.3f s: %.0f msg/s"
                  % (args.impl, i + 1, r["messages"], r["seconds"], r["msgs_per_sec"]),
                  flush=True)
        else:
            print("%s run %d: LOST MESSAGES: %d of %d counted"
                  % (args.impl, i + 1, r["received"], r["messages"]), flush=True)
        runs.append(r)
    complete = [r["msgs_per_sec"] for r in runs if r["complete"]]
    result = {"impl": args.impl, "messages": args.messages, "payload": args.payload,
              "window": args.window, "python": sys.version.split()[0], "runs": runs,
              "best_msgs_per_sec": max(complete) if complete else None,
              "incomplete_runs": len(runs) - len(complete)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print("%s best: %s msg/s, %d of %d runs lost messages"
          % (args.impl, result["best_msgs_per_sec"], result["incomplete_runs"], len(runs)))


if __name__ == "__main__":
    main()
