"""py2p's ``mesh``: ``mesh_socket``, a node of a mesh network, on the Rust core.

The node (event loop, connections, handshake, waterfall, request/response) is the ``py2p``
crate's ``MeshSocket``; this module gives it py2p 0.5.607's Python API.
"""

from __future__ import absolute_import
from __future__ import print_function

import atexit
import inspect
import socket
import weakref

from . import _core
from .base import flags, protocol, message, InternalMessage, compression
from .utils import getUTC, intersect, get_lan_ip

max_outgoing = 4
default_protocol = protocol('mesh', "Plaintext")

#: The connection object a handler gets as its second argument.
mesh_connection = _core.mesh_connection

# Sockets still open, closed when the interpreter exits: their event-loop threads must not
# outlive it.
_open_sockets = weakref.WeakSet()


@atexit.register
def _close_open_sockets():
    for sock in list(_open_sockets):
        try:
            sock.close()
        except Exception:
            pass


def _resolve(addr, port):
    """The IPv4 address py2p's ``socket.socket()`` would use for ``addr``."""
    return socket.getaddrinfo(addr, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


class peer_connection(object):
    """An entry of ``routing_table``: a peer whose handshake is complete."""
    __slots__ = ('server', 'id', 'addr', 'outgoing')

    def __init__(self, server, id, addr, outgoing):
        self.server = server
        self.id = id
        self.addr = list(addr)
        self.outgoing = outgoing

    def send(self, msg_type, *args, **kargs):
        """Sends ``[msg_type, *args]`` to this peer: ``args[0]`` is the sub-flag.
        ``flags.whisper`` whispers to it (directly, as it is a peer); ``flags.broadcast``
        goes to the whole network, as a broadcast this peer relays would."""
        if not args:
            raise ValueError("send(msg_type, sub_flag, *packets) needs a sub-flag")
        if msg_type == flags.whisper:
            self.server._node.whisper_with(self.id, args[0], args[1:])
        else:
            self.server._node.send_with(msg_type, args[0], args[1:])

    def __repr__(self):
        return "mesh_connection(id=%r, addr=%r, outgoing=%r)" % (
            self.id, self.addr, self.outgoing)


class mesh_socket(object):
    """A node of a py2p mesh network (py2p's ``mesh.mesh_socket``)."""

    def __init__(self, addr, port, prot=default_protocol, out_addr=None,
                 debug_level=0):
        """Binds ``(addr, port)`` and starts the node.

        Raises:
            OSError:    the address could not be bound
            ValueError: the protocol's encryption is unknown (or not in this build)
        """
        self.__closed = True
        self.protocol = prot
        self.debug_level = debug_level
        if out_addr:
            self.out_addr = out_addr
        elif addr == '0.0.0.0':
            self.out_addr = get_lan_ip(), port
        else:
            self.out_addr = addr, port
        # A node bound to port 0 advertises the port it got.
        advertised = None
        if port or out_addr:
            advertised = (str(self.out_addr[0]), int(self.out_addr[1]))
        self._node = self._start(_resolve(addr, port), port, advertised)
        if not port and not out_addr:
            self.out_addr = (self.out_addr[0], self._node.port)
        self.id = self._node.id
        self.requests = {}
        self.__closed = False
        _open_sockets.add(self)

    def _start(self, ip, port, advertised):
        return _core.Node.mesh_node(
            ip, port, str(self.protocol[0]), str(self.protocol[1]), advertised,
            weakref.ref(self))

    def close(self):
        """Closes the socket: every connection, then the event loop.

        Raises:
            RuntimeError: The socket was already closed
        """
        if self.__closed:
            raise RuntimeError("Already closed")
        self.__closed = True
        self.debug_level = 0
        self._node.close()
        _open_sockets.discard(self)

    def __del__(self):
        try:
            if not self.__closed:
                self.close()
        except Exception:
            pass

    def register_handler(self, method):
        """Registers ``method(msg, handler)``, called on the node's event-loop thread for
        every message the protocol does not consume; a truthy return keeps the message from
        ``recv``. An exception it raises is added to ``status``.

        Raises:
            ValueError: the method does not take exactly two arguments (three if the first
                        is ``self``)
        """
        args = inspect.signature(method)
        if (len(args.parameters) !=
                (3 if args.parameters.get('self') else 2)):
            raise ValueError(
                "This method must contain exactly two arguments "
                "(or three if first is self)")
        self._node.register_handler(method)

    @property
    def status(self):
        """``"Nominal"``, or the list of tracebacks of handlers that raised"""
        return self._node.errors() or "Nominal"

    @property
    def routing_table(self):
        """Peers whose handshake is complete: ``{id: connection}``"""
        return {pid: peer_connection(self, pid, addr, outgoing)
                for pid, addr, outgoing in self._node.peers()}

    @property
    def awaiting_ids(self):
        """Connections still waiting for their handshake"""
        return [None] * self._node.awaiting()

    @property
    def outgoing(self):
        """IDs of outgoing connections"""
        return (pid for pid, _, outgoing in self._node.peers() if outgoing)

    @property
    def incoming(self):
        """IDs of incoming connections"""
        return (pid for pid, _, outgoing in self._node.peers() if not outgoing)

    def send(self, *args, **kargs):
        """Sends ``args`` to the network: by default a broadcast every node gets once.

        ``flag`` is the message type (``flags.broadcast``, or ``flags.whisper``: to every
        direct peer and no further), ``type`` the sub-flag sent as the first packet: any
        single byte the protocol does not reserve.

        Raises:
            ValueError: ``flag`` is another message type, or ``type`` a reserved sub-flag
        """
        send_type = kargs.pop('type', flags.broadcast)
        main_flag = kargs.pop('flag', flags.broadcast)
        self._node.send_with(main_flag, send_type, args)

    def send_to(self, id, *args):
        """Whispers ``args`` to the node ``id``, directly or through the network."""
        if isinstance(id, str):
            id = id.encode()
        self._node.whisper(id, args)

    def connect(self, addr, port, id=None):
        """Connects to the node at ``(addr, port)`` and waits for its handshake (in a
        handler the dial starts and the call returns). Returns ``False`` when that is this
        node's own address or ``id`` is already a peer.

        Raises:
            OSError: nothing listens there, or the node runs another protocol
        """
        if isinstance(id, str):
            id = id.encode()
        if (socket.getaddrinfo(addr, port)[0] ==
                socket.getaddrinfo(*self.out_addr)[0] or
                (id is not None and id in self.routing_table)):
            return False
        self._node.connect(_resolve(addr, port), port, id)

    def disconnect(self, handler):
        """Closes the connection to a peer (a ``routing_table`` value)"""
        self._node.disconnect(handler.id)

    def recv(self, quantity=1):
        """With ``quantity`` left at 1: the next message, or ``None``; else a list of up to
        ``quantity`` messages. Never waits."""
        if quantity != 1:
            return self._node.recv(max(0, quantity))
        got = self._node.recv(1)
        return got[0] if got else None


__all__ = ['mesh_socket', 'mesh_connection', 'default_protocol', 'max_outgoing']
