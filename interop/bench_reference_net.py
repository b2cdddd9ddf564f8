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
- mesh: meshes of n nodes in this process (every node connects to node 0, then they connect
  from peer lists); M broadcasts spread over all the nodes (broadcast i sent by node i mod n,
  the sends interleaved from the main thread); the time from the first send until every node
  has every broadcast it did not send, or until nothing arrived for STALL seconds; deliveries
  and duplicates (a broadcast seen twice by a node's handler, or its own coming back).
- conns: a mesh_socket hub in a fresh Python process (`--hub`); this process opens N raw TCP
  connections that each complete a py2p handshake and read everything the hub sends; the
  growth of the hub's VmRSS once idle (as network.rs measures ours).

py2p loses messages under load (its connections use sock.send() without checking how much
was written, so a full socket buffer truncates a frame and desynchronises the stream): a
run that makes no progress for STALL seconds stops and reports what was delivered
(`delivered`, and `complete_in_order` false) instead of hanging.

Each measure is repeated; medians are reported. Progress goes to stderr; the last line of
stdout is one flat JSON object (keys like `broadcast.n2000.us_per_msg`).
"""

import argparse
import hashlib
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


def settle_mesh(nodes, timeout=10.0, quiet=0.5):
    """Waits until no node's peer count changed for `quiet` seconds (at most `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        counts = [live_peers(n) for n in nodes]
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.02)
    return last


class MeshCollector(object):
    """A handler counting, on one node of a mesh run, first deliveries and duplicates."""

    def __init__(self, node_index, n, m, progress):
        self.__name__ = "mesh_collector"
        self.j, self.n, self.m = node_index, n, m
        self.seen = set()
        self.duplicates = 0
        self.progress = progress

    def __call__(self, msg, handler):
        packets = msg.packets
        if packets[0] != py2p.base.flags.broadcast or len(packets) != 2:
            return None
        seq = seq_of(packets[1])
        if seq is None or seq >= self.m:
            return None
        if seq % self.n == self.j or seq in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(seq)
            self.progress["count"] += 1
            self.progress["last"] = time.perf_counter()
        return True


def mesh_run(n, m):
    """One run: (secs to the last first delivery, delivered, expected, duplicates, links)."""
    nodes = []
    try:
        for _ in range(n):
            nodes.append(mesh_node())
        for k, node in enumerate(nodes[1:], 1):
            # One at a time: py2p listens with a backlog of 5 and connects with a timeout.
            node.connect("127.0.0.1", nodes[0].out_addr[1])
            wait_until(lambda: live_peers(nodes[0]) >= k, 20, "mesh handshakes")
        counts = settle_mesh(nodes)
        links = sum(counts) // 2
        progress = {"count": 0, "last": None}
        collectors = [MeshCollector(j, n, m, progress) for j in range(n)]
        for node, col in zip(nodes, collectors):
            node.register_handler(col)
        expected = m * (n - 1)
        start = time.perf_counter()
        for i in range(m):
            nodes[i % n].send(payload(i))
        wait_progress(lambda: progress["count"], expected)
        time.sleep(0.2)  # late duplicates
        end = progress["last"] if progress["last"] is not None else start
        return (end - start, progress["count"], expected,
                sum(c.duplicates for c in collectors), links)
    finally:
        close_all(*nodes)


def hub_main():
    """`--hub`: one mesh_socket; prints its port, then answers `peers` lines on stdin with
    its number of handshaken peers."""
    node = mesh_node()
    _OUT.write("%d\n" % node.out_addr[1])
    _OUT.flush()
    for line in sys.stdin:
        if line.strip() == "peers":
            _OUT.write("%d\n" % live_peers(node))
            _OUT.flush()
        elif line.strip() == "quit":
            break
    os._exit(0)


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def drain(clients):
    total = 0
    for c in clients:
        while True:
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not data:
                break
            total += len(data)
    return total


