"""py2p's ``chord``: ``chord_socket``, a distributed hash table over five hash methods, on
the Rust core (the ``py2p`` crate's ``ChordSocket``). A node leeches (stores and reads
through its peers) until it ``join``s and holds slots itself."""

from __future__ import absolute_import

import weakref

from . import _core
from .base import protocol
from .mesh import mesh_socket
from .utils import _pop_key

default_protocol = protocol('chord', "Plaintext")


def _key(key):
    """py2p's key (and value) coercion: bytes as they are, anything else ``str(x)``."""
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    return str(key).encode()


class chord_socket(mesh_socket):
    """A distributed hash table (py2p's ``chord.chord_socket``): a value is stored in the
    five slots its key hashes to, and read as the value three of them agree on."""

    def __init__(self, addr, port, prot=default_protocol, out_addr=None, debug_level=0):
        super(chord_socket, self).__init__(addr, port, prot, out_addr, debug_level)

    def _start(self, ip, port, advertised):
        return _core.Node.chord_node(
            ip, port, str(self.protocol[0]), str(self.protocol[1]), advertised,
            weakref.ref(self))

    def join(self):
        """Starts holding slots: peers hand this node the slots it now holds."""
        self._node.chord_join()

    def unjoin(self):
        """Stops holding slots; they go to the other joined nodes."""
        self._node.chord_unjoin()

    def __getitem__(self, key, timeout=10):
        """The value at ``key``.

        Raises:
            KeyError: no three of the key's five slots agree on a value within ``timeout``
        """
        value = self._node.chord_get(_key(key), float(timeout))
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key, ifError=None, timeout=10):
        """The value at ``key``, or ``ifError``"""
        try:
            return self.__getitem__(key, timeout=timeout)
        except KeyError:
            return ifError

    def __setitem__(self, key, value):
        """Stores ``value`` at ``key`` in its five slots; an empty value deletes."""
        self._node.chord_set(_key(key), _key(value))

    def set(self, key, value):
        """Same as ``self[key] = value``"""
        return self.__setitem__(key, value)

    def __delitem__(self, key):
        """Deletes ``key``.

        Raises:
            KeyError: this node does not know the key
        """
        key = _key(key)
        if key not in set(self._node.chord_keys()):
            raise KeyError(key)
        self._node.chord_delete(key)

    def update(self, update_dict):
        """Stores every pair of ``update_dict``"""
        for key, value in update_dict.items():
            self[key] = value

    def keys(self):
        """The keys this node knows of (set here, or announced by peers)"""
        return iter(self._node.chord_keys())

    def __iter__(self):
        return self.keys()

    def values(self):
        """The value of every key (a lookup each)"""
        return (self[key] for key in self.keys())

    def items(self):
        """``(key, value)`` of every key (a lookup each)"""
        return ((key, self[key]) for key in self.keys())

    def pop(self, key, *args):
        """The value at ``key``, which is then deleted; ``args[0]`` when it has none
        (else ``KeyError``)."""
        return _pop_key(self, key, args)

    def copy(self):
        """A ``dict`` of the table (a lookup per key)"""
        return dict(self.items())


__all__ = ['chord_socket', 'default_protocol']
