"""Hand-encoded GetHostResponse frames for the agent's hot path.

A GetHostResponse is the same bytes for every answer of one host except `seq`, so the
agent encodes the module part (modid, cmdid) and the host part once and joins them
with the seq varint per answer. The output is byte-for-byte what protobuf's
SerializeToString gives (fields in number order, zero scalars omitted, negative int32
as 10-byte varints); tests/unit/test_agent_wire.py checks that with hypothesis.
"""

from __future__ import annotations

import struct

__all__ = ["get_host_response", "host_part", "module_part", "uvarint"]

_pack_header = struct.Struct("<ii").pack
_GET_HOST_RESPONSE = 5
_U64 = 1 << 64


def _uvarint_slow(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [_uvarint_slow(i) for i in range(1 << 14)]


def uvarint(value: int) -> bytes:
    """Varint of a non-negative integer below 2**64."""
    return _SMALL[value] if value < 16384 else _uvarint_slow(value)


def _int32_field(tag: int, value: int) -> bytes:
    if value == 0:
        return b""
    return bytes((tag,)) + uvarint(value + _U64 if value < 0 else value)


def module_part(modid: int, cmdid: int) -> bytes:
    """Fields 2 (modid) and 3 (cmdid)."""
    return _int32_field(0x10, modid) + _int32_field(0x18, cmdid)


def host_part(ip: int, port: int) -> bytes:
    """Field 5: the HostInfo submessage (ip, port as the wire's int32)."""
    inner = _int32_field(0x08, ip) + _int32_field(0x10, port)
    return b"\x2a" + uvarint(len(inner)) + inner


def get_host_response(seq: int, module: bytes, retcode: int, host: bytes, reason: int = 0) -> bytes:
    """A whole frame (header + body); `host` is b"" when the answer carries no host.

    `reason` is the lars-only field 6 (a NoHostReason); 0 is omitted, so the bytes are
    then exactly an original agent's.
    """
    body = b"".join(
        (
            b"\x08" + uvarint(seq) if seq else b"",
            module,
            _int32_field(0x20, retcode),
            host,
        )
    )
    if reason:  # only NOEXIST answers pay for field 6
        body += b"\x30" + uvarint(reason)
    return _pack_header(_GET_HOST_RESPONSE, len(body)) + body