def conns_run(count):
    """A py2p hub in a fresh process with `count` handshaken raw connections: returns
    (VmRSS before, VmRSS after, peers reached)."""
    hub = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--hub"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    clients = []
    try:
        port = int(hub.stdout.readline())

        def peers():
            hub.stdin.write(b"peers\n")
            hub.stdin.flush()
            return int(hub.stdout.readline())

        prot_id = py2p.mesh.default_protocol.id
        now = py2p.base.getUTC()

        def client(i):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            cid = py2p.base.to_base_58(
                int(hashlib.sha384(b"bench client %d" % i).hexdigest(), 16))
            frame = py2p.base.InternalMessage(
                py2p.base.flags.whisper, cid,
                [py2p.base.flags.handshake, cid, prot_id, b'["127.0.0.1", 1]', b"[]"],
                timestamp=now).string
            c.sendall(frame)
            c.setblocking(False)
            return c

        def settle():
            quiet = 0
            while quiet < 5:
                quiet = quiet + 1 if drain(clients) == 0 else 0
                time.sleep(0.05)

        # The baseline is taken with one idle connection open (not counted), as ours is:
        # the first handshake's one-time costs are not the connections'.
        clients.append(client(count))
        wait_progress(lambda: (drain(clients), peers())[1], 1)
        settle()
        time.sleep(0.2)
        before = vm_rss(hub.pid)
        for i in range(count):
            clients.append(client(i))
            if i % 16 == 15:
                drain(clients)
                # py2p accepts with a backlog of 5: let it catch up.
                wait_progress(lambda: peers() + 0, i + 2 - 16)
        reached, _ = wait_progress(lambda: (drain(clients), peers())[1], count + 1)
        settle()
        after = vm_rss(hub.pid)
        return before, after, peers() - 1
    finally:
        for c in clients:
            c.close()
        try:
            hub.stdin.write(b"quit\n")
            hub.stdin.flush()
        except OSError:
            pass
        try:
            hub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()


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
                    help="comma-separated subset of broadcast,cli,latency,sync,mesh,conns")
    ap.add_argument("--hub", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hub:
        hub_main()
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

    if wants("mesh"):
        # py2p relays every broadcast from its one daemon thread per node, all nodes
        # sharing the interpreter: few messages, few nodes.
        # 32 and 64 nodes take 20 s and 45 s a run here: one run each, full mode only.
        m = 200
        sizes = (2, 4, 8) if quick else (2, 4, 8, 16, 32, 64)
        res["mesh.m"] = m
        for n in sizes:
            got = []
            for r in range(1 if quick or n > 16 else 3):
                try:
                    got.append(mesh_run(n, m))
                except Exception as e:  # noqa: BLE001 - reported in the results
                    log("mesh n=%d run %d: FAILED: %s" % (n, r, e))
                    res["mesh.n%d.error" % n] = str(e)
                    break
                secs, delivered, expected, dups, links = got[-1]
                log("mesh n=%d run %d: %.3fs, %d/%d delivered, %d duplicates, %d links"
                    % (n, r, secs, delivered, expected, dups, links))
            if not got:
                continue
            key = "mesh.n%d" % n
            full = [g for g in got if g[1] == g[2]]
            pick = full or got
            secs = statistics.median(g[0] for g in pick)
            res[key + ".secs"] = round(secs, 6)
            res[key + ".complete_runs"] = len(full)
            res[key + ".runs"] = len(got)
            res[key + ".delivered"] = statistics.median(g[1] for g in got)
            res[key + ".delivered_min"] = min(g[1] for g in got)
            res[key + ".expected"] = got[0][2]
            res[key + ".duplicates"] = max(g[3] for g in got)
            res[key + ".links"] = statistics.median(g[4] for g in got)
            res[key + ".broadcasts_per_s"] = round(m / secs) if secs > 0 else None
            res[key + ".complete"] = len(full) == len(got) and res[key + ".duplicates"] == 0

    if wants("conns"):
        # py2p sends every new peer the whole routing table: connecting N clients costs
        # O(N^2) (2.5 minutes for 1,000 here, 40 s for 250), so the quick run stops at 100.
        counts = (0, 10, 100) if quick else (0, 10, 100, 250, 500, 1000)
        runs = 1
        res["conns.runs"] = runs
        for c in counts:
            growth, rss = [], []
            for r in range(runs):
                t0 = time.perf_counter()
                try:
                    before, after, reached = conns_run(c)
                except Exception as e:  # noqa: BLE001 - reported in the results
                    log("conns n=%d run %d: FAILED: %s" % (c, r, e))
                    res["conns.n%d.error" % c] = str(e)
                    break
                log("conns n=%d run %d: VmRSS %d KiB -> %d KiB (+%d KiB), %d peers, %.1fs"
                    % (c, r, before // 1024, after // 1024, (after - before) // 1024,
                       reached, time.perf_counter() - t0))
                if reached < c:
                    res["conns.n%d.error" % c] = "%d of %d handshakes completed" % (reached, c)
                    break
                growth.append(after - before)
                rss.append(after)
            if growth and "conns.n%d.error" % c not in res:
                res["conns.n%d.rss_growth" % c] = statistics.median(growth)
                res["conns.n%d.rss" % c] = statistics.median(rss)

    res["elapsed_s"] = round(time.perf_counter() - started, 1)
    _OUT.write(json.dumps(res) + "\n")
    _OUT.flush()
    sys.stderr.flush()
    # py2p's daemon threads are not daemonic; a socket whose close() failed would keep the
    # interpreter alive.
    os._exit(0)


if __name__ == "__main__":
    main()
