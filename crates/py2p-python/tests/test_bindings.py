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


def test_socket_methods_answer_inside_a_handler(closing):
    # The crate's socket methods are re-entrant: the routing table, status, sending and
    # registering a handler all answer on the loop thread, without waiting for it.
    a, b = pair(closing)
    seen = []

    def handler(msg, conn):
        seen.append((list(a.routing_table), a.status, len(a.awaiting_ids)))
        a.send('again', type=b'\x31')
        a.register_handler(lambda m, c: None)
        return True

    a.register_handler(handler)
    b.send('x')
    got = recv(b)
    assert got.packets == (b'\x31', b'again')
    assert seen == [([b.id], "Nominal", 0)]
    assert a.status == "Nominal"


def test_send_with_any_sub_flag_and_message_type(closing):
    a, b = pair(closing)
    b.send('custom', type=b'\x40')
    assert recv(a).packets == (b'\x40', b'custom')
    b.send('w', flag=base.flags.whisper, type=b'\x41')
    got = recv(a)
    assert got.packets == (b'\x41', b'w')
    b.send_to(a.id, 'direct')
    assert recv(a).packets == (base.flags.whisper, b'direct')
    b.routing_table[a.id].send(base.flags.whisper, b'\x42', 'via table')
    assert recv(a).packets == (b'\x42', b'via table')
    # py2p reserves message types other than broadcast/whisper, and protocol sub-flags.
    with pytest.raises(ValueError):
        b.send('x', flag=base.flags.renegotiate)
    with pytest.raises(ValueError):
        b.send('x', type=base.flags.handshake)
    with pytest.raises(ValueError):
        b.send('x', type=b'two bytes')


def test_handler_connection_is_the_real_connection(closing):
    a, b = pair(closing)
    seen = []

    def handler(msg, conn):
        seen.append((conn.id, tuple(conn.addr), conn.outgoing))
        conn.send(base.flags.whisper, b'\x50', 'on the connection')
        conn.send(base.flags.broadcast, base.flags.broadcast, 'relayed')
        return True

    a.register_handler(handler)
    b.send('hello')
    first, second = recv(b), recv(b)
    assert {first.packets, second.packets} == {
        (b'\x50', b'on the connection'), (base.flags.broadcast, b'relayed')}
    assert first.sender == second.sender == a.id
    (conn_id, addr, outgoing), = seen
    assert conn_id == b.id and addr[0] == '127.0.0.1' and outgoing is False


def test_connect_with_id_and_inside_a_handler(closing):
    a, b = pair(closing)
    # Already a peer under that id: nothing is dialled.
    assert b.connect('127.0.0.1', a.out_addr[1], id=a.id) is False
    c = mesh.mesh_socket('127.0.0.1', 0)
    closing(c)
    assert c.connect('127.0.0.1', a.out_addr[1], id=a.id) is None
    wait_for(lambda: a.id in c.routing_table, "a in c's routing table")
    # In a handler the dial starts and the call returns.
    d = mesh.mesh_socket('127.0.0.1', 0)
    closing(d)
    b.register_handler(lambda msg, conn: b.connect('127.0.0.1', d.out_addr[1]) or True)
    a.send('dial d')
    wait_for(lambda: d.id in b.routing_table, "b's dial to d from its handler")


def test_status_lists_the_nodes_errors(closing):
    a = mesh.mesh_socket('127.0.0.1', 0)
    closing(a)
    free = a.out_addr[1]
    a.close()
    b = mesh.mesh_socket('127.0.0.1', 0)
    closing(b)
    assert b.status == "Nominal"
    with pytest.raises(OSError):
        b.connect('127.0.0.1', free)
    errors = wait_for(lambda: b.status if b.status != "Nominal" else None, "the error")
    assert any(str(free) in e for e in errors)


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
    # Without leases py2p takes a store newer by the second; within the same second, the
    # one whose owner id is smaller wins. The pop below may come in the set's second, so
    # the node with the smaller id pops (the other order is refused half the time, as in py2p).
    setter, popper = (a, b) if a.id > b.id else (b, a)
    setter.update({'x': '1'})
    wait_for(lambda: popper.get('x'), "x at the popper")
    assert dict(popper.items()) == {b'x': b'1'} == popper.copy()
    # pop: the value, then the key is gone everywhere; a default for a missing key, else KeyError.
    assert popper.pop('x') == b'1'
    assert 'x' not in popper.copy() and popper.pop('x', 'none') == 'none'
    wait_for(lambda: setter.get('x') is None, "the pop at the setter")
    with pytest.raises(KeyError):
        popper.pop('x')


# chord


def test_chord_set_get_delete_across_nodes(closing):
    from py2p_rs import chord
    a, b = pair(closing, cls=chord.chord_socket)
    assert a.protocol.subnet == 'chord'
    a.join()
    b.join()
    a['colour'] = 'blue'
    wait_for(lambda: b.get('colour', timeout=1) == b'blue', "the value at b")
    assert b['colour'] == b'blue'
    assert b.get('missing', 'none', timeout=1) == 'none'
    with pytest.raises(KeyError):
        b.__getitem__('missing', timeout=1)
    wait_for(lambda: b'colour' in set(b.keys()), "b to learn the key")
    b.update({'x': 1})
    wait_for(lambda: a.get('x', timeout=1) == b'1', "x at a")
    del b['colour']
    wait_for(lambda: a.get('colour', timeout=1) is None, "the delete at a")
    with pytest.raises(KeyError):
        del a['never set']
    b.update({'popped': 'p'})
    wait_for(lambda: a.get('popped', timeout=1) == b'p', "popped at a")
    assert a.pop('popped') == b'p'
    wait_for(lambda: b.get('popped', timeout=1) is None, "the pop at b")
    assert a.pop('popped', 'gone') == 'gone'
    a.unjoin()
    wait_for(lambda: b.get('x', timeout=1) == b'1', "x at b after a unjoined")
