"""py2p_rs's own behaviour: errors, handlers and the GIL, the sync table, and the wire
format checked byte for byte against py2p 0.5.607."""

import faulthandler
import threading

import py2p
import py2p.base
import pytest

import py2p_rs
from py2p_rs import base, mesh, sync, utils
from conftest import wait_for


def pair(closing, cls=mesh.mesh_socket, **kw):
    a = cls('127.0.0.1', 0, **kw)
    closing(a)
    b = cls('127.0.0.1', 0, **kw)
    closing(b)
    b.connect('127.0.0.1', a.out_addr[1])
    wait_for(lambda: len(a.routing_table) == 1 and len(b.routing_table) == 1, "the handshake")
    return a, b


def recv(sock):
    return wait_for(sock.recv, "a message")


# base: the wire format against py2p's own


def test_frames_are_byte_identical_to_py2p():
    payload = (b'\x00', b'hello', u'\xff', bytearray(b'\x01\x02'))
    plain = tuple(py2p.utils.sanitize_packet(p) for p in payload)
    ours = base.InternalMessage(base.flags.broadcast, b'sender', payload, timestamp=1700000000)
    theirs = py2p.base.InternalMessage(py2p.base.flags.broadcast, b'sender', payload,
                                       timestamp=1700000000)
    assert ours.id == theirs.id
    assert ours.packets == theirs.packets
    assert ours.string == theirs.string
    assert len(ours) == len(theirs)
    # Compressed frames may differ in bytes (other encoders); each side reads the other's.
    for method in base.compression:
        ours.compression = theirs.compression = [method]
        back = py2p.base.InternalMessage.feed_string(ours.string, False, [method])
        assert (back.id, back.payload) == (ours.id, plain)
        mine = base.InternalMessage.feed_string(theirs.string, False, [method])
        assert (mine.id, mine.payload) == (ours.id, plain)


def test_lzma_interoperates():
    ours = base.InternalMessage(base.flags.whisper, b's', (b'x' * 100,), timestamp=5)
    ours.compression = [base.flags.lzma]
    back = py2p.base.InternalMessage.feed_string(ours.string, False, [py2p.base.flags.lzma])
    assert back.payload == (b'x' * 100,)


def test_protocol_ids_match_py2p():
    for sub, enc in [('', 'Plaintext'), ('mesh', 'SSL'), ('sync1', 'Plaintext'), (u'\xe9', 'x')]:
        assert base.protocol(sub, enc).id == py2p.base.protocol(sub, enc).id


def test_base_58_takes_str_and_bytes_and_big_integers():
    for i in [0, 1, 57, 58, 2**64, 2**384 - 1]:
        assert base.to_base_58(i) == py2p.base.to_base_58(i)
        assert base.from_base_58(base.to_base_58(i)) == i
        assert base.from_base_58(base.to_base_58(i).decode()) == i
    with pytest.raises(ValueError):
        base.from_base_58('0OIl')
    with pytest.raises(TypeError):
        base.to_base_58(1.5)


def test_compress_refuses_unknown_methods_with_value_error():
    with pytest.raises(ValueError):
        base.compress(b'data', b'\x14')
    with pytest.raises(ValueError):
        base.decompress(b'data', base.flags.zlib)


def test_intersect_keeps_py2p_quirk():
    assert utils.intersect([1, 2, 3], [1], [1, 2, 3]) == (1, 2, 3)
    assert utils.intersect([1, 2, 3], [3, 1]) == (1, 3)
    assert utils.intersect([1], []) == ()


def test_module_layout_and_versions():
    assert py2p_rs.version == base.version == py2p.base.version == '0.5.607'
    assert (base.protocol_version, base.node_policy_version) == ('0.5', '607')
    assert base.compression == py2p.base.compression
    assert base.json_compressions == py2p.base.json_compressions
    assert base.pack_value(4, 258) == py2p.base.pack_value(4, 258)
    assert base.unpack_value(b'\x01\x02') == 258
    assert isinstance(utils.getUTC(), int)


# exceptions


def test_unknown_encryption_is_a_value_error():
    with pytest.raises(ValueError):
        mesh.mesh_socket('127.0.0.1', 0, prot=base.protocol('', 'Rot13'))


def test_second_close_is_a_runtime_error():
    s = mesh.mesh_socket('127.0.0.1', 0)
    s.close()
    with pytest.raises(RuntimeError):
        s.close()


