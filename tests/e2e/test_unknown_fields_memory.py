"""Memory stays bounded under unknown protobuf fields (issue 19, item 1), per daemon.

A newer peer adds optional fields this version does not know; an attacker on the host
can send as many as a frame holds. protobuf's upb backend keeps a parsed message's
unknown-field bytes in the message's arena, so a decoder that reuses one message grows
for ever (the agent did: +104 MB per 2,000 datagrams of 60 kB). Each test starts a real
daemon (`python -m lars ...`), warms it up with 10k requests, sends 100k requests that
carry a 2-byte unknown field plus 2k that carry 60 kB of them (every request type the
daemon parses), checks the daemon processed them (its own counters or answers), and
asserts VmRSS (from /proc, not time) grew by less than 5 MB. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from lars.dbengine import init_schema, make_engine
from lars.protocol import MsgId, lars_pb2
from lars.reactor.frame import FrameDecoder, encode
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base
from tests.obs_util import scrape, value

pytestmark = pytest.mark.e2e

WARM_UP = 10_000
SMALL = 100_000
BIG = 2_000
BIG_BYTES = 60_000
MAX_GROWTH_MB = 5.0

# Field 15 is unknown to every message the daemons accept (they use 1..6): a varint of
# 1 is the 2-byte field a newer peer adding one optional field sends.
SMALL_FIELD = b"\x78\x01"


def big_field(i: int) -> bytes:
    """60 kB of unknown length-delimited field 14, different for every request."""
    payload = i.to_bytes(4, "little") * (BIG_BYTES // 4)
    n = len(payload)
    length = bytes([(n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14])
    return b"\x72" + length + payload


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def assert_bounded(daemon: str, before: float, after: float) -> None:
    growth = after - before
    assert growth < MAX_GROWTH_MB, f"{daemon} RSS grew {growth:.1f} MB: {before:.1f} -> {after:.1f}"


def wait_until(pred: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def started(proc: Proc, marker: str) -> None:
    def up() -> bool:
        assert proc.proc.poll() is None, proc.log.read_text()
        return marker in proc.log.read_text()

    wait_until(up, f"{marker!r} in {proc.log}")


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 2, "10.0.0.1", 9001)
    engine.dispose()
    yield url


# ---------------------------------------------------------------- agent (UDP)


def agent_requests(i: int, extra: bytes) -> list[tuple[bytes, bool]]:
    """Request i of the mix (get_host, report, API get_route, register heartbeat,
    get_host) as (datagram, answered?); `extra` is appended to each body as unknown
    fields."""
    kind = i % 5
    if kind == 3:  # a heartbeat of an instance never registered: answered, nothing kept
        inst = lars_pb2.Instance(modid=1, cmdid=2, ip=167772161, port=9001, check="ttl:5")
        req = lars_pb2.RegisterRequest(seq=i & 0xFFFFFF, op=3, instance=inst)
        return [(encode(int(MsgId.REGISTER_REQUEST), req.SerializeToString() + extra), True)]
    if kind == 1:
        host = lars_pb2.HostInfo(ip=167772161, port=9001)
        report = lars_pb2.ReportRequest(modid=1, cmdid=2, host=host, retcode=0)
        return [(encode(int(MsgId.REPORT_REQUEST), report.SerializeToString() + extra), False)]
    if kind == 2:
        body = lars_pb2.GetRouteRequest(modid=1, cmdid=2).SerializeToString()
        return [(encode(int(MsgId.API_GET_ROUTE_REQUEST), body + extra), True)]
    body = lars_pb2.GetHostRequest(seq=i & 0xFFFF, modid=1, cmdid=2).SerializeToString()
    return [(encode(int(MsgId.GET_HOST_REQUEST), body + extra), True)]


class UdpStorm:
    """Sends datagrams to one port, at most `window` answers outstanding."""

    def __init__(self, port: int) -> None:
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(2.0)
        self.sent = self.answered = self.lost = 0

    def close(self) -> None:
        self.sock.close()

    def run(self, items: Iterator[tuple[bytes, bool]], window: int) -> None:
        outstanding = 0
        for data, answered in items:
            self.sock.sendto(data, self.addr)
            self.sent += 1
            if answered:
                outstanding += 1
            while outstanding >= window:
                outstanding -= 1
                self._recv()
        for _ in range(outstanding):
            self._recv()

    def _recv(self) -> None:
        try:
            self.sock.recv(65536)
            self.answered += 1
        except TimeoutError:
            self.lost += 1


def agent_mix(
    start: int, count: int, extra: Callable[[int], bytes]
) -> Iterator[tuple[bytes, bool]]:
    for i in range(start, start + count):
        yield from agent_requests(i, extra(i))


def test_agent_memory_is_bounded_under_unknown_fields(tmp_path: Path, db_url: str) -> None:
    dns_port, rep_port, metrics_port, base = free_port(), free_port(), free_port(), free_udp_base()
    dns = Proc(tmp_path / "dns.log", "dns", "--db", db_url, "--ip", "127.0.0.1",
               "--port", str(dns_port), "--snapshot", str(tmp_path / "guard"))  # fmt: skip
    agent = Proc(tmp_path / "agent.log", "agent", "--base-port", str(base),
                 "--dns", f"127.0.0.1:{dns_port}", "--reporter", f"127.0.0.1:{rep_port}",
                 "--metrics", f"127.0.0.1:{metrics_port}")  # fmt: skip
    storm = UdpStorm(base)  # (1 + 2) % 3 == 0: module 1:2 is served on the base port
    try:
        started(dns, "listening")
        started(agent, "agent listening")
        url = f"http://127.0.0.1:{metrics_port}"

        def succ() -> bool:
            storm.run(agent_mix(0, 1, lambda i: b""), 1)
            return storm.answered > 0 and value(
                scrape(url), "lars_agent_get_host_total", result="succ") > 0  # fmt: skip

        wait_until(succ, "the agent to answer 1:2 from the route service")
        # warm-up: the same mix, a few large ones included (allocator steady state)
        storm.run(agent_mix(0, WARM_UP, lambda i: SMALL_FIELD), 32)
        storm.run(agent_mix(0, 40, big_field), 2)
        received0 = value(scrape(url), "lars_agent_datagrams_received_total")
        before = rss_mb(agent.proc.pid)
        sent0 = storm.sent
        storm.run(agent_mix(0, SMALL, lambda i: SMALL_FIELD), 32)
        storm.run(agent_mix(WARM_UP, BIG, big_field), 2)
        after = rss_mb(agent.proc.pid)
        samples = scrape(url)
        received = value(samples, "lars_agent_datagrams_received_total") - received0
        sent = storm.sent - sent0
        assert received >= 0.99 * sent, (received, sent)  # the agent parsed them
        assert value(samples, "lars_agent_datagrams_dropped_total", reason="bad_body") == 0
        assert storm.lost <= 0.01 * storm.answered, (storm.lost, storm.answered)
        assert_bounded("agent", before, after)
    finally:
        storm.close()
        for proc in (agent, dns):
            code, log = proc.stop()
            assert code == 0, log


# ------------------------------------------------------ route service, reporter (TCP)


class TcpStorm:
    """Pipelined frames on one connection; `answers` frames are read back per frame sent."""

    def __init__(self, port: int, answers: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.answers = answers
        self.decoder = FrameDecoder()
        self.received: list[int] = []

    def close(self) -> None:
        self.sock.close()

    def run(self, frames: Sequence[bytes] | Iterator[bytes], batch: int) -> None:
        pending: list[bytes] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) == batch:
                self._flush(pending)
                pending = []
        if pending:
            self._flush(pending)

    def _flush(self, frames: list[bytes]) -> None:
        self.sock.sendall(b"".join(frames))
        want = len(self.received) + len(frames) * self.answers
        while len(self.received) < want:
            data = self.sock.recv(1 << 20)
            assert data, "the daemon closed the connection"
            self.received.extend(msgid for msgid, _ in self.decoder.feed(data))


def route_frames(count: int, extra: Callable[[int], bytes]) -> Iterator[bytes]:
    """GetRouteRequests and, every other frame, an agent's InstanceSync (an empty set from
    one agent id: answered with an ack, nothing kept but that agent's lease)."""
    body = lars_pb2.GetRouteRequest(modid=1, cmdid=2).SerializeToString()
    for i in range(count):
        if i % 2:
            sync = lars_pb2.InstanceSync(agent="127.0.0.1:8888", seq=i).SerializeToString()
            yield encode(int(MsgId.INSTANCE_SYNC), sync + extra(i))
        else:
            yield encode(int(MsgId.GET_ROUTE_REQUEST), body + extra(i))


