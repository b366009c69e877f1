"""Our client API against our agent: get_host, report (reaching the reporter), get_route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lars.agent.config import AgentConfig
from lars.agent.service import AgentService
from lars.client.sync import LarsClient
from lars.protocol import RetCode, dotted_to_wire
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, wait_until


@pytest.fixture
def stack(no_leaks: None) -> Iterator[tuple[FakeRouteService, FakeReporter, AgentService]]:
    dns = FakeRouteService().start()
    reporter = FakeReporter().start()
    agent = AgentService(
        AgentConfig(
            base_port=0,
            dns_addresses=(dns.address,),
            reporter_addresses=(reporter.address,),
            caller="127.0.0.1",
            report_interval=0.1,
        )
    )
    agent.start()
    yield dns, reporter, agent
    agent.stop()
    reporter.stop()
    dns.stop()


def test_client_against_agent(stack: tuple[FakeRouteService, FakeReporter, AgentService]) -> None:
    dns, reporter, agent = stack
    hosts = [(dotted_to_wire("192.168.1.177"), 9000), (dotted_to_wire("10.0.0.2"), 9001)]
    dns.set_route((1, 2), hosts)
    ports = agent.ports
    with LarsClient(ports=(ports[0], ports[1], ports[2]), timeout=2.0) as client:
        first = client.get_host(1, 2)
        assert first.retcode == RetCode.NOEXIST
        got = wait_until(lambda: (r := client.get_host(1, 2)).retcode == RetCode.SUCC and r)
        assert (got.ip, got.port) in {("192.168.1.177", 9000), ("10.0.0.2", 9001)}
        route = client.get_route(1, 2)
        assert sorted((h.ip, h.port) for h in route.hosts) == [
            ("10.0.0.2", 9001),
            ("192.168.1.177", 9000),
        ]
        client.report(1, 2, "192.168.1.177", 9000, int(RetCode.SUCC))
        msg = wait_until(lambda: reporter.latest((1, 2)))
        rows = {(r.ip, r.port): (r.succ, r.err) for r in msg.results}
        assert rows[hosts[0]] == (1, 0)
