"""The Lars wire: generated protobuf messages, message ids, return codes, IPv4 helpers."""

from lars.protocol import echo_pb2, lars_pb2
from lars.protocol.ids import MsgId, NoHostReason, RetCode
from lars.protocol.ipv4 import (
    dotted_to_uint,
    dotted_to_wire,
    uint_to_dotted,
    uint_to_wire,
    wire_to_dotted,
    wire_to_uint,
)

__all__ = [
    "MsgId",
    "NoHostReason",
    "RetCode",
    "dotted_to_uint",
    "dotted_to_wire",
    "echo_pb2",
    "lars_pb2",
    "uint_to_dotted",
    "uint_to_wire",
    "wire_to_dotted",
    "wire_to_uint",
]
