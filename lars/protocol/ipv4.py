"""IPv4 conversions between the three forms lars meets (spec section 3).

- dotted string "192.168.1.177", what people read and type;
- unsigned int 3232235953, what the database stores;
- signed int32 -1062731343, what travels in the protobuf int32 fields.

Conversion happens at the edges only, so a sign bug never reaches a user. Every dotted
address lars reads (CLI, console, JSON API, config, cache) is parsed here, by the stdlib
`ipaddress` rules: exactly four decimal octets 0..255, no leading zeros ("010.0.0.1" is
refused rather than read as 10.0.0.1 or, as inet_aton would, as octal 8.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from lars.errors import ValidationError

__all__ = [
    "dotted_to_uint",
    "dotted_to_wire",
    "uint_to_dotted",
    "uint_to_wire",
    "wire_to_dotted",
    "wire_to_uint",
]

_U32 = struct.Struct("!I")


def dotted_to_uint(text: str) -> int:
    """Parse a dotted-quad IPv4 address; raise ValidationError when it is not one."""
    if not isinstance(text, str):
        raise ValidationError(f"not a dotted IPv4 address: {text!r}")
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise ValidationError(f"not a dotted IPv4 address: {text!r} ({exc})") from None


def uint_to_dotted(value: int) -> str:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValidationError(f"IPv4 value out of range: {value}")
    return socket.inet_ntoa(_U32.pack(value))


def uint_to_wire(value: int) -> int:
    """Unsigned 32-bit address -> the two's complement int32 the wire carries."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValidationError(f"IPv4 value out of range: {value}")
    return value - 0x100000000 if value >= 0x80000000 else value


def wire_to_uint(value: int) -> int:
    """The wire's int32 (or an already unsigned value) -> unsigned 32-bit address."""
    if not -0x80000000 <= value <= 0xFFFFFFFF:
        raise ValidationError(f"IPv4 value out of range: {value}")
    return value & 0xFFFFFFFF


def dotted_to_wire(text: str) -> int:
    return uint_to_wire(dotted_to_uint(text))


def wire_to_dotted(value: int) -> str:
    return uint_to_dotted(wire_to_uint(value))
