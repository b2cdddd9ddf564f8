"""py2p's ``utils``: small helpers (pure Python, as in py2p 0.5.607)."""

from __future__ import print_function

import calendar
import socket
import time


def inherit_doc(function):
    """A decorator which would inherit docstrings; here it leaves the function as it is."""
    return lambda x: x


def _pop_key(table, key, args):
    """``table.pop(key, *args)`` for the dict-like tables (sync, chord): the value at ``key``,
    which is then deleted; ``args[0]`` when it has none (else ``KeyError``)."""
    if args:
        ret = table.get(key, args[0])
        if ret != args[0]:
            del table[key]
    else:
        ret = table[key]
        del table[key]
    return ret


def sanitize_packet(packet):
    """A packet as bytes: ``str`` as UTF-8, ``bytes``/``bytearray`` as they are, anything
    else through ``encode('raw_unicode_escape')``."""
    if isinstance(packet, str):
        return packet.encode('utf-8')
    elif not isinstance(packet, (bytes, bytearray)):
        return packet.encode('raw_unicode_escape')
    return packet


def intersect(*args):
    """The items of the first iterable that are in the others, in its order, as a tuple;
    ``()`` if any argument is empty.

    This keeps py2p 0.5.607's quirk: its generators bind the loop variable late, so with
    three or more arguments only the last one filters
    (``intersect([1, 2, 3], [1], [1, 2, 3]) == (1, 2, 3)``).
    """
    if not all(args):
        return ()
    intersection = args[0]
    for l in args[1:]:
        intersection = (item for item in intersection if item in l)
    return tuple(intersection)


def get_lan_ip():
    """The LAN address, found as py2p finds it: the source address of a UDP socket
    "connected" to a public address (no packet is sent); ``'127.0.0.1'`` when that fails.
    As in py2p, on a machine with no route the ``shutdown`` of the unconnected socket raises.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(('8.8.8.8', 23))
        IP = s.getsockname()[0]
    except Exception:
        IP = '127.0.0.1'
    finally:
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()
    return IP


def getUTC():
    """The current Unix time in whole seconds."""
    return calendar.timegm(time.gmtime())


__all__ = ['inherit_doc', 'sanitize_packet', 'intersect', 'get_lan_ip', 'getUTC']
