"""Fuzz every wire decoder from the committed corpus (issue 19 item 10): the frame
decoder, every protobuf message the daemons and the client accept, and the daemons'
entry points that take them. Each must answer with a clear error or a counted drop,
never crash. Runs in CI (the whole tests/fuzz directory in well under 60 s).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lars.agent.config import BalancerConfig
from lars.agent.endpoint import ShardEndpoint
from lars.agent.shard import Shard
from lars.client.core import ClientCore
from lars.dns.regserver import parse_sync
from lars.dns.server import RouteServer
from lars.dns.table import RouteTable
from lars.errors import FrameLengthError, ProtocolError
from lars.protocol import lars_pb2
from lars.reactor import decode_datagram
from lars.reactor.frame import HEADER, MAX_BODY, MAX_FRAME, FrameDecoder
from lars.reporter.intake import INT32_MAX, parse_report, rows_from_report
from tests.fuzz.seeds import examples, mutated, seeds

FUZZ = settings(
    max_examples=examples(1000), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip

MESSAGES = [
    lars_pb2.GetRouteRequest, lars_pb2.GetRouteResponse, lars_pb2.ReportStatusRequest,
    lars_pb2.GetHostRequest, lars_pb2.GetHostResponse, lars_pb2.ReportRequest,
    lars_pb2.InstanceSync, lars_pb2.InstanceSyncAck, lars_pb2.RegisterRequest,
    lars_pb2.RegisterResponse,
]  # fmt: skip


def test_the_corpus_is_committed() -> None:
    for kind in ("frames", "bodies", "streams"):
        assert len(seeds(kind)) >= 3, kind
    names = {m.DESCRIPTOR.name for m in MESSAGES}
    assert names == {m.removesuffix(".bin") for m in _body_names() if "-" not in m}


def _body_names() -> list[str]:
    from tests.fuzz.seeds import CORPUS

    return sorted(p.name for p in (CORPUS / "bodies").iterdir())


def _reference_frames(stream: bytes) -> tuple[list[tuple[int, bytes]], bool]:
    """Frames of `stream` parsed the slow obvious way; True when a bad header ends it."""
    frames = []
    off = 0
    while len(stream) - off >= HEADER.size:
        msgid, msglen = HEADER.unpack_from(stream, off)
        if not 0 <= msglen <= MAX_BODY:
            return frames, True
        end = off + HEADER.size + msglen
        if end > len(stream):
            break
        frames.append((msgid, stream[off + HEADER.size : end]))
        off = end
    return frames, False


@FUZZ
@given(stream=mutated("streams"), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_frame_decoder_agrees_with_a_reference_at_any_chunking(
    stream: bytes, cuts: list[int]
) -> None:
    decoder = FrameDecoder()
    got: list[tuple[int, bytes]] = []
    bad = False
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for a, b in itertools.pairwise(points):
        try:
            got += decoder.feed(stream[a:b])
        except FrameLengthError as exc:
            got += exc.frames
            bad = True
            break
        assert decoder.pending <= MAX_FRAME
    want, want_bad = _reference_frames(stream)
    assert (got, bad) == (want, want_bad)


@FUZZ
@given(data=mutated("frames"))
def test_decode_datagram_gives_one_frame_or_a_protocol_error(data: bytes) -> None:
    try:
        msgid, body = decode_datagram(data)
    except ProtocolError:
        return
    assert HEADER.pack(msgid, len(body)) + body == data


@FUZZ
@given(message=st.sampled_from(MESSAGES), body=mutated("bodies"))
def test_every_message_parses_or_raises_decode_error(message: Any, body: bytes) -> None:
    try:
        msg = message.FromString(body)
    except DecodeError:
        return
    msg.SerializeToString()  # a parsed message is a usable message


@FUZZ
@given(body=mutated("bodies"))
def test_reporter_intake_keeps_only_rows_the_table_holds(body: bytes) -> None:
    try:
        msg = parse_report(body)
    except DecodeError:
        return
    rows, dropped = rows_from_report(msg)
    assert dropped >= 0 and len(rows) + dropped >= len(msg.results)
    for modid, cmdid, ip, port, _caller, succ, err, _ts, overload in rows:
        assert modid >= 0 and cmdid >= 0 and 0 <= ip <= 0xFFFFFFFF and 0 < port <= 65535
        assert 0 <= succ <= INT32_MAX and 0 <= err <= INT32_MAX and overload in ("0", "1")


@FUZZ
@given(body=mutated("bodies"))
def test_route_service_instance_sync_keeps_only_valid_instances(body: bytes) -> None:
    try:
        _agent, _seq, valid, bad = parse_sync(body)
    except DecodeError:
        return
    for inst in valid:
        assert 0 < inst.port <= 65535 and 0 <= inst.ip <= 0xFFFFFFFF
    assert all(isinstance(reason, str) and reason for reason in bad)


class _Conn:
    peer = ("127.0.0.1", 1)
    user = None

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def send(self, msgid: int, body: bytes) -> None:
        self.sent.append((msgid, body))


@FUZZ
@given(stream=mutated("streams"))
def test_route_service_router_counts_every_bad_frame(stream: bytes) -> None:
    table = RouteTable(1, {(1, 2): ((167772161, 80),)})
    router = RouteServer(table, max_subscriptions=100).router()
    conn = _Conn()
    try:
        frames = FrameDecoder().feed(stream)
    except FrameLengthError as exc:
        frames = exc.frames
    for msgid, body in frames:
        router.dispatch(conn, msgid, body)
    assert router.handler_errors == 0
    assert len(conn.sent) + router.bad_bodies + router.unknown_msgids == len(frames)
    for _msgid, body in conn.sent:
        lars_pb2.GetRouteResponse.FromString(body)


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> tuple[ShardEndpoint, _Transport]:
    shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=1000)
    ep = ShardEndpoint(shard, caller=1, clock=lambda: 0.0, wall=lambda: 0.0)
    transport = _Transport()
    ep.transport = transport  # type: ignore[assignment]
    shard.get_host(1, 2, 0.0)
    shard.on_route(1, 2, [(-1062731519, 9001), (7, 81)], 0.0)
    return ep, transport


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(datagrams=st.lists(mutated("frames"), min_size=1, max_size=8))
def test_agent_datagrams_are_answered_or_counted_never_crash(
    endpoint: tuple[ShardEndpoint, _Transport], datagrams: list[bytes]
) -> None:
    ep, transport = endpoint
    for data in datagrams:
        ep.datagram_received(data, ("127.0.0.1", 4242))
    assert ep.handler_errors == 0
    for reply in transport.sent:
        decode_datagram(reply)  # every answer is exactly one valid frame
    transport.sent.clear()


@FUZZ
@given(data=mutated("frames"))
def test_client_replies_are_taken_or_counted_as_bad(data: bytes) -> None:
    core = ClientCore()
    core.host_request(1, 2)
    for parse in (core.parse_host_reply, core.parse_route_reply, core.parse_register_reply):
        parse(data)  # None (counted) or a reply: never an exception
    assert core.bad >= 0
