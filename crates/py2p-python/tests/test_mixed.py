"""One network of py2p_rs and pure py2p 0.5.607 nodes, from one Python script: broadcasts,
whispers, handlers and sync keys both ways."""

import py2p.chord
import py2p.mesh
import py2p.sync
import pytest

import py2p_rs.chord
import py2p_rs.mesh
import py2p_rs.sync
from py2p_rs.base import flags, protocol
from py2p_rs.utils import getUTC
from conftest import free_port, wait_for


@pytest.fixture
def nodes(closing):
    """A py2p_rs node and a py2p node, connected (the py2p node dialled)."""
    def make(rs_cls, py_cls, **kw):
        rs = rs_cls('127.0.0.1', 0, **kw)
        closing(rs)
        py = py_cls('127.0.0.1', free_port(), **kw)
        closing(py)
        py.connect('127.0.0.1', rs.out_addr[1])
        wait_for(lambda: len(rs.routing_table) == 1 and len(py.routing_table) == 1,
                 "the handshake between py2p_rs and py2p")
        return rs, py
    return make


def test_broadcasts_both_ways(nodes):
    rs, py = nodes(py2p_rs.mesh.mesh_socket, py2p.mesh.mesh_socket)
    py.send('from py2p', b'\x00\xff')
    got = wait_for(rs.recv, "py2p's broadcast at py2p_rs")
    assert got.packets == (flags.broadcast, b'from py2p', b'\x00\xff')
    assert got.sender == py.id
    rs.send(u'from py2p_rs \u2713')
    got = wait_for(py.recv, "py2p_rs's broadcast at py2p")
    assert got.packets == (flags.broadcast, u'from py2p_rs \u2713'.encode())
    assert got.sender == rs.id


def test_whispers_and_handlers_both_ways(nodes):
    rs, py = nodes(py2p_rs.mesh.mesh_socket, py2p.mesh.mesh_socket)

    def pong(msg, handler):
        if msg.packets[1] == b'ping':
            msg.reply(b'pong from py2p_rs')
            return True

    rs.register_handler(pong)
    py.send('ping')
    got = wait_for(py.recv, "the reply at py2p")
    assert got.packets == (flags.whisper, b'pong from py2p_rs')
    assert rs.recv() is None

    rs.send('question')
    question = wait_for(py.recv, "the question at py2p")
    question.reply('answer from py2p')
    got = wait_for(rs.recv, "py2p's reply at py2p_rs")
    assert got.packets == (flags.whisper, b'answer from py2p')
    assert got.sender == py.id


def test_sync_keys_both_ways(nodes):
    rs, py = nodes(py2p_rs.sync.sync_socket, py2p.sync.sync_socket)
    rs['colour'] = 'blue'
    py['shape'] = b'round'
    wait_for(lambda: py.get(b'colour'), "py2p_rs's key at py2p")
    wait_for(lambda: rs.get('shape'), "py2p's key at py2p_rs")
    assert py[b'colour'] == b'blue'
    assert rs['shape'] == b'round'
    assert rs.metadata[b'shape'].owner == py.id
    # Within the second of a store py2p's tie-break (the smaller id) decides; after it, the
    # lease does.
    newest = max(rs.metadata[b'shape'].timestamp, rs.metadata[b'colour'].timestamp)
    wait_for(lambda: getUTC() > newest, "the next second")
    # Leases hold across the two implementations.
    with pytest.raises(KeyError):
        rs['shape'] = 'square'
    with pytest.raises(KeyError):
        py['colour'] = 'red'
    del rs['colour']
    wait_for(lambda: py.get(b'colour') is None, "the delete at py2p")


def test_ssl_broadcasts_and_custom_sub_flags_both_ways(nodes):
    prot = protocol('mesh', 'SSL')
    rs, py = nodes(py2p_rs.mesh.mesh_socket, py2p.mesh.mesh_socket, prot=prot)
    py.send('over TLS', type=b'\x40')
    got = wait_for(rs.recv, "py2p's SSL broadcast at py2p_rs")
    assert got.packets == (b'\x40', b'over TLS')
    # (py2p 0.5.607 queues only broadcast and whisper sub-flags for recv, even from py2p.)
    rs.send('back over TLS', flag=flags.whisper, type=flags.whisper)
    got = wait_for(py.recv, "py2p_rs's SSL whisper at py2p")
    assert got.packets == (flags.whisper, b'back over TLS')
    assert got.sender == rs.id


def test_chord_keys_both_ways(nodes):
    rs, py = nodes(py2p_rs.chord.chord_socket, py2p.chord.chord_socket)
    rs.join()
    py.join()
    rs['colour'] = 'blue'
    wait_for(lambda: py.get(b'colour', timeout=1) == b'blue', "py2p_rs's key at py2p")
    py['shape'] = 'round'
    wait_for(lambda: rs.get('shape', timeout=1) == b'round', "py2p's key at py2p_rs")
