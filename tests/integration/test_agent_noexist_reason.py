"""The agent tells the client why it answers NOEXIST (GetHostResponse.reason, field 6)
and counts the answers it gave while no route service was connected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lars.protocol import NoHostReason, RetCode
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.integration.test_agent_service import make_agent, settle

NOEXIST = int(RetCode.NOEXIST)


@pytest.fixture
def reporter(no_leaks: None) -> Iterator[FakeReporter]:
    svc = FakeReporter().start()
    yield svc
    svc.stop()


def noexist_down(agent: object) -> int:
    return sum(s.noexist_route_down for s in agent.stats().shards)  # type: ignore[attr-defined]


def test_route_service_unreachable_is_the_reason_and_is_counted(reporter: FakeReporter) -> None:
    agent = make_agent(("127.0.0.1", free_port()), reporter.address)  # nothing listens there
    try:
        with UdpPeer(agent.ports) as peer:
            for _ in range(3):
                rsp = peer.get_host(1, 2)
                assert (rsp.retcode, rsp.reason) == (
                    NOEXIST,
                    NoHostReason.ROUTE_SERVICE_UNREACHABLE,
                )
        agent.sync()
        assert noexist_down(agent) == 3
        assert not agent.stats().route_connected
    finally:
        agent.stop()


def test_reasons_while_connected_and_after_the_route_service_goes_away(
    reporter: FakeReporter,
) -> None:
    dns = FakeRouteService().start()
    agent = make_agent(dns.address, reporter.address, max_modules=1)
    try:
        settle(agent)
        with UdpPeer(agent.ports) as peer:
            # unknown module: the agent asks; the fake answers at once with no hosts
            assert peer.get_host(1, 2).reason in (NoHostReason.PENDING, NoHostReason.EMPTY)
            wait_until(lambda: peer.get_host(1, 2).reason == NoHostReason.EMPTY)
            # shard 0 already keeps one module (max_modules=1): (3, 3) is refused
            assert peer.get_host(3, 3).reason == NoHostReason.MODULE_LIMIT
            # a request sent to another shard's port
            wrong = peer.get_host(1, 1, port=agent.ports[0])
            assert (wrong.retcode, wrong.reason) == (NOEXIST, NoHostReason.WRONG_PORT)
            assert noexist_down(agent) == 0
            dns.stop()
            wait_until(lambda: not agent.stats().route_connected)
            agent.sync()
            rsp = peer.get_host(1, 2)
            assert (rsp.retcode, rsp.reason) == (NOEXIST, NoHostReason.ROUTE_SERVICE_UNREACHABLE)
            assert noexist_down(agent) == 1
    finally:
        agent.stop()
        dns.stop()
