"""py2p's ``sync``: ``sync_socket``, a dictionary kept equal across a network, leases
included, on the Rust core (the ``py2p`` crate's ``SyncSocket``)."""

from __future__ import absolute_import

import weakref

from collections import namedtuple

from . import _core
from .base import flags, protocol, to_base_58, from_base_58
from .mesh import mesh_socket
from .utils import _pop_key, getUTC, sanitize_packet

default_protocol = protocol('sync', "Plaintext")


class metatuple(namedtuple('meta', ('owner', 'timestamp'))):
    """The metadata of a key: who stored it and when"""
    pass


class sync_socket(mesh_socket):
    """A dictionary synchronised across a network (py2p's ``sync.sync_socket``).

    With leasing (the default), a key stored by one node cannot be changed by another for
    an hour: ``KeyError``.
    """
    def __init__(self, addr, port, prot=default_protocol, out_addr=None,
                 debug_level=0, leasing=True):
        self.__leasing = leasing
        self.__subnet = str(prot[0])
        protocol_used = protocol(prot[0] + str(int(leasing)), prot[1])
        super(sync_socket, self).__init__(
            addr, port, protocol_used, out_addr, debug_level)

    def _start(self, ip, port, advertised):
        # The crate appends the leasing digit to the subnet itself.
        return _core.Node.sync_node(
            ip, port, self.__subnet, str(self.protocol[1]), advertised,
            weakref.ref(self), bool(self.__leasing))

    @property
    def data(self):
        """A copy of the table: ``{key: value}``"""
        return {k: v for k, v, _, _ in self._node.entries()}

    @property
    def metadata(self):
        """``{key: metatuple(owner, timestamp)}``"""
        return {k: metatuple(owner, t) for k, _, owner, t in self._node.entries()}

    def __setitem__(self, key, data):
        """Stores ``data`` at ``key`` and tells the network; an empty value deletes.

        Raises:
            KeyError: another node holds the lease on this key
        """
        self._node.set(key, data)

    def set(self, key, data):
        """Same as ``self[key] = data``"""
        self.__setitem__(key, data)

    def update(self, update_dict):
        """``self[key] = value`` for every pair of ``update_dict``"""
        for key in update_dict:
            self.__setitem__(key, update_dict[key])

    def __getitem__(self, key):
        """The value at ``key``; ``KeyError`` if there is none"""
        value = self._node.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key, ifError=None):
        """The value at ``key``, or ``ifError``"""
        value = self._node.get(key)
        return ifError if value is None else value

    def __len__(self):
        return self._node.table_len()

    def __contains__(self, key):
        return self._node.get(key) is not None

    def __delitem__(self, key):
        if self._node.get(key) is None:
            raise KeyError(key)
        self[key] = ''

    def keys(self):
        """An iterator of the keys"""
        return (key for key, _, _, _ in self._node.entries())

    def __iter__(self):
        return self.keys()

    def values(self):
        """An iterator of the values"""
        return (value for _, value, _, _ in self._node.entries())

    def items(self):
        """An iterator of the ``(key, value)`` pairs"""
        return ((key, value) for key, value, _, _ in self._node.entries())

    def pop(self, key, *args):
        """The value at ``key``, deleting it; ``args[0]`` (else ``KeyError``) if none"""
        return _pop_key(self, key, args)

    def popitem(self):
        """Some ``(key, value)`` pair, deleting it"""
        key, value = next(self.items())
        del self[key]
        return (key, value)

    def copy(self):
        """A ``dict`` copy of the table"""
        return self.data


__all__ = ['sync_socket', 'metatuple', 'default_protocol']
