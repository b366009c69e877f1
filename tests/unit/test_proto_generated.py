"""The committed protobuf modules are protoc's output, and the fields are spec section 3's
(plus the lars-only optional fields; tests/unit/test_proto_compat.py shows original
peers ignore them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from lars.protocol import MsgId, RetCode, echo_pb2, lars_pb2

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ["lars_pb2.py", "lars_pb2.pyi", "echo_pb2.py", "echo_pb2.pyi"]

F = FieldDescriptor
INT32, UINT32, BOOL, STRING, MESSAGE = (
    F.TYPE_INT32,
    F.TYPE_UINT32,
    F.TYPE_BOOL,
    F.TYPE_STRING,
    F.TYPE_MESSAGE,
)

# Spec section 3: message -> [(field, number, type, repeated?, message type)]
SPEC: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "HostInfo": [
        ("ip", 1, INT32, False, None),
        ("port", 2, INT32, False, None),
        ("weight", 3, UINT32, False, None),  # lars only (issue 13); original peers skip it
    ],
    "GetRouteRequest": [("modid", 1, INT32, False, None), ("cmdid", 2, INT32, False, None)],
    "GetRouteResponse": [
        ("modid", 1, INT32, False, None),
        ("cmdid", 2, INT32, False, None),
        ("host", 3, MESSAGE, True, "lars.HostInfo"),
        ("version", 4, UINT32, False, None),  # lars only (issue 22); original peers skip it
        ("registrations", 5, BOOL, False, None),  # lars only (issue 20)
    ],
    "HostCallResult": [
        ("ip", 1, INT32, False, None),
        ("port", 2, INT32, False, None),
        ("succ", 3, UINT32, False, None),
        ("err", 4, UINT32, False, None),
        ("overload", 5, BOOL, False, None),
    ],
    "ReportStatusRequest": [
        ("modid", 1, INT32, False, None),
        ("cmdid", 2, INT32, False, None),
        ("caller", 3, INT32, False, None),
        ("results", 4, MESSAGE, True, "lars.HostCallResult"),
        ("ts", 5, UINT32, False, None),
    ],
    "GetHostRequest": [
        ("seq", 1, UINT32, False, None),
        ("modid", 2, INT32, False, None),
        ("cmdid", 3, INT32, False, None),
    ],
    "GetHostResponse": [
        ("seq", 1, UINT32, False, None),
        ("modid", 2, INT32, False, None),
        ("cmdid", 3, INT32, False, None),
        ("retcode", 4, INT32, False, None),
        ("host", 5, MESSAGE, False, "lars.HostInfo"),
        ("reason", 6, UINT32, False, None),  # lars only (issue 12); original peers skip it
    ],
    "ReportRequest": [
        ("modid", 1, INT32, False, None),
        ("cmdid", 2, INT32, False, None),
        ("host", 3, MESSAGE, False, "lars.HostInfo"),
        ("retcode", 4, INT32, False, None),
    ],
    # lars only (issue 20, self-registration): messages original peers never receive.
    "Instance": [
        ("modid", 1, INT32, False, None),
        ("cmdid", 2, INT32, False, None),
        ("ip", 3, INT32, False, None),
        ("port", 4, INT32, False, None),
        ("check", 5, STRING, False, None),
        ("passing", 6, BOOL, False, None),
    ],
    "InstanceSync": [
        ("agent", 1, STRING, False, None),
        ("instances", 2, MESSAGE, True, "lars.Instance"),
        ("seq", 3, UINT32, False, None),
    ],
    "InstanceSyncAck": [("seq", 1, UINT32, False, None), ("lease", 2, UINT32, False, None)],
    "RegisterRequest": [
        ("seq", 1, UINT32, False, None),
        ("op", 2, UINT32, False, None),
        ("instance", 3, MESSAGE, False, "lars.Instance"),
        ("interval_ms", 4, UINT32, False, None),
        ("timeout_ms", 5, UINT32, False, None),
        ("fail_after", 6, UINT32, False, None),
        ("pass_after", 7, UINT32, False, None),
    ],
    "RegisterResponse": [
        ("seq", 1, UINT32, False, None),
        ("retcode", 2, INT32, False, None),
        ("detail", 3, STRING, False, None),
    ],
}


def fields_of(desc: Descriptor) -> list[tuple[str, int, int, bool, str | None]]:
    return [
        (
            f.name,
            f.number,
            f.type,
            f.is_repeated,
            f.message_type.full_name if f.message_type is not None else None,
        )
        for f in desc.fields
    ]


def test_regenerated_modules_are_byte_identical(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "lars.proto",
            "echo.proto",
        ],
        cwd=ROOT / "proto",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name in GENERATED:
        fresh = (tmp_path / name).read_bytes()
        committed = (ROOT / "lars" / "protocol" / name).read_bytes()
        assert fresh == committed, (
            f"lars/protocol/{name} is stale: regenerate it with "
            "python -m grpc_tools.protoc -Iproto --python_out=lars/protocol "
            "--pyi_out=lars/protocol proto/lars.proto proto/echo.proto"
        )


def test_package_and_syntax() -> None:
    assert lars_pb2.DESCRIPTOR.package == "lars"
    assert lars_pb2.DESCRIPTOR.name == "lars.proto"
    assert echo_pb2.DESCRIPTOR.package == "qps_test"


@pytest.mark.parametrize("message", sorted(SPEC))
def test_message_fields_match_spec_section_3(message: str) -> None:
    desc = lars_pb2.DESCRIPTOR.message_types_by_name[message]
    assert fields_of(desc) == SPEC[message]


def test_no_message_beyond_the_spec() -> None:
    assert set(lars_pb2.DESCRIPTOR.message_types_by_name) == set(SPEC)


def test_echo_message_matches_spec_section_10() -> None:
    desc = echo_pb2.DESCRIPTOR.message_types_by_name["EchoMessage"]
    assert fields_of(desc) == [("content", 1, STRING, False, None), ("id", 2, INT32, False, None)]


def test_message_id_enum_matches_msgid() -> None:
    enum = lars_pb2.DESCRIPTOR.enum_types_by_name["MessageId"]
    values = {v.name: v.number for v in enum.values}
    assert values.pop("ID_UNKNOWN") == 0
    assert sorted(values.values()) == [m.value for m in MsgId]
    assert values["ID_GetHostRequest"] == int(MsgId.GET_HOST_REQUEST) == 4
    assert values["ID_API_GetRouteResponse"] == int(MsgId.API_GET_ROUTE_RESPONSE) == 8
    assert values["ID_InstanceSync"] == int(MsgId.INSTANCE_SYNC) == 9
    assert values["ID_InstanceSyncAck"] == int(MsgId.INSTANCE_SYNC_ACK) == 10
    assert values["ID_RegisterRequest"] == int(MsgId.REGISTER_REQUEST) == 11
    assert values["ID_RegisterResponse"] == int(MsgId.REGISTER_RESPONSE) == 12


def test_ret_code_enum_matches_retcode() -> None:
    enum = lars_pb2.DESCRIPTOR.enum_types_by_name["LarsRetCode"]
    assert {v.name: v.number for v in enum.values} == {
        "RET_SUCC": RetCode.SUCC,
        "RET_OVERLOAD": RetCode.OVERLOAD,
        "RET_SYSTEM_ERROR": RetCode.SYSTEM_ERROR,
        "RET_NOEXIST": RetCode.NOEXIST,
    }
    assert [int(r) for r in RetCode] == [0, 1, 2, 3]


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int32 values are sign-extended to 64 bits."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_known_encoding_of_a_get_host_response() -> None:
    """The bytes a C++ peer produces for this message, built by hand from the wire format."""
    msg = lars_pb2.GetHostResponse(
        seq=1, modid=2, cmdid=3, retcode=0, host=lars_pb2.HostInfo(ip=-1062731343, port=80)
    )
    host = b"\x08" + varint(-1062731343) + b"\x10" + varint(80)
    assert len(varint(-1062731343)) == 10
    expected = b"\x08\x01\x10\x02\x18\x03" + b"\x2a" + bytes([len(host)]) + host
    assert msg.SerializeToString() == expected
    assert lars_pb2.GetHostResponse.FromString(expected) == msg


def test_empty_body_parses_to_all_defaults() -> None:
    req = lars_pb2.GetRouteRequest.FromString(b"")
    assert (req.modid, req.cmdid) == (0, 0)
    assert lars_pb2.GetHostResponse().SerializeToString() == b""
