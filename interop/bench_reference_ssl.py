"""py2p 0.5.607 over SSL: the two-node broadcast of bench_reference_net.py with
protocol("mesh", "SSL") nodes (needs the cryptography package and Python <= 3.11).

Usage: python interop/bench_reference_ssl.py [--quick]; the last stdout line is JSON.
"""
import json
import os
import statistics
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_reference_net as ref  # noqa: E402
import py2p  # noqa: E402
import py2p.base  # noqa: E402
import py2p.mesh  # noqa: E402

SSL = py2p.base.protocol("mesh", "SSL")


def ssl_node():
    for _ in range(5):
        try:
            return py2p.mesh.mesh_socket("127.0.0.1", ref.free_port(), prot=SSL)
        except OSError:
            continue
    raise RuntimeError("cannot bind an SSL mesh node")


def main():
    quick = "--quick" in sys.argv
    ref.mesh_node = ssl_node  # mesh_pair and broadcast_run build their nodes with it
    res = {"py2p": py2p.base.version, "protocol": SSL.id.decode()}
    for n in (500, 2000):
        got = []
        for r in range(3 if quick else 5):
            got.append(ref.broadcast_run(n))
            ref.report_run("ssl broadcast n=%d run %d" % (n, r), n, got[-1])
        ref.summarize(res, "ssl.broadcast.n%d" % n, n, got)
    ref._OUT.write(json.dumps(res) + "\n")  # the real stdout (py2p's prints go to stderr)
    ref._OUT.flush()
    os._exit(0)  # py2p's daemon threads


if __name__ == "__main__":
    main()
