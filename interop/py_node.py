#!/usr/bin/env python3
"""Run ONE real py2p 0.5.607 node behind the same line protocol as our Rust CLI.

    python interop/py_node.py mesh --bind HOST:PORT [--connect HOST:PORT]...
                                   [--subnet NAME] [--compression NAME]...
    python interop/py_node.py sync --bind HOST:PORT [--connect HOST:PORT]...
                                   [--no-leasing] [--subnet NAME] [--compression NAME]...
    python interop/py_node.py chord --bind HOST:PORT [--connect HOST:PORT]... [--no-join]
                                    [--subnet NAME] [--compression NAME]...

PORT may be 0: a free port is picked first (py2p needs a concrete port for its id and out_addr).
`--subnet` defaults to "mesh" / "sync"; for sync, py2p's sync_socket itself appends the leasing
digit ("sync1" with leasing, "sync0" with --no-leasing). `--compression` (repeatable: snappy zlib
gzip bz2 lzma, or `none`) restricts, in the order given, the methods this node advertises, uses
and accepts (it rewrites py2p's module globals before the socket is made). `--encryption`
(Plaintext or SSL, any case; default Plaintext) picks py2p's transport: SSL needs the
`cryptography` package and Python <= 3.11 (py2p calls `ssl.wrap_socket`).
With SSL, writes to
py2p's connections are serialised by one lock (see patch_ssl_writes): py2p writes from the
caller's thread (join, set, get, send) and from its daemon thread at once, and two threads
writing one SSL socket break it (ssl.SSLError BAD_LENGTH, the link drops); plaintext
sockets survive that race, so they are left as shipped.

stdout: one JSON object per line, flushed at once:
  {"event": "ready", "id", "addr": "HOST:PORT", "protocol"}      always the first line
  {"event": "connected", "peer", "addr": [HOST, PORT]}           handshake completed
  {"event": "disconnected", "peer"}
  {"event": "message", "kind": "broadcast"|"whisper", "sender", "id", "time", "packets": [...]}
  {"event": "peers", "peers": [{"id", "addr": [HOST, PORT]}, ...]}          after /peers
  {"event": "error", "message"}
  sync only: {"event": "stored", "key", "value", "owner"}, {"event": "deleted", "key"},
             {"event": "value", "key", "value": TEXT|null}                after /get
  chord only: {"event": "value", "key", "value": TEXT|null}       after /get
             {"event": "keys", "keys": [...]}                     after /keys
stdin: a line is broadcast as one packet; commands: /whisper ID TEXT, /peers, /quit,
  sync: /set KEY VALUE, /del KEY, /get KEY.
  chord: /set KEY VALUE, /get KEY, /del KEY, /keys over py2p.chord.chord_socket (subnet
  "chord"); the node calls join() as soon as it has a peer, unless --no-join. /get waits up
  to 10 s (env PY_NODE_CHORD_TIMEOUT) and reports null for py2p's None and for the '' py2p
  returns for some missing keys. /del is py2p's own `del sock[key]`, whose three-packet
  notify makes every py2p receiver drop this node (py2p 0.5.607's bug, kept as shipped).
At end of stdin the node keeps running until /quit, SIGINT or SIGTERM; then it closes, exit 0.

py2p's own debug output (env PY_NODE_DEBUG=N sets its debug_level, default 0) goes to stderr,
as do new entries of sock.daemon.exceptions. Env PY_NODE_RAW=1 disables the routing-table
fix-ups for py2p's str/bytes id mix-up described at `fixup_routing_table` and
`patch_get_peer_list` (so py2p behaves exactly as shipped). Env
PY_NODE_MAX_OUTGOING=N sets py2p.mesh.max_outgoing (default 4): the number of outgoing
connections below which py2p dials the peers listed to it; 0 means it dials only --connect
targets (and request/response targets), which lets a test build a line A-B-C.
Env PY_NODE_ECHO_FLAG=N (a sub-flag byte, e.g. 0x30) registers a py2p handler that takes
messages whose packets[0] is that byte, prints {"event": "handled", "sender", "flag",
"packets"} and answers on the same connection with a whisper of sub-flag N+1 and the packet
"echo:" + the first packet (a user-defined sub-protocol, as py2p programs build them).
"""
from __future__ import print_function

