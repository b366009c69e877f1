"""The client's sans-I/O core: request bytes, shard rule, reply matching, report outcome."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.client.config import ClientConfig
from lars.client.core import FAILURE_RETCODE, MAX_ID, ClientCore, report_code_for, shard_of
from lars.client.result import Host, HostResult, NoHostError
from lars.errors import ConfigError, ValidationError
from lars.protocol import MsgId, RetCode, dotted_to_wire, lars_pb2
from lars.reactor.frame import decode_datagram, encode

ids = st.integers(0, MAX_ID)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ports = st.integers(1, 65535)


def host_reply(
    seq: int, modid: int, cmdid: int, retcode: int = 0, ip: str = "10.0.0.1", port: int = 80
) -> bytes:
    msg = lars_pb2.GetHostResponse(seq=seq, modid=modid, cmdid=cmdid, retcode=retcode)
    msg.host.ip = dotted_to_wire(ip)
    msg.host.port = port
    return encode(MsgId.GET_HOST_RESPONSE, msg.SerializeToString())


def route_reply(modid: int, cmdid: int, hosts: list[tuple[str, int]]) -> bytes:
    msg = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid)
    for ip, port in hosts:
        msg.host.add(ip=dotted_to_wire(ip), port=port)
    return encode(MsgId.API_GET_ROUTE_RESPONSE, msg.SerializeToString())


@given(ids, ids)
def test_host_request_is_a_get_host_frame_with_a_fresh_seq(modid: int, cmdid: int) -> None:
    core = ClientCore()
    first = core.host_request(modid, cmdid)
    second = core.host_request(modid, cmdid)
    assert second.seq == (first.seq + 1) & 0xFFFFFFFF
    msgid, body = decode_datagram(second.datagram)
    assert msgid == MsgId.GET_HOST_REQUEST
    msg = lars_pb2.GetHostRequest.FromString(body)
    assert (msg.seq, msg.modid, msg.cmdid) == (second.seq, modid, cmdid)
    assert second.shard == (modid + cmdid) % 3 == shard_of(modid, cmdid)


def test_seq_wraps_at_32_bits() -> None:
    core = ClientCore(first_seq=0xFFFFFFFE)
    assert core.host_request(1, 1).seq == 0xFFFFFFFF
    assert core.host_request(1, 1).seq == 0


@given(ids, ids, ipv4, ports, st.integers(-(2**31), 2**31 - 1))
def test_report_datagram_carries_wire_ints(
    modid: int, cmdid: int, ip: str, port: int, retcode: int
) -> None:
    shard, datagram = ClientCore().report_datagram(modid, cmdid, ip, port, retcode)
    msgid, body = decode_datagram(datagram)
    assert msgid == MsgId.REPORT_REQUEST
    msg = lars_pb2.ReportRequest.FromString(body)
    assert (msg.modid, msg.cmdid, msg.retcode) == (modid, cmdid, retcode)
    assert (msg.host.ip, msg.host.port) == (dotted_to_wire(ip), port)
    assert shard == shard_of(modid, cmdid)


def test_high_addresses_travel_negative_and_come_back_dotted() -> None:
    core = ClientCore()
    _, datagram = core.report_datagram(1, 1, "192.168.1.177", 80, 0)
    assert lars_pb2.ReportRequest.FromString(decode_datagram(datagram)[1]).host.ip == -1062731343
    req = core.host_request(1, 1)
    result = core.match_host(req, host_reply(req.seq, 1, 1, ip="192.168.1.177", port=8080))
    assert result == HostResult(RetCode.SUCC, 1, 1, "192.168.1.177", 8080)
    assert str(result) == "192.168.1.177:8080"
    assert result.host == Host("192.168.1.177", 8080)


def test_route_request_frame() -> None:
    req = ClientCore().route_request(5, 7)
    msgid, body = decode_datagram(req.datagram)
    assert msgid == MsgId.API_GET_ROUTE_REQUEST
    msg = lars_pb2.GetRouteRequest.FromString(body)
    assert (msg.modid, msg.cmdid, req.shard) == (5, 7, 0)


@pytest.mark.parametrize(
    "modid,cmdid", [(-1, 1), (1, -1), (MAX_ID + 1, 1), (1, 2**32), (True, 1), (1.0, 1)]
)
def test_invalid_ids_raise(modid: int, cmdid: int) -> None:
    core = ClientCore()
    with pytest.raises(ValidationError):
        core.host_request(modid, cmdid)
    with pytest.raises(ValidationError):
        core.route_request(modid, cmdid)
    with pytest.raises(ValidationError):
        core.report_datagram(modid, cmdid, "1.2.3.4", 80, 0)


@pytest.mark.parametrize(
    "ip,port,retcode",
    [("1.2.3", 80, 0), ("1.2.3.256", 80, 0), ("x", 80, 0), ("1.2.3.4", 0, 0),
     ("1.2.3.4", 65536, 0), ("1.2.3.4", 80, 2**31)],
)  # fmt: skip
def test_invalid_report_arguments_raise(ip: str, port: int, retcode: int) -> None:
    with pytest.raises(ValidationError):
        ClientCore().report_datagram(1, 1, ip, port, retcode)


def test_matching_reply_is_accepted() -> None:
    core = ClientCore()
    req = core.host_request(3, 4)
    assert core.match_host(req, host_reply(req.seq, 3, 4)) == HostResult(
        RetCode.SUCC, 3, 4, "10.0.0.1", 80
    )
    assert core.skipped == core.bad == 0


def test_stale_and_foreign_replies_are_skipped_and_counted() -> None:
    core = ClientCore()
    old = core.host_request(3, 4)
    req = core.host_request(3, 4)
    assert core.match_host(req, host_reply(old.seq, 3, 4)) is None  # smaller seq: stale
    assert core.match_host(req, host_reply(req.seq, 9, 4)) is None  # other module
    assert core.match_host(req, host_reply(req.seq, 3, 9)) is None
    assert core.match_host(req, host_reply(req.seq + 5, 3, 4)) is None
    assert core.skipped == 4
    assert core.match_host(req, host_reply(req.seq, 3, 4)) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05\x00\x00",
        b"\x05\x00\x00\x00\x10\x00\x00\x00abc",  # msglen larger than the datagram
        b"\x05\x00\x00\x00\xff\xff\xff\xff",  # negative msglen
        encode(MsgId.GET_HOST_RESPONSE, b"\xff\xff\xff"),  # not protobuf
        encode(MsgId.API_GET_ROUTE_RESPONSE, b""),  # another message
    ],
)
def test_garbage_is_skipped_and_counted(data: bytes) -> None:
    core = ClientCore()
    req = core.host_request(1, 1)
    assert core.match_host(req, data) is None
    assert core.bad == 1


@given(st.binary(max_size=64))
def test_any_bytes_never_raise(data: bytes) -> None:
    core = ClientCore()
    host = core.match_host(core.host_request(1, 1), data)
    route = core.match_route(core.route_request(1, 1), data)
    assert host is None or isinstance(host, HostResult)
    assert (host is None) + (route is None) == core.bad + core.skipped


@pytest.mark.parametrize("code", list(RetCode))
def test_agent_retcodes_come_through(code: RetCode) -> None:
    core = ClientCore()
    req = core.host_request(1, 1)
    result = core.match_host(req, host_reply(req.seq, 1, 1, retcode=int(code)))
    assert result is not None and result.retcode is code
    assert result.ok == (code is RetCode.SUCC)


def test_unknown_retcode_or_bad_port_is_a_system_error() -> None:
    core = ClientCore()
    req = core.host_request(1, 1)
    result = core.match_host(req, host_reply(req.seq, 1, 1, retcode=42))
    assert result is not None and result.retcode is RetCode.SYSTEM_ERROR
    result = core.match_host(req, host_reply(req.seq, 1, 1, port=70000))
    assert result is not None and result.retcode is RetCode.SYSTEM_ERROR
    with pytest.raises(NoHostError, match=r"module 1:1: SYSTEM_ERROR"):
        _ = result.host


def test_route_matching() -> None:
    core = ClientCore()
    req = core.route_request(2, 3)
    assert core.match_route(req, route_reply(2, 4, [("1.1.1.1", 1)])) is None
    assert core.skipped == 1
    empty = core.match_route(req, route_reply(2, 3, []))
    assert empty is not None and empty.retcode is RetCode.NOEXIST and empty.hosts == ()
    full = core.match_route(req, route_reply(2, 3, [("1.1.1.1", 1), ("200.0.0.2", 65535)]))
    assert full is not None and full.ok
    assert full.hosts == (Host("1.1.1.1", 1), Host("200.0.0.2", 65535))


def test_failures_are_results() -> None:
    core = ClientCore()
    host = core.host_failure(core.host_request(1, 2), timed_out=True)
    assert (host.retcode, host.modid, host.cmdid, host.timed_out) == (
        RetCode.SYSTEM_ERROR,
        1,
        2,
        True,
    )
    assert "no answer" in str(NoHostError(host))
    route = core.route_failure(core.route_request(1, 2), timed_out=False)
    assert route.retcode is RetCode.SYSTEM_ERROR and not route.timed_out


class Boom(Exception):
    pass


def test_report_code_for() -> None:
    assert report_code_for(None, (Exception,)) == 0
    assert report_code_for(Boom(), (Exception,)) == FAILURE_RETCODE != 0
    assert report_code_for(ValueError(), (Boom,)) == 0  # the caller's own error
    assert report_code_for(Boom(), (Boom,)) == FAILURE_RETCODE
    assert report_code_for(KeyboardInterrupt(), (Exception,)) is None
    assert report_code_for(KeyboardInterrupt(), (BaseException,)) == FAILURE_RETCODE


def test_config() -> None:
    assert ClientConfig().addresses() == (
        ("127.0.0.1", 8888),
        ("127.0.0.1", 8889),
        ("127.0.0.1", 8890),
    )
    assert ClientConfig(agent_ip="10.0.0.1", base_port=9000).addresses()[2] == ("10.0.0.1", 9002)
    assert ClientConfig(ports=(5, 7, 9)).addresses()[1] == ("127.0.0.1", 7)
    for bad in ({"base_port": 0}, {"base_port": 65534}, {"timeout": 0}, {"ports": (1, 2)}):
        with pytest.raises(ConfigError):
            ClientConfig(**bad)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(-3, 1), st.integers(0, 3), st.integers(0, 3)), max_size=20),
)
def test_only_the_exact_reply_is_accepted(
    calls: list[tuple[int, int]], replies: list[tuple[int, int, int]]
) -> None:
    """Model: after several calls, a reply with seq offset d from the last request (d < 0:
    stale, d > 0: from the future) and any module is accepted iff d == 0 and the module
    is the last request's."""
    core = ClientCore(first_seq=0xFFFFFFFD)  # crosses the 32-bit wrap
    requests = [core.host_request(m, c) for m, c in calls]
    last = requests[-1]
    accepted = skipped = 0
    for offset, modid, cmdid in replies:
        seq = (last.seq + offset) & 0xFFFFFFFF
        result = core.match_host(last, host_reply(seq, modid, cmdid, port=1000 + modid))
        should = offset == 0 and (modid, cmdid) == (last.modid, last.cmdid)
        assert (result is not None) == should
        if result is not None:
            accepted += 1
            assert (result.modid, result.cmdid, result.port) == (modid, cmdid, 1000 + modid)
        else:
            skipped += 1
    assert core.skipped == skipped and core.bad == 0
