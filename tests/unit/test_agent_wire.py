"""The hand-encoded GetHostResponse equals protobuf's own encoding, byte for byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lars.agent.wire import get_host_response, host_part, module_part, uvarint
from lars.protocol import lars_pb2
from lars.reactor import decode_datagram, encode

int32 = st.integers(-(2**31), 2**31 - 1)
uint32 = st.integers(0, 2**32 - 1)


@given(seq=uint32, modid=int32, cmdid=int32, retcode=int32, ip=int32, port=int32)
def test_matches_protobuf_with_host(
    seq: int, modid: int, cmdid: int, retcode: int, ip: int, port: int
) -> None:
    msg = lars_pb2.GetHostResponse(seq=seq, modid=modid, cmdid=cmdid, retcode=retcode)
    msg.host.ip = ip
    msg.host.port = port
    got = get_host_response(seq, module_part(modid, cmdid), retcode, host_part(ip, port))
    assert got == encode(5, msg.SerializeToString())


@given(seq=uint32, modid=int32, cmdid=int32, retcode=int32)
def test_matches_protobuf_without_host(seq: int, modid: int, cmdid: int, retcode: int) -> None:
    msg = lars_pb2.GetHostResponse(seq=seq, modid=modid, cmdid=cmdid, retcode=retcode)
    got = get_host_response(seq, module_part(modid, cmdid), retcode, b"")
    assert got == encode(5, msg.SerializeToString())
    _, body = decode_datagram(got)
    assert not lars_pb2.GetHostResponse.FromString(body).HasField("host")


@given(st.integers(0, 2**64 - 1))
def test_uvarint_boundaries(value: int) -> None:
    data = uvarint(value)
    assert len(data) == max(1, (value.bit_length() + 6) // 7)
    assert all(b & 0x80 for b in data[:-1]) and not data[-1] & 0x80
