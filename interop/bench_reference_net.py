#!/usr/bin/env python3
"""Reference network timings of py2p 0.5.607, for `cargo xtask bench` (network section).

The same measures as crates/py2p/benches/network.rs, on loopback, nodes in py2p's default
configuration (two nodes negotiate snappy), fresh nodes for every run:

- broadcast/N: two mesh_socket nodes in this process; B broadcasts N 200-byte messages
  (B.send(payload)) to A; the time from the first send until a handler registered on A has
  seen all N (checked in order). py2p has no blocking recv: a handler, run by A's daemon
  thread as each message arrives, is the earliest point a program can see a message.
- cli: two `interop/py_node.py mesh` processes (real py2p behind our CLI's line protocol);
  M lines written to B's stdin as fast as the pipe takes them; the time until A has printed
  M `message` events.
- latency: one message at a time from A to B (send, wait for B's handler, repeat): p50, p99.
- sync: five sync_socket nodes (four connect to node 0, then they mesh by peer lists);
  node 1 sets K distinct keys; the time until every node holds all K.

py2p loses messages under load (its connections use sock.send() without checking how much
was written, so a full socket buffer truncates a frame and desynchronises the stream): a
run that makes no progress for STALL seconds stops and reports what was delivered
(`delivered`, and `complete_in_order` false) instead of hanging.

Each measure is repeated; medians are reported. Progress goes to stderr; the last line of
stdout is one flat JSON object (keys like `broadcast.n2000.us_per_msg`).
"""

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time

# py2p prints with print() to sys.stdout: keep our stdout for the JSON result only.
_OUT = sys.stdout
sys.stdout = sys.stderr

import py2p  # noqa: E402
import py2p.base  # noqa: E402
import py2p.mesh  # noqa: E402
import py2p.sync  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PAYLOAD = 200
STALL = 2.0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    """A port free right now (py2p needs a concrete port for its id)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def payload(seq):
    """200 bytes: the sequence number in 10 decimal digits, a space, then letters
    (the bytes of network.rs)."""
    head = b"%010d " % seq
    tail = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(len(head), PAYLOAD))
    return head + tail


def seq_of(data):
    try:
        return int(data[:10])
    except (ValueError, TypeError):
        return None


def live_peers(sock):
    """Peers whose handshake is complete (handler.id set)."""
    return sum(1 for h in tuple(sock.routing_table.values())
               if getattr(h, "id", None) is not None)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError("timeout waiting for " + what)
        time.sleep(0.005)


def close_all(*socks):
    for s in socks:
        try:
            s.close()
        except Exception as e:  # pragma: no cover - best effort
            log("close: %s" % e)


def mesh_node():
    for _ in range(5):
        try:
            return py2p.mesh.mesh_socket("127.0.0.1", free_port())
        except OSError:  # the free port was taken meanwhile
            continue
    raise RuntimeError("cannot bind a mesh node")


def mesh_pair():
    a = mesh_node()
    b = mesh_node()
    b.connect("127.0.0.1", a.out_addr[1])
    wait_until(lambda: live_peers(a) >= 1 and live_peers(b) >= 1, 20, "handshake")
    time.sleep(0.05)  # let the peers lists that follow the handshake pass
    return a, b


class Collector(object):
    """A py2p handler counting broadcasts in order on the receiving node's daemon thread."""

    def __init__(self, n):
        self.__name__ = "collector"  # py2p's handle_msg logs handler.__name__
        self.n = n
        self.count = 0
        self.in_order = True
        self.end = None
        self.last = None
        self.done = threading.Event()

    def __call__(self, msg, handler):
        packets = msg.packets
        if packets[0] != py2p.base.flags.broadcast:
            return None
        if len(packets) != 2 or seq_of(packets[1]) != self.count:
            self.in_order = False
        self.count += 1
        self.last = time.perf_counter()
        if self.count >= self.n:
            self.end = self.last
            self.done.set()
        return True