import argparse
import hashlib
import json
import os
import queue
import signal
import socket
import sys
import threading

# Our events go to the real stdout; py2p prints its debug lines (and message.reply's notice)
# with print() to sys.stdout, so point sys.stdout at stderr before py2p can print anything.
_OUT = sys.stdout.buffer
sys.stdout = sys.stderr
_OUT_LOCK = threading.Lock()

import py2p  # noqa: E402
import py2p.base  # noqa: E402
import py2p.mesh  # noqa: E402
import py2p.sync  # noqa: E402
import py2p.chord  # noqa: E402
from py2p.base import flags, to_base_58  # noqa: E402
from py2p.utils import getUTC  # noqa: E402

COMPRESSIONS = {
    'snappy': flags.snappy,
    'zlib': flags.zlib,
    'gzip': flags.gzip,
    'bz2': flags.bz2,
    'lzma': flags.lzma,
}


def emit(obj):
    line = json.dumps(obj, ensure_ascii=False) + '\n'
    with _OUT_LOCK:
        try:
            _OUT.write(line.encode('utf-8', 'replace'))
            _OUT.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


def err(message):
    emit({'event': 'error', 'message': message})


def text(value):
    """py2p ids/keys/values are bytes (sometimes str): always hand out text."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('utf-8', 'replace')
    return str(value)


def parse_hostport(s):
    host, sep, port = s.rpartition(':')
    if not sep or not host:
        raise argparse.ArgumentTypeError('expected HOST:PORT, got %r' % s)
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    try:
        port = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError('bad port in %r' % s)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError('port out of range in %r' % s)
    return host, port


def free_port(host):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def restrict_compression(names):
    """py2p keeps its compression list in module globals: base.compression (list of flag
    bytes, used by InternalMessage.compression_used for sending and by __decompress_string as
    intersect(peer_list, compression) for receiving) and base.json_compressions (the handshake
    text). mesh.py did `from .base import json_compressions`, a copy of the str, so it must be
    rebound there too. The list is mutated in place because mesh.py holds the same object."""
    if names is None:
        return
    chosen = []
    for name in names:
        if name == 'none':
            continue
        flag = COMPRESSIONS[name]
        if flag not in py2p.base.compression:
            raise SystemExit('py_node: compression %r is not available in this py2p '
                             'install' % name)
        if flag not in chosen:
            chosen.append(flag)
    py2p.base.compression[:] = chosen
    js = json.dumps([m.decode() for m in chosen])
    py2p.base.json_compressions = js
    py2p.mesh.json_compressions = js


def fixup_routing_table(sock):
    """Drop str-keyed aliases from routing_table once their handshake is done.

    py2p's response handler does connect(host, port, id) with the id from JSON, i.e. a str,
    so routing_table gets handler under the str id; the handshake then adds it again under the
    bytes id. The alias (a) makes send() deliver every broadcast twice to that peer, (b) makes
    _get_peer_list() raise AttributeError ('str' has no 'decode'), see patch_get_peer_list,
    and (c) survives disconnect() (which pops only the bytes key), after which the daemon loop
    selects the dead socket forever, calling request_peers() on every 10 ms pass. The alias is only needed until the deferred whisper is
    sent, which happens in the same daemon call as connect(), long before the handshake reply
    arrives, so removing it once handler.id is set is safe."""
    for key, handler in tuple(sock.routing_table.items()):
        if isinstance(key, str) and getattr(handler, 'id', None) is not None:
            if sock.routing_table.get(key) is handler:
                sock.routing_table.pop(key, None)


def patch_get_peer_list():
    """py2p's _get_peer_list() does key.decode() for every routing_table key, so a str key (see
    fixup_routing_table) raises AttributeError. The first victim is the very handshake of the
    connection made for a request/response whisper: __handle_handshake sets handler.id, adds the
    bytes key, then calls _send_handshake_response -> _get_peer_list while the str alias is
    still there; the daemon catches the error and drops that new connection (leaving the str
    alias behind, see above). Replaced by the same list with keys as text, one entry per peer."""
    import random

    def _get_peer_list(self):
        seen = {}
        for key, node in tuple(self.routing_table.items()):
            if node.addr:
                seen.setdefault(text(key), (node.addr, text(key)))
        peer_list = list(seen.values())
        random.shuffle(peer_list)
        return peer_list
    py2p.mesh.mesh_socket._get_peer_list = _get_peer_list


def patch_ssl_writes():
    """py2p 0.5.607 writes to a connection from whichever thread sends: the user's (join(),
    set(), get(), send()) and the daemon's (answers, relays) at the same time. An SSL socket
    is one OpenSSL object: a second write entering while the first is part-way through fails
    with ssl.SSLError BAD_LENGTH, py2p records it and drops the connection. Only the
    interleaving changes here: each message is written whole, one at a time, as py2p does
    on a single thread; the bytes on the wire are py2p's own."""
    lock = threading.Lock()
    send = py2p.base.base_connection.send_InternalMessage

    def send_InternalMessage(self, msg):
        with lock:
            return send(self, msg)
    py2p.base.base_connection.send_InternalMessage = send_InternalMessage


