"""py2p 0.5.607's Python API on the Rust implementation of the py2p protocol.

``import py2p_rs as py2p`` is meant to be the whole migration: the modules ``base``, ``mesh``,
``sync`` and ``utils`` have py2p's names and behaviour, while the network (the event loop,
connections, the wire format, the waterfall, the sync table) is the Rust core in
``py2p_rs._core``. Each socket runs its event loop on a native thread that takes the GIL only
to call a Python handler.
"""

from .base import protocol, version
from .mesh import mesh_socket

__version__ = version
version_info = tuple(map(int, __version__.split(".")))


def bootstrap(socket_type, proto, addr, port, *args, **kargs):
    """Not implemented, as in py2p 0.5.607."""
    raise NotImplementedError


__all__ = ["mesh", "sync", "chord", "base", "utils"]