def wait_progress(get, target, done=None):
    """Waits until get() >= target, giving up after STALL seconds without progress.
    Returns (reached, perf_counter() when get() last changed)."""
    last, since, when = -1, time.monotonic(), time.perf_counter()
    while True:
        cur = get()
        if cur >= target:
            return True, time.perf_counter()
        if cur != last:
            last, since, when = cur, time.monotonic(), time.perf_counter()
        elif time.monotonic() - since > STALL:
            return False, when
        if done is not None:
            done.wait(0.01)
        else:
            time.sleep(0.0005)


def broadcast_run(n):
    a, b = mesh_pair()
    try:
        col = Collector(n)
        a.register_handler(col)
        start = time.perf_counter()
        for i in range(n):
            b.send(payload(i))
        complete, _ = wait_progress(lambda: col.count, n, col.done)
        end = col.last if col.last is not None else start
        return end - start, col.count, col.in_order and complete
    finally:
        close_all(a, b)


def read_until(stream, needle, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = stream.readline()
        if not line:
            raise RuntimeError("node exited before printing %s" % needle)
        if needle in line:
            return line
    raise RuntimeError("timeout waiting for %s" % needle)


def spawn_py_node(connect=None):
    cmd = [sys.executable, os.path.join(HERE, "py_node.py"), "mesh", "--bind", "127.0.0.1:0"]
    if connect:
        cmd += ["--connect", connect]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, bufsize=1 << 16)


def stop_node(p):
    try:
        p.stdin.write(b"/quit\n")
        p.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cli_run(m):
    a = spawn_py_node()
    b = None
    try:
        ready = json.loads(read_until(a.stdout, b'"ready"'))
        b = spawn_py_node(ready["addr"])
        read_until(b.stdout, b'"ready"')
        read_until(b.stdout, b'"connected"')
        read_until(a.stdout, b'"connected"')
        state = {"count": 0, "in_order": True, "last": None}
        done = threading.Event()

        def reader():
            for line in iter(a.stdout.readline, b""):
                if b'"event": "message"' not in line:
                    continue
                ev = json.loads(line)
                if seq_of(ev["packets"][0].encode()) != state["count"]:
                    state["in_order"] = False
                state["count"] += 1
                state["last"] = time.perf_counter()
                if state["count"] >= m:
                    break
            done.set()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        lines = b"".join(payload(i)[:-1] + b"\n" for i in range(m))
        start = time.perf_counter()

        def writer():
            try:
                b.stdin.write(lines)
                b.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
        threading.Thread(target=writer, daemon=True).start()
        complete, _ = wait_progress(lambda: state["count"], m, done)
        end = state["last"] if state["last"] is not None else start
        return end - start, state["count"], state["in_order"] and complete
    finally:
        stop_node(a)
        if b is not None:
            stop_node(b)


def latency_run(samples, warmup=10):
    a, b = mesh_pair()
    try:
        arrived = threading.Event()
        box = {}

        def on_msg(msg, handler):
            if msg.packets[0] == py2p.base.flags.broadcast:
                box["t"] = time.perf_counter()
                box["seq"] = seq_of(msg.packets[1])
                arrived.set()
                return True
        b.register_handler(on_msg)
        out = []
        for i in range(samples + warmup):
            arrived.clear()
            t = time.perf_counter()
            a.send(payload(i))
            if not arrived.wait(10):
                raise RuntimeError("latency: message %d lost" % i)
            if box["seq"] != i:
                raise RuntimeError("latency: unexpected message")
            if i >= warmup:
                out.append((box["t"] - t) * 1e6)
        out.sort()
        return out
    finally:
        close_all(a, b)


def quantile(sorted_values, q):
    """The q quantile (0..1) of sorted values, nearest rank (as network.rs)."""
    rank = int(math.ceil(q * len(sorted_values)))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def sync_run(k):
    nodes = []
    try:
        for _ in range(5):
            for _ in range(5):
                try:
                    nodes.append(py2p.sync.sync_socket("127.0.0.1", free_port()))
                    break
                except OSError:
                    continue
        if len(nodes) != 5:
            raise RuntimeError("cannot bind sync nodes")
        for node in nodes[1:]:
            node.connect("127.0.0.1", nodes[0].out_addr[1])
        wait_until(lambda: live_peers(nodes[0]) >= 4, 20, "sync handshakes")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not all(live_peers(n) >= 4 for n in nodes):
            time.sleep(0.02)
        time.sleep(0.1)
        value = b"v" * 100
        start = time.perf_counter()
        for i in range(k):
            nodes[1][b"key%08d" % i] = value
        have = lambda: sum(min(len(n.data), k) for n in nodes)  # noqa: E731
        complete, when = wait_progress(have, 5 * k)
        # delivered: keys held, averaged over the five nodes
        return when - start, have() / 5.0, complete
    finally:
        close_all(*nodes)


