"""What the agent shows of its registrations: metrics, /status, /debug/module and
`lars status --module` (its renderer), against a real AgentService and listener."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lars.agent.config import AgentConfig
from lars.agent.metrics import agent_metrics_server
from lars.agent.regconfig import RegisterConfig
from lars.agent.service import AgentService
from lars.client import LarsClient
from lars.obs.listen import MetricsConfig
from lars.obs.status import render_module, render_status
from lars.reactor import backoff
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, wait_until
from tests.obs_util import get_json, scrape, value


@pytest.fixture
def peers(no_leaks: None) -> Iterator[tuple[FakeRouteService, FakeReporter]]:
    dns, reporter = FakeRouteService().start(), FakeReporter().start()
    yield dns, reporter
    dns.stop()
    reporter.stop()


def test_metrics_status_and_module_view(peers: tuple[FakeRouteService, FakeReporter]) -> None:
    dns, reporter = peers
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=(dns.address,),
        reporter_addresses=(reporter.address,),
        caller="10.1.2.3",
        register=RegisterConfig(check_interval=0.1),
    )
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.2))
    metrics = agent_metrics_server(agent, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    agent.start()
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(11, 1, "127.0.0.1", port)
            client.register(11, 1, "127.0.0.1", 9, check="ttl:30")

        def passing() -> float:
            return value(scrape(metrics.url), "lars_agent_registered_instances", state="passing")

        wait_until(lambda: passing() == 2)
        listener.close()
        wait_until(lambda: passing() == 1)
        samples = scrape(metrics.url)
        assert value(samples, "lars_agent_registered_instances", state="failing") == 1
        assert value(samples, "lars_agent_register_checks_failed_total") >= 2
        assert value(samples, "lars_agent_register_checks_total") >= 4
        assert value(samples, "lars_agent_register_requests_total") == 2
        assert value(samples, "lars_agent_instance_syncs_sent_total") == 0  # no capability
        code, status = get_json(metrics.url + "/status")
        assert code == 200 and status["registrations"] == {
            "pending": 0, "passing": 1, "failing": 1
        }  # fmt: skip
        assert "registered here: 1 passing, 1 failing, 0 pending" in render_status(status)
        code, doc = get_json(metrics.url + "/debug/module?modid=11&cmdid=1")
        assert code == 200 and doc["route_state"] == "not asked for on this agent"
        states = {r["port"]: (r["check"], r["state"]) for r in doc["registrations"]}
        assert states == {port: ("tcp", "failing"), 9: ("ttl:30", "passing")}
        text = render_module(doc)
        assert "registered with this agent (check state):" in text
        assert f"127.0.0.1:{port}" in text and "failing" in text and "refused" in text.lower()
        assert get_json(metrics.url + "/debug/module?modid=12&cmdid=1")[0] == 404
    finally:
        listener.close()
        agent.stop()
        metrics.stop()