def test_handlers_need_two_parameters():
    s = mesh.mesh_socket('127.0.0.1', 0)
    try:
        for bad in (lambda a: None, lambda a, b, c: None, lambda *a: None):
            with pytest.raises(ValueError):
                s.register_handler(bad)
        s.register_handler(lambda msg, handler=None: None)
    finally:
        s.close()


# handlers


def test_a_raising_handler_is_in_status_and_the_node_goes_on(closing):
    a, b = pair(closing)
    assert a.status == "Nominal"

    def bad(msg, handler):
        if msg.packets[1] == b'boom':
            raise ZeroDivisionError("handler failure")

    a.register_handler(bad)
    b.send('boom')
    b.send('fine')
    # The raising handler did not handle 'boom': both reach recv, in order.
    assert recv(a).packets == (base.flags.broadcast, b'boom')
    assert recv(a).packets == (base.flags.broadcast, b'fine')
    assert len(a.status) == 1
    assert 'ZeroDivisionError: handler failure' in a.status[0]
    assert 'Traceback' in a.status[0]


def test_handler_replies_and_truthy_return_keeps_from_recv(closing):
    a, b = pair(closing)
    seen = []

    def answer(msg, handler):
        seen.append((msg.sender, handler.id, msg.server is a, msg.protocol))
        if msg.packets[1] == b'ping':
            msg.reply(b'pong')
            return True

    a.register_handler(answer)
    b.send('ping')
    got = recv(b)
    assert got.packets == (base.flags.whisper, b'pong')
    assert got.sender == a.id
    assert a.recv() is None
    assert seen == [(b.id, b.id, True, a.protocol)]


def test_close_releases_the_gil_while_a_handler_finishes(closing):
    # The handler blocks until another Python thread sets an event; close() must let that
    # thread run (and the handler finish) while it waits for the event loop to stop.
    a, b = pair(closing)
    entered, release = threading.Event(), threading.Event()

    def slow(msg, handler):
        entered.set()
        release.wait()

    a.register_handler(slow)
    b.send('x')
    assert entered.wait(30)
    setter = threading.Thread(target=release.set)
    faulthandler.dump_traceback_later(60, exit=True)  # a deadlock fails the run
    try:
        setter.start()
        a.close()
    finally:
        faulthandler.cancel_dump_traceback_later()
    setter.join()


def test_socket_methods_that_would_wait_for_the_loop_refuse_inside_a_handler(closing):
    a, b = pair(closing)
    a.register_handler(lambda msg, handler: len(a.routing_table))
    b.send('x')
    assert recv(a).packets[1] == b'x'
    assert 'needs re-entrant socket methods' in a.status[0]


def test_recv_quantity(closing):
    a, b = pair(closing)
    assert a.recv() is None
    assert a.recv(5) == []
    for i in range(3):
        b.send(str(i))
    wait_for(lambda: len(a._node.errors()) == 0 and a._node.peers(), "peers")
    got = []
    wait_for(lambda: got.extend(a.recv(10)) or len(got) == 3, "three messages")
    assert [m.packets[1] for m in got] == [b'0', b'1', b'2']


def test_whisper_to_direct_peers_and_connect_to_self(closing):
    a, b = pair(closing)
    b.send('hi', flag=base.flags.whisper, type=base.flags.whisper)
    assert recv(a).packets == (base.flags.whisper, b'hi')
    assert a.connect('127.0.0.1', a.out_addr[1]) is False
    assert list(b.outgoing) == [a.id] and list(a.incoming) == [b.id]


# sync


def test_sync_leases_metadata_and_deletes(closing):
    a, b = pair(closing, cls=sync.sync_socket)
    a['k'] = u'v\xe9'
    wait_for(lambda: b.get('k'), "the key at b")
    assert b['k'] == u'v\xe9'.encode()
    assert b.metadata[b'k'].owner == a.id
    # Within the second of the store py2p's tie-break (the smaller id) decides; after it,
    # the lease does.
    wait_for(lambda: utils.getUTC() > b.metadata[b'k'].timestamp, "the next second")
    with pytest.raises(KeyError):
        b['k'] = 'mine'
    with pytest.raises(KeyError):
        b['missing']
    assert b.get('missing', 7) == 7
    del a['k']
    wait_for(lambda: b.get('k') is None, "the delete at b")
    assert len(a) == len(b) == 0


def test_sync_without_leases_takes_the_newest(closing):
    a, b = pair(closing, cls=sync.sync_socket, leasing=False)
    assert a.protocol.subnet == 'sync0'
    a.update({'x': '1'})
    wait_for(lambda: b.get('x'), "x at b")
    assert dict(b.items()) == {b'x': b'1'} == b.copy()