def live_peers(sock):
    """{id_text: [host, port]} for handlers that completed the handshake.

    connect() with a known id puts the handler into routing_table before the handshake
    (handler.id/addr still None): not reported until the handshake sets them. Keys may be
    bytes or str for the same handler: de-duplicated by handler.id. A str alias left behind by
    disconnect() is excluded by requiring routing_table[handler.id] is handler."""
    table = sock.routing_table
    peers = {}
    for _key, handler in tuple(table.items()):
        hid = getattr(handler, 'id', None)
        addr = getattr(handler, 'addr', None)
        if hid is None or not addr:
            continue
        if table.get(hid) is not handler:
            continue
        peers[text(hid)] = [addr[0], addr[1]]
    return peers


def find_handler(sock, peer_id):
    table = sock.routing_table
    for key in (peer_id.encode('utf-8', 'surrogateescape'), peer_id):
        handler = table.get(key)
        if handler is not None:
            return handler
    return None


def snapshot_store(sock):
    """{key_text: (value_text, owner_text, timestamp)}; retried until two reads agree, since
    py2p updates metadata and data in two steps from its daemon thread."""
    prev = None
    for _ in range(5):
        data = dict(tuple(sock.data.items()))
        meta = dict(tuple(sock.metadata.items()))
        cur = {}
        for key, value in data.items():
            m = meta.get(key)
            owner, ts = (m.owner, m.timestamp) if m is not None else (None, None)
            cur[text(key)] = (text(value), text(owner), ts)
        if cur == prev:
            break
        prev = cur
    return prev


def encryption_name(s):
    for name in ('Plaintext', 'SSL'):
        if s.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError('expected Plaintext or SSL, got %r' % s)