def report_run(what, n, run):
    secs, delivered, ok = run
    log("%s: %.3fs, %d/%d delivered, %.1f us each%s"
        % (what, secs, delivered, n, secs * 1e6 / max(delivered, 1),
           "" if ok else "  INCOMPLETE OR OUT OF ORDER"))


def summarize(res, key, n, got):
    """Medians of runs (secs, delivered, complete_in_order). The time is over the complete
    runs when there are any; otherwise the cost per message is that of what was delivered
    (time to the last delivery / messages delivered)."""
    full = [g for g in got if g[2]]
    if full:
        secs = statistics.median(g[0] for g in full)
        per_msg = secs / n
    else:
        per_msg = statistics.median(g[0] / max(g[1], 1) for g in got)
        secs = per_msg * n
    res[key + ".runs"] = len(got)
    res[key + ".complete_runs"] = len(full)
    res[key + ".secs"] = round(secs, 6)
    res[key + ".msg_per_s"] = round(1 / per_msg) if per_msg > 0 else None
    res[key + ".us_per_msg"] = round(per_msg * 1e6, 3)
    res[key + ".delivered"] = statistics.median(g[1] for g in got)
    res[key + ".delivered_min"] = min(g[1] for g in got)
    res[key + ".complete_in_order"] = len(full) == len(got)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--only", default="",
                    help="comma-separated subset of broadcast,cli,latency,sync")
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    quick = args.quick
    res = {"quick": quick, "py2p": py2p.base.version,
           "python": platform.python_version(),
           "implementation": platform.python_implementation()}
    started = time.perf_counter()

    def wants(name):
        return not only or name in only

    if wants("broadcast"):
        for n in (500, 2000):
            # More runs at 2000, where py2p often loses messages: more chances of complete ones.
            runs = {500: 3, 2000: 4}[n] if quick else {500: 5, 2000: 7}[n]
            got = []
            for r in range(runs):
                got.append(broadcast_run(n))
                report_run("broadcast n=%d run %d" % (n, r), n, got[-1])
            summarize(res, "broadcast.n%d" % n, n, got)

    if wants("cli"):
        m = 2000
        runs = 2 if quick else 3
        got = []
        for r in range(runs):
            got.append(cli_run(m))
            report_run("cli m=%d run %d" % (m, r), m, got[-1])
        res["cli.m"] = m
        summarize(res, "cli", m, got)

    if wants("latency"):
        samples, runs = 200, 3
        p50, p99 = [], []
        for r in range(runs):
            lat = latency_run(samples)
            p50.append(quantile(lat, 0.5))
            p99.append(quantile(lat, 0.99))
            log("latency 1 hop run %d: p50 %.1f us, p99 %.1f us" % (r, p50[-1], p99[-1]))
        res.update({"latency.samples": samples, "latency.runs": runs,
                    "latency.hop1.p50_us": round(statistics.median(p50), 1),
                    "latency.hop1.p99_us": round(statistics.median(p99), 1)})

    if wants("sync"):
        k = 200
        runs = 3 if quick else 5
        got = []
        for r in range(runs):
            got.append(sync_run(k))
            report_run("sync k=%d run %d" % (k, r), k, got[-1])
        res["sync.k"] = k
        summarize(res, "sync", k, got)
        res["sync.sets_per_s"] = res.pop("sync.msg_per_s")

    res["elapsed_s"] = round(time.perf_counter() - started, 1)
    _OUT.write(json.dumps(res) + "\n")
    _OUT.flush()
    sys.stderr.flush()
    # py2p's daemon threads are not daemonic; a socket whose close() failed would keep the
    # interpreter alive.
    os._exit(0)


if __name__ == "__main__":
    main()
