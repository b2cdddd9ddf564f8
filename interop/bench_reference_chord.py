#!/usr/bin/env python3
"""py2p 0.5.607's chord_socket measured as crates/py2p/benches/chord.rs measures ours:

- set: a ring of 3 joined chord_sockets on 127.0.0.1; node 0 sets N keys one after the
  other, then the time until node 2 reads the last one: sets per second.
- get: node 1 gets the N keys one after the other: gets per second.
- latency16: a ring of 16 joined nodes; 200 gets, one at a time, from rotating nodes:
  p50 and p99 in microseconds.

Prints one JSON object on the last line of stdout. Usage: python bench_reference_chord.py [N]
"""
import json
import socket
import sys
import time

import py2p.base
from py2p import chord


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ring(n):
    prot = py2p.base.protocol('chord', 'Plaintext')
    nodes = [chord.chord_socket('127.0.0.1', free_port(), prot=prot) for _ in range(n)]
    # Each dials the one before it (node 0 alone does not accept 15 dials in time).
    for i, b in enumerate(nodes[1:], 1):
        for _ in range(5):
            try:
                b.connect('127.0.0.1', nodes[i - 1].out_addr[1])
                break
            except OSError:
                time.sleep(0.5)
    deadline = time.time() + 60
    while any(len(a.routing_table) < min(n - 1, 4) for a in nodes) and time.time() < deadline:
        time.sleep(0.05)
    for a in nodes:
        a.join()
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(sum(1 for h in a.routing_table.values() if not h.leeching)
               >= min(n - 1, 4) for a in nodes):
            break
        time.sleep(0.05)
    return nodes


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    nodes = ring(3)
    start = time.perf_counter()
    for i in range(n):
        nodes[0].set(('key %d' % i).encode(), ('value %d' % i).encode())
    while nodes[2].get(('key %d' % (n - 1)).encode(), timeout=10) is None:
        pass
    set_secs = time.perf_counter() - start
    sys.stderr.write('set: %d in %.3f s\n' % (n, set_secs))
    start = time.perf_counter()
    misses = 0
    for i in range(n):
        v = nodes[1].get(('key %d' % i).encode(), timeout=10)
        if v != ('value %d' % i).encode():
            misses += 1
    get_secs = time.perf_counter() - start
    sys.stderr.write('get: %d in %.3f s, %d misread\n' % (n, get_secs, misses))
    for a in nodes:
        a.close()

    nodes = ring(16)
    for i in range(200):
        nodes[i % 16].set(('k%d' % i).encode(), b'v')
    lat = []
    for i in range(200):
        node = nodes[(i * 11 + 5) % 16]
        t = time.perf_counter()
        v = node.get(('k%d' % ((i * 13) % 200)).encode(), timeout=10)
        lat.append(int((time.perf_counter() - t) * 1e6))
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[len(lat) * 99 // 100]
    sys.stderr.write('latency16: p50 %d us, p99 %d us\n' % (p50, p99))
    print(json.dumps({'set.per_sec': n / set_secs, 'get.per_sec': n / get_secs,
                      'latency16.p50_us': p50, 'latency16.p99_us': p99, 'n': n,
                      'get.misses': misses}))
    sys.stdout.flush()
    import os
    os._exit(0)


if __name__ == '__main__':
    main()