def main():
    ap = argparse.ArgumentParser(prog='py_node.py', description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='mode')
    sub.required = True
    for mode in ('mesh', 'sync', 'chord'):
        p = sub.add_parser(mode)
        p.add_argument('--bind', required=True, type=parse_hostport, metavar='HOST:PORT')
        p.add_argument('--connect', action='append', default=[], type=parse_hostport,
                       metavar='HOST:PORT')
        p.add_argument('--subnet', default=mode)
        p.add_argument('--encryption', default='Plaintext', type=encryption_name,
                       help="Plaintext or SSL (any case; SSL needs the cryptography package)")
        p.add_argument('--compression', action='append', default=None,
                       choices=sorted(COMPRESSIONS) + ['none'])
        if mode == 'sync':
            p.add_argument('--no-leasing', action='store_true')
        if mode == 'chord':
            p.add_argument('--no-join', action='store_true')
    args = ap.parse_args()

    debug = int(os.environ.get('PY_NODE_DEBUG', '0') or 0)
    raw = os.environ.get('PY_NODE_RAW', '') not in ('', '0')
    restrict_compression(args.compression)
    if not raw:
        patch_get_peer_list()
    if os.environ.get('PY_NODE_MAX_OUTGOING'):
        # _handle_peers reads this module global on every peers list: 0 stops py2p from
        # dialling the peers it is told about, so tests can build a line A-B-C.
        py2p.mesh.max_outgoing = int(os.environ['PY_NODE_MAX_OUTGOING'])

    host, port = args.bind
    if port == 0:
        port = free_port(host)
    prot = py2p.base.protocol(args.subnet, args.encryption)
    if args.encryption == 'SSL':
        patch_ssl_writes()
    try:
        if args.mode == 'mesh':
            sock = py2p.mesh.mesh_socket(host, port, prot=prot, debug_level=debug)
        elif args.mode == 'chord':
            sock = py2p.chord.chord_socket(host, port, prot=prot, debug_level=debug)
        else:
            sock = py2p.sync.sync_socket(host, port, prot=prot, debug_level=debug,
                                         leasing=not args.no_leasing)
    except Exception as e:
        # e.g. EADDRINUSE: py2p binds without SO_REUSEADDR, so a port that was used a moment
        # ago (TIME_WAIT) cannot be bound again. os._exit skips py2p's noisy __del__.
        err('bind %s:%d: %s' % (host, port, e))
        sys.stderr.flush()
        os._exit(1)
    is_sync = args.mode == 'sync'
    is_chord = args.mode == 'chord'
    chord_join = is_chord and not args.no_join
    chord_timeout = float(os.environ.get('PY_NODE_CHORD_TIMEOUT', '10') or 10)

    echo_flag = os.environ.get('PY_NODE_ECHO_FLAG')
    if echo_flag:
        flag_value = int(echo_flag, 0)
        flag_byte, answer_byte = bytes([flag_value]), bytes([flag_value + 1])

        def echo(msg, conn):
            packets = msg.packets
            if packets[0] != flag_byte:
                return None
            emit({'event': 'handled', 'sender': text(msg.sender), 'flag': flag_value,
                  'packets': [text(p) for p in packets[1:]]})
            first = packets[1] if len(packets) > 1 else b''
            conn.send(flags.whisper, answer_byte, b'echo:' + first)
            return True
        sock.register_handler(echo)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    emit({'event': 'ready', 'id': text(sock.id),
          'addr': '%s:%d' % (sock.out_addr[0], sock.out_addr[1]),
          'protocol': text(sock.protocol.id)})

    for chost, cport in args.connect:
        try:
            if sock.connect(chost, cport) is False:
                err('connect %s:%d: already connected (or own address)' % (chost, cport))
        except Exception as e:  # ConnectionRefusedError, gaierror, timeout...
            err('connect %s:%d: %s' % (chost, cport, e))

    lines = queue.Queue()

    def reader():
        for raw_line in iter(sys.stdin.buffer.readline, b''):
            if raw_line.endswith(b'\n'):
                raw_line = raw_line[:-1]
            if raw_line.endswith(b'\r'):
                raw_line = raw_line[:-1]
            lines.put(raw_line.decode('utf-8', 'surrogateescape'))
        lines.put(None)  # EOF: keep running until /quit or a signal
    threading.Thread(target=reader, name='stdin', daemon=True).start()

    def b(s):
        return s.encode('utf-8', 'surrogateescape')

    def whisper(peer_id, payload):
        if not peer_id:
            return err('usage: /whisper ID TEXT')
        if b(peer_id) == sock.id:
            return err('cannot whisper to self')
        handler = find_handler(sock, peer_id)
        if handler is not None:
            handler.send(flags.whisper, flags.whisper, b(payload))
            return
        if not live_peers(sock):
            return err('whisper %s: not connected to any peer' % peer_id)
        # Not directly connected: py2p's own request/response path, as message.reply does it.
        target = b(peer_id)
        request_id = to_base_58(int(hashlib.sha384(
            target + to_base_58(getUTC())).hexdigest(), 16))
        sock.requests[request_id] = (flags.whisper, flags.whisper, b(payload))
        sock.send(request_id, target, type=flags.request)

    def command(line):
        if line == '/quit':
            stop.set()
        elif line == '/peers':
            peers = live_peers(sock)
            emit({'event': 'peers',
                  'peers': [{'id': k, 'addr': v} for k, v in sorted(peers.items())]})
        elif line == '/whisper' or line.startswith('/whisper '):
            parts = line.split(' ', 2)
            whisper(parts[1] if len(parts) > 1 else '', parts[2] if len(parts) > 2 else '')
        elif is_chord and (line.split(' ', 1)[0] in ('/set', '/del', '/get', '/keys')):
            parts = line.split(' ', 2)
            cmd = parts[0]
            if cmd == '/keys':
                emit({'event': 'keys', 'keys': sorted(text(k) for k in sock.keys())})
                return
            key = parts[1] if len(parts) > 1 else ''
            if not key:
                return err('usage: %s KEY%s' % (cmd, ' VALUE' if cmd == '/set' else ''))
            if cmd == '/get':
                value = sock.get(b(key), timeout=chord_timeout)
                if value in ('', b''):
                    value = None
                emit({'event': 'value', 'key': key, 'value': text(value)})
            elif cmd == '/set':
                sock.set(b(key), b(parts[2] if len(parts) > 2 else ''))
            else:
                del sock[b(key)]
        elif is_sync and (line.split(' ', 1)[0] in ('/set', '/del', '/get')):
            parts = line.split(' ', 2)
            cmd = parts[0]
            key = parts[1] if len(parts) > 1 else ''
            if not key:
                return err('usage: %s KEY%s' % (cmd, ' VALUE' if cmd == '/set' else ''))
            if cmd == '/get':
                value = sock.get(b(key))
                emit({'event': 'value', 'key': key, 'value': text(value)})
                return
            value = parts[2] if (cmd == '/set' and len(parts) > 2) else ''
            if value == '' and b(key) not in sock.data:
                # py2p would raise KeyError from `del self.data[key]` before sending anything
                return err('%s %s: no such key' % (cmd, key))
            try:
                sock[b(key)] = b(value)
            except KeyError as e:
                msg = e.args[0] if e.args else 'refused'
                err('%s %s: %s' % (cmd, key, text(msg)))
        else:
            sock.send(b(line))

    status = 1
    known_peers = {}
    known_store = {}
    n_exc = 0
    try:
        while not stop.is_set():
            batch = []
            try:
                batch.append(lines.get(timeout=0.01))
                while True:
                    batch.append(lines.get_nowait())
            except queue.Empty:
                pass
            for line in batch:
                if line is None or stop.is_set():
                    continue
                try:
                    command(line)
                except Exception as e:
                    err('%s: %s: %s' % (line.split(' ', 1)[0], type(e).__name__, e))

            if not raw:
                fixup_routing_table(sock)
            peers = live_peers(sock)
            for pid in known_peers:
                if pid not in peers:
                    emit({'event': 'disconnected', 'peer': pid})
            for pid, addr in peers.items():
                if known_peers.get(pid) != addr:
                    emit({'event': 'connected', 'peer': pid, 'addr': addr})
            known_peers = peers
            if chord_join and peers and sock.leeching:
                sock.join()

            while True:
                msg = sock.recv()
                if msg is None:
                    break
                packets = msg.packets
                kind = {flags.broadcast: 'broadcast', flags.whisper: 'whisper'}.get(
                    packets[0], text(packets[0]))
                emit({'event': 'message', 'kind': kind, 'sender': text(msg.sender),
                      'id': text(msg.id), 'time': msg.time,
                      'packets': [text(p) for p in packets[1:]]})

            if is_sync:
                store = snapshot_store(sock)
                for key in known_store:
                    if key not in store:
                        emit({'event': 'deleted', 'key': key})
                for key, entry in store.items():
                    if known_store.get(key) != entry:
                        emit({'event': 'stored', 'key': key, 'value': entry[0],
                              'owner': entry[1]})
                known_store = store

            excs = sock.daemon.exceptions
            while n_exc < len(excs):
                sys.stderr.write('py2p daemon exception:\n%s\n' % excs[n_exc])
                n_exc += 1
            sys.stderr.flush()
    except BaseException:
        import traceback
        traceback.print_exc()
        status = 1
    else:
        status = 0
    finally:
        # close() joins py2p's non-daemonic thread; never let a stuck join keep us alive.
        watchdog = threading.Timer(5.0, lambda: os._exit(status))
        watchdog.daemon = True
        watchdog.start()
        try:
            sock.close()
        except Exception as e:
            sys.stderr.write('py_node: close: %s\n' % e)
        sys.stderr.flush()
        os._exit(status)


if __name__ == '__main__':
    main()