def test_route_service_memory_is_bounded_under_unknown_fields(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    dns = Proc(tmp_path / "dns.log", "dns", "--db", db_url, "--ip", "127.0.0.1",
               "--port", str(port), "--snapshot", str(tmp_path / "guard"))  # fmt: skip
    try:
        started(dns, "listening")
        storm = TcpStorm(port, answers=1)
        try:
            storm.run(route_frames(WARM_UP, lambda i: SMALL_FIELD), 64)
            storm.run(route_frames(40, big_field), 4)
            before = rss_mb(dns.proc.pid)
            storm.run(route_frames(SMALL, lambda i: SMALL_FIELD), 64)
            storm.run(route_frames(BIG, big_field), 4)
            after = rss_mb(dns.proc.pid)
        finally:
            storm.close()
        expected = (WARM_UP + 40 + SMALL + BIG) // 2  # of each kind
        answers = [int(MsgId.GET_ROUTE_RESPONSE), int(MsgId.INSTANCE_SYNC_ACK)]
        assert sorted(storm.received) == sorted(answers * expected)  # all parsed
        assert_bounded("dns", before, after)
    finally:
        code, log = dns.stop()
        assert code == 0, log


def report_frames(count: int, extra: Callable[[int], bytes]) -> Iterator[bytes]:
    body = lars_pb2.ReportStatusRequest(modid=1, cmdid=2, caller=1, ts=1).SerializeToString()
    for i in range(count):
        yield encode(int(MsgId.REPORT_STATUS_REQUEST), body + extra(i))


def test_reporter_memory_is_bounded_under_unknown_fields(tmp_path: Path, db_url: str) -> None:
    port, metrics_port = free_port(), free_port()
    rep = Proc(tmp_path / "rep.log", "reporter", "--db", db_url, "--ip", "127.0.0.1",
               "--port", str(port), "--metrics", f"127.0.0.1:{metrics_port}")  # fmt: skip
    url = f"http://127.0.0.1:{metrics_port}"

    def parsed(n: int) -> Callable[[], bool]:
        return lambda: value(scrape(url), "lars_reporter_reports_total") >= n

    try:
        started(rep, "listening")
        storm = TcpStorm(port, answers=0)  # reports are not answered
        try:
            storm.run(report_frames(WARM_UP, lambda i: SMALL_FIELD), 64)
            storm.run(report_frames(40, big_field), 4)
            wait_until(parsed(WARM_UP + 40), "the warm-up reports to be parsed")
            before = rss_mb(rep.proc.pid)
            storm.run(report_frames(SMALL, lambda i: SMALL_FIELD), 64)
            storm.run(report_frames(BIG, big_field), 4)
            wait_until(parsed(WARM_UP + 40 + SMALL + BIG), "every report to be parsed")
            after = rss_mb(rep.proc.pid)
        finally:
            storm.close()
        assert_bounded("reporter", before, after)
    finally:
        code, log = rep.stop()
        assert code == 0, log
