"""GetHostResponse.reason (field 6, lars only) is invisible to original Lars peers.

The "original parser" is built by protoc from tests/data/lars_original.proto (the
message set original peers are compiled from, without the field); see
tests/unit/test_proto_compat.py, whose fixture this reuses.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lars.agent.wire import get_host_response, host_part, module_part
from lars.client.core import ClientCore
from lars.protocol import NoHostReason, RetCode, lars_pb2
from lars.reactor import decode_datagram, encode
from tests.unit.test_proto_compat import original  # noqa: F401  (the fixture)

int32 = st.integers(-(2**31), 2**31 - 1)
uint32 = st.integers(0, 2**32 - 1)
reasons = st.sampled_from([int(r) for r in NoHostReason])


def test_the_original_descriptor_has_no_reason(original: dict[str, Any]) -> None:  # noqa: F811
    fields = [f.name for f in original["GetHostResponse"].DESCRIPTOR.fields]
    assert fields == ["seq", "modid", "cmdid", "retcode", "host"]
    assert lars_pb2.GetHostResponse.DESCRIPTOR.fields_by_name["reason"].number == 6


@given(seq=uint32, modid=int32, cmdid=int32, reason=reasons)
def test_an_original_parser_reads_our_noexist_answer_and_skips_the_reason(
    original: dict[str, Any],  # noqa: F811
    seq: int,
    modid: int,
    cmdid: int,
    reason: int,
) -> None:
    frame = get_host_response(seq, module_part(modid, cmdid), int(RetCode.NOEXIST), b"", reason)
    _, body = decode_datagram(frame)
    theirs = original["GetHostResponse"].FromString(body)
    assert (theirs.seq, theirs.modid, theirs.cmdid, theirs.retcode) == (
        seq,
        modid,
        cmdid,
        int(RetCode.NOEXIST),
    )
    assert not theirs.HasField("host")
    # and our own parser sees the reason
    assert lars_pb2.GetHostResponse.FromString(body).reason == reason


@given(seq=uint32, modid=int32, cmdid=int32, retcode=int32, ip=int32, port=int32)
def test_without_a_reason_the_bytes_are_the_originals(
    original: dict[str, Any],  # noqa: F811
    seq: int,
    modid: int,
    cmdid: int,
    retcode: int,
    ip: int,
    port: int,
) -> None:
    theirs = original["GetHostResponse"](seq=seq, modid=modid, cmdid=cmdid, retcode=retcode)
    theirs.host.ip, theirs.host.port = ip, port
    ours = get_host_response(seq, module_part(modid, cmdid), retcode, host_part(ip, port), 0)
    assert ours == encode(5, theirs.SerializeToString())
    bare = original["GetHostResponse"](seq=seq, modid=modid, cmdid=cmdid, retcode=retcode)
    assert get_host_response(seq, module_part(modid, cmdid), retcode, b"") == encode(
        5, bare.SerializeToString()
    )


@given(seq=uint32, modid=int32, cmdid=int32, reason=reasons)
def test_the_hand_encoding_with_a_reason_is_protobufs(
    seq: int, modid: int, cmdid: int, reason: int
) -> None:
    msg = lars_pb2.GetHostResponse(seq=seq, modid=modid, cmdid=cmdid, retcode=3, reason=reason)
    got = get_host_response(seq, module_part(modid, cmdid), 3, b"", reason)
    assert got == encode(5, msg.SerializeToString())


def test_the_client_reads_the_reason_and_says_it() -> None:
    core = ClientCore()
    request = core.host_request(1, 2)
    reason = int(NoHostReason.ROUTE_SERVICE_UNREACHABLE)
    reply = get_host_response(request.seq, module_part(1, 2), 3, b"", reason)
    result = core.match_host(request, reply)
    assert result is not None and result.reason == reason
    assert result.why == "NOEXIST (the agent cannot reach the route service)"
    plain = core.match_host(request, get_host_response(request.seq, module_part(1, 2), 3, b""))
    assert plain is not None and (plain.reason, plain.why) == (0, "NOEXIST")
