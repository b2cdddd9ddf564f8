"""py2p's ``base``: flags, compression, base-58, protocols and messages.

The wire format (base-58, compression, message encoding and parsing, ids and checksums) is
the Rust crate ``py2p-wire``; this module gives it py2p 0.5.607's names and types.
"""

from __future__ import absolute_import
from __future__ import print_function

import hashlib
import json
import struct

from collections import namedtuple

from . import _core
from .utils import getUTC, intersect, get_lan_ip, sanitize_packet

protocol_version = "0.5"
node_policy_version = "607"

version = '.'.join((protocol_version, node_policy_version))


class flags():
    """A namespace to hold protocol-defined flags"""
    # Reserved set of bytes
    reserved = [struct.pack('!B', x) for x in range(0x30)]

    # main flags
    broadcast = b'\x00'     # also sub-flag
    renegotiate = b'\x01'
    whisper = b'\x02'       # also sub-flag
    ping = b'\x03'          # Unused, but reserved
    pong = b'\x04'          # Unused, but reserved

    # sub-flags
    compression = b'\x01'
    handshake = b'\x05'
    notify = b'\x06'
    peers = b'\x07'
    request = b'\x08'
    resend = b'\x09'
    response = b'\x0A'
    store = b'\x0B'
    retrieve = b'\x0C'
    retrieved = b'\x0D'

    # implemented compression methods
    bz2 = b'\x10'
    gzip = b'\x11'
    lzma = b'\x12'
    zlib = b'\x13'
    snappy = b'\x20'

    # non-implemented compression methods (based on list from compressjs):
    bwtc = b'\x14'
    context1 = b'\x15'
    defsum = b'\x16'
    dmc = b'\x17'
    fenwick = b'\x18'
    huffman = b'\x19'
    lzjb = b'\x1A'
    lzjbr = b'\x1B'
    lzp3 = b'\x1C'
    mtf = b'\x1D'
    ppmd = b'\x1E'
    simple = b'\x1F'


# In order of preference, as py2p with python-snappy installed: all five are built in.
compression = list(_core.compression_flags())

json_compressions = json.dumps([method.decode() for method in compression])


def compress(msg, method):
    """``msg`` compressed with ``method`` (a compression flag); ``ValueError`` for an
    unknown method."""
    return _core.compress(bytes(msg), method)


def decompress(msg, method):
    """``msg`` decompressed with ``method`` (a compression flag); ``ValueError`` for an
    unknown method or data that does not decompress."""
    return _core.decompress(bytes(msg), method)


def pack_value(l, i):
    """For value i, pack it into bytes of size length

    Raises:
        ValueError: If length is not large enough to contain the value provided
    """
    ret = b""
    for x in range(l):
        ret = bytes([i & 0xFF]) + ret
        i = i >> 8
        if i == 0:
            break
    if i:
        raise ValueError("Value not allocatable in size given")
    return (b"\x00" * (l - len(ret))) + ret


def unpack_value(string):
    """The big-endian unsigned integer in a string or bytes-like object."""
    if not isinstance(string, (bytes, bytearray)):
        string = bytes(string, 'raw_unicode_escape')
    return int.from_bytes(string, 'big')


base_58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'


