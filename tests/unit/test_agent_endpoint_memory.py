"""ShardEndpoint keeps no decoding state across datagrams (issue 19, item 1).

The RSS proof is tests/e2e/test_unknown_fields_memory.py; these check the two
structural reasons in-process: no protobuf message lives on the endpoint between
datagrams (with upb a reused message kept every parse's unknown fields), and the
report parse cache keeps only small datagrams, so 8,192 cached 60 kB reports cannot
pin 500 MB.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from lars.agent import endpoint as endpoint_mod
from lars.agent.config import BalancerConfig
from lars.agent.endpoint import ShardEndpoint
from lars.agent.shard import Shard
from lars.protocol import MsgId, RetCode, lars_pb2
from lars.reactor import decode_datagram, encode

PEER = ("127.0.0.1", 4242)
UNKNOWN = b"\x78\x01"  # field 15, varint 1: a newer client's extra optional field
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def make() -> tuple[ShardEndpoint, Transport]:
    shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=10)
    ep = ShardEndpoint(shard, caller=1, clock=lambda: 0.0, wall=lambda: 0.0)
    transport = Transport()
    ep.transport = transport  # type: ignore[assignment]
    shard.get_host(3, 0, 0.0)
    shard.on_route(3, 0, [(-1, 80)], 0.0)
    return ep, transport


def big(n: int) -> bytes:
    """An unknown length-delimited field 14 of n (< 2**14) bytes."""
    return b"\x72" + bytes([(n & 0x7F) | 0x80, n >> 7]) + b"x" * n


def test_no_message_object_is_kept_between_datagrams() -> None:
    ep, transport = make()
    get_host = lars_pb2.GetHostRequest(seq=1, modid=3, cmdid=0).SerializeToString()
    route = lars_pb2.GetRouteRequest(modid=3, cmdid=0).SerializeToString()
    report = lars_pb2.ReportRequest(modid=3, cmdid=0, host=lars_pb2.HostInfo(ip=-1, port=80))
    for msgid, body in (
        (MsgId.GET_HOST_REQUEST, get_host + big(9000)),
        (MsgId.API_GET_ROUTE_REQUEST, route + big(9000)),
        (MsgId.REPORT_REQUEST, report.SerializeToString() + big(9000)),
    ):
        ep.datagram_received(encode(int(msgid), body), PEER)
    assert len(transport.sent) == 2 and ep.bad_bodies == 0
    assert ep.shard.stats().reports == 1
    held = [name for name, v in vars(ep).items() if isinstance(v, Message)]
    assert held == []


def test_a_newer_clients_unknown_field_is_answered_as_before() -> None:
    ep, transport = make()
    body = lars_pb2.GetHostRequest(seq=7, modid=3, cmdid=0).SerializeToString()
    ep.datagram_received(encode(int(MsgId.GET_HOST_REQUEST), body + UNKNOWN), PEER)
    msgid, rsp_body = decode_datagram(transport.sent[0])
    rsp = lars_pb2.GetHostResponse.FromString(rsp_body)
    assert (msgid, rsp.seq, rsp.retcode, rsp.host.port) == (
        MsgId.GET_HOST_RESPONSE, 7, RetCode.SUCC, 80
    )  # fmt: skip


def test_large_reports_are_counted_but_never_cached() -> None:
    ep, _ = make()
    report = lars_pb2.ReportRequest(modid=3, cmdid=0, host=lars_pb2.HostInfo(ip=-1, port=80))
    base = report.SerializeToString()
    for i in range(50):
        data = encode(int(MsgId.REPORT_REQUEST), base + big(1000 + i))
        ep.datagram_received(data, PEER)
    assert ep.shard.stats().reports == 50
    assert ep._reports == {}
    small = encode(int(MsgId.REPORT_REQUEST), base + UNKNOWN)
    ep.datagram_received(small, PEER)
    assert list(ep._reports) == [small]  # small ones still skip protobuf next time


@given(modid=INT32, cmdid=INT32, ip=INT32, port=INT32, retcode=INT32)
def test_every_report_a_client_can_send_fits_the_cache(
    modid: int, cmdid: int, ip: int, port: int, retcode: int
) -> None:
    """The cache's size bound excludes only datagrams no Lars client sends."""
    host = lars_pb2.HostInfo(ip=ip, port=port)
    body = lars_pb2.ReportRequest(modid=modid, cmdid=cmdid, host=host, retcode=retcode)
    frame = encode(int(MsgId.REPORT_REQUEST), body.SerializeToString())
    assert len(frame) <= endpoint_mod._REPORT_CACHE_MAX_BYTES
