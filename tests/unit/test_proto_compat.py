"""Lars-only wire fields are invisible to original peers (spec section 3: new optional
fields with new numbers only).

tests/data/lars_original.proto is the message set original Lars peers are built from,
without HostInfo.weight (3). It is compiled here with protoc into a separate descriptor
pool, so the "original parser" below is a real protobuf parser that lacks the field,
as the C++ agent's generated code does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st

from lars.protocol import lars_pb2

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("proto") / "original.pb"
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{DATA}",
         f"--descriptor_set_out={out}", "lars_original.proto"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    names = ("HostInfo", "GetRouteResponse", "GetHostResponse")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"lars.{n}"))
            for n in names}  # fmt: skip


def test_the_original_descriptor_has_no_weight(original: dict[str, Any]) -> None:
    assert [f.name for f in original["HostInfo"].DESCRIPTOR.fields] == ["ip", "port"]
    assert "weight" in lars_pb2.HostInfo.DESCRIPTOR.fields_by_name


def test_an_original_parser_reads_a_response_with_weights_and_ignores_them(
    original: dict[str, Any],
) -> None:
    ours = lars_pb2.GetRouteResponse(modid=7, cmdid=9)
    ours.host.add(ip=-1062731343, port=9000, weight=5)
    ours.host.add(ip=167772161, port=80)  # default weight: field absent
    ours.host.add(ip=2, port=81, weight=1000)
    body = ours.SerializeToString()
    parsed = original["GetRouteResponse"].FromString(body)
    assert (parsed.modid, parsed.cmdid) == (7, 9)
    assert [(h.ip, h.port) for h in parsed.host] == [
        (-1062731343, 9000), (167772161, 80), (2, 81)
    ]  # fmt: skip
    # the unknown field is skipped, not an error, and the known ones are intact
    assert parsed.host[0].ListFields()[0][1] == -1062731343


@given(
    hosts=st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 65535)), max_size=20),
    modid=st.integers(0, 2**31 - 1),
    cmdid=st.integers(0, 2**31 - 1),
)
def test_default_weight_responses_are_byte_identical_to_the_originals(
    original: dict[str, Any], hosts: list[tuple[int, int]], modid: int, cmdid: int
) -> None:
    ours = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid)
    theirs = original["GetRouteResponse"](modid=modid, cmdid=cmdid)
    for ip, port in hosts:
        ours.host.add(ip=ip, port=port)  # weight left unset, as the route service does
        theirs.host.add(ip=ip, port=port)
    assert ours.SerializeToString() == theirs.SerializeToString()