def to_base_58(i):
    """The base-58 text (as bytes) of the integer ``i``; ``TypeError`` for a non-integer."""
    if not isinstance(i, int):
        raise TypeError("to_base_58 takes an integer, not %s" % type(i).__name__)
    if i < 0:
        raise ValueError("to_base_58 takes a non-negative integer")
    return _core.b58_encode(i.to_bytes((i.bit_length() + 7) // 8, 'big'))


def from_base_58(string):
    """The integer a base-58 text (str, bytes or bytearray) stands for; ``ValueError`` on a
    character outside the alphabet."""
    if isinstance(string, str):
        string = string.encode()
    return int.from_bytes(_core.b58_decode(bytes(string)), 'big')


class protocol(namedtuple("protocol", ['subnet', 'encryption'])):
    """Defines service variables so that you can reject connections looking
    for a different service

    Attributes:
        subnet:     The subnet flag this protocol uses
        encryption: The encryption method this protocol uses
        id:         The SHA-256 based ID of this protocol
    """
    __slots__ = ()

    @property
    def id(self):
        """The SHA-256-based ID of the protocol"""
        if self[1] in ("Plaintext", "SSL"):
            return _core.protocol_id(str(self[0]), str(self[1]))
        # py2p names any encryption in a protocol (a node refuses an unknown one): the id
        # is its formula over the raw strings.
        digest = hashlib.sha256(''.join(
            (str(self[0]), str(self[1]), protocol_version)).encode()).hexdigest()
        return to_base_58(int(digest, 16))


default_protocol = protocol('', "Plaintext")


class InternalMessage(object):
    """An object used to build and parse protocol-defined message structures
    (encoding, parsing and ids by ``py2p-wire``)."""

    @classmethod
    def feed_string(cls, string, sizeless=False, compressions=None):
        """Constructs an InternalMessage from a frame (or, with ``sizeless``, a frame body)
        which may be compressed with any of ``compressions``.

        Raises:
            ValueError: a wrong size header, packet header or checksum
        """
        if not isinstance(string, (bytes, bytearray)):
            string = string.encode()
        methods = list(intersect(compressions, compression))
        msg_type, sender, payload, time = _core.decode_message(
            bytes(string), bool(sizeless), methods)
        msg = cls(msg_type, sender, payload, compression=compressions,
                  timestamp=time)
        msg.compression_fail = False
        return msg

    def __init__(self, msg_type, sender, payload, compression=None,
                 timestamp=None):
        self.msg_type = sanitize_packet(msg_type)
        self.sender = sanitize_packet(sender)
        self.__payload = tuple(sanitize_packet(packet) for packet in payload)
        self.time = timestamp or getUTC()
        self.compression_fail = False
        self.compression = compression if compression else []

    @property
    def payload(self):
        """The payload packets as a tuple of bytes"""
        return self.__payload

    @property
    def compression_used(self):
        """The compression this message uses: the first of ours that it allows"""
        for method in intersect(compression, self.compression):
            return method
        return None

    @property
    def time_58(self):
        """This message's timestamp in base_58"""
        return to_base_58(self.time)

    @property
    def id(self):
        """The message id"""
        return _core.message_id(self.__payload, self.time)

    @property
    def packets(self):
        """All packets: type, sender, id, time_58, then the payload"""
        return ((self.msg_type, self.sender, self.id, self.time_58) +
                self.payload)

    @property
    def string(self):
        """The whole frame, size header included"""
        return _core.encode_message(self.msg_type, self.sender, self.__payload,
                                    self.time, self.compression_used)

    def __len__(self):
        return len(self.string) - 4

    @property
    def len(self):
        """The struct-encoded length header"""
        return pack_value(4, self.__len__())


class message(object):
    """A message as users get it: ``packets`` (the sub-flag first), ``sender``, ``id``,
    ``time``, ``time_58``, ``reply``.

    Messages received from the network are ``py2p_rs._core.message`` objects with the same
    attributes; this class wraps an :class:`InternalMessage` built in Python.
    """
    def __init__(self, msg, server):
        self.msg = msg
        self.server = server

    @property
    def time(self):
        """The time this message was sent at"""
        return self.msg.time

    @property
    def time_58(self):
        """The time in base_58"""
        return self.msg.time_58

    @property
    def sender(self):
        """The ID of this message's sender"""
        return self.msg.sender

    @property
    def id(self):
        """The message id"""
        return self.msg.id

    @property
    def packets(self):
        """The payload packets"""
        return self.msg.payload

    @property
    def protocol(self):
        """The protocol of the socket that received it"""
        return self.server.protocol if self.server is not None else None

    def __len__(self):
        return self.msg.__len__()

    def __repr__(self):
        packets = self.packets
        return "message(type={}, packets={}, sender={})".format(
            packets[0], packets[1:], self.sender)

    def reply(self, *args):
        """Whispers ``args`` back to the sender"""
        self.server.send_to(self.sender, *args)


__all__ = ['flags', 'compression', 'json_compressions', 'compress', 'decompress',
           'pack_value', 'unpack_value', 'to_base_58', 'from_base_58', 'protocol',
           'default_protocol', 'InternalMessage', 'message', 'intersect', 'getUTC',
           'get_lan_ip', 'version', 'protocol_version', 'node_policy_version']
