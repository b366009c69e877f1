"""The agent's metrics listener: counters move by exactly the traffic sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from lars.agent.config import AgentConfig, BalancerConfig, ShardMode
from lars.agent.metrics import agent_metrics_server
from lars.agent.service import AgentService
from lars.obs.listen import MetricsConfig
from lars.obs.server import MetricsServer
from lars.protocol import RetCode
from lars.reactor import backoff, encode
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.obs_util import delta, get_json, scrape, value

SUCC, OVERLOAD, NOEXIST = int(RetCode.SUCC), int(RetCode.OVERLOAD), int(RetCode.NOEXIST)
H1, H2 = (167772161, 9001), (167772162, 9002)  # 10.0.0.1, 10.0.0.2


@pytest.fixture
def dns(no_leaks: None) -> Iterator[FakeRouteService]:
    svc = FakeRouteService().start()
    yield svc
    svc.stop()


@pytest.fixture
def reporter(no_leaks: None) -> Iterator[FakeReporter]:
    svc = FakeReporter().start()
    yield svc
    svc.stop()


def start_agent(
    dns: tuple[str, int], reporter: tuple[str, int], mode: ShardMode = ShardMode.ONE_LOOP
) -> tuple[AgentService, MetricsServer]:
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=(dns,),
        reporter_addresses=(reporter,),
        caller="10.1.2.3",
        report_interval=0.1,
        mode=mode,
        balancer=BalancerConfig(probe_num=3, contin_err_limit=2),
    )
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.2))
    metrics = agent_metrics_server(agent, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    agent.start()
    return agent, metrics


@pytest.mark.parametrize("mode", [ShardMode.ONE_LOOP, ShardMode.THREADS])
def test_counters_move_by_exactly_the_traffic_sent(
    dns: FakeRouteService, reporter: FakeReporter, mode: ShardMode
) -> None:
    agent, metrics = start_agent(dns.address, reporter.address, mode)
    try:
        wait_until(lambda: agent.stats().route_connected)
        with UdpPeer(agent.ports) as peer:
            dns.set_route((1, 2), [H1])
            wait_until(lambda: peer.get_host(1, 2).retcode == SUCC)
            wait_until(lambda: dns.subscribers((1, 2)) == 1)
            agent.sync()
            before = scrape(metrics.url)

            for _ in range(5):
                assert peer.get_host(1, 2).retcode == SUCC
            peer.report(1, 2, *H1, 1)
            peer.report(1, 2, *H1, 1)  # 2 consecutive errors: idle -> overload
            peer.report(1, 2, 5, 5, 0)  # unknown host: ignored
            # all hosts overloaded, probe_num 3: three OVERLOAD answers, then one probe
            codes = [peer.get_host(1, 2).retcode for _ in range(4)]
            assert codes == [OVERLOAD, OVERLOAD, OVERLOAD, SUCC]
            assert peer.get_host(7, 7).retcode == NOEXIST  # unknown module: asked for
            peer.report(1, 2, *H1, 0)  # success of the probe
            assert peer.get_route(1, 2) == [H1]  # API_GetRoute (also a barrier)
            dns.set_route((1, 2), [H1, H2])  # a route change, pushed
            wait_until(lambda: sum(s.routes_received for s in agent.stats().shards) >= 3)
            port = peer.port_for(1, 2)
            peer.send_raw(b"abc", port)  # not a frame
            peer.send_raw(encode(99, b""), port)  # unknown msgid
            peer.send_raw(encode(4, b"\xff\xff\xff"), port)  # unparsable GetHostRequest
            wait_until(lambda: agent.stats().datagrams - before_datagrams(before) >= 18)
            agent.sync()
            after = scrape(metrics.url)

        get_host = "lars_agent_get_host_total"
        assert delta(after, before, get_host, result="succ") == 6
        assert delta(after, before, get_host, result="overload") == 3
        assert delta(after, before, get_host, result="noexist") == 1
        assert delta(after, before, "lars_agent_reports_total", result="error") == 2
        assert delta(after, before, "lars_agent_reports_total", result="succ") == 2
        assert delta(after, before, "lars_agent_reports_ignored_total") == 1
        assert delta(after, before, "lars_agent_get_route_total") == 1
        transitions = "lars_agent_host_transitions_total"
        assert delta(after, before, transitions, transition="idle_to_overload") == 1
        assert delta(after, before, transitions, transition="overload_to_idle") == 0
        assert delta(after, before, "lars_agent_probes_total") == 1
        assert delta(after, before, "lars_agent_route_requests_total") == 1
        assert delta(after, before, "lars_agent_route_responses_total") == 2
        assert delta(after, before, "lars_agent_route_pushes_total") == 1
        dropped = "lars_agent_datagrams_dropped_total"
        for reason in ("bad_frame", "unknown_msgid", "bad_body"):
            assert delta(after, before, dropped, reason=reason) == 1, reason
        assert delta(after, before, "lars_agent_datagrams_received_total") == 18
        assert value(after, "lars_agent_modules", state="ready") == 1
        assert value(after, "lars_agent_modules", state="empty") == 1
        assert value(after, "lars_agent_modules", state="new") == 0
        # The probe's success report moved H1 back? No: one success is below the limits.
        assert value(after, "lars_agent_hosts", state="overload") == 1
        assert value(after, "lars_agent_hosts", state="idle") == 1
        assert value(after, "lars_agent_route_service_up") == 1
        assert value(after, "lars_agent_route_service_connects_total") == 1
        assert 0 <= value(after, "lars_agent_oldest_route_age_seconds") < 60
        wait_until(lambda: agent.stats().reports_sent >= 1)
        assert value(scrape(metrics.url), "lars_agent_reporter_up") == 1
    finally:
        agent.stop()
        metrics.stop()


def before_datagrams(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> int:
    return int(value(samples, "lars_agent_datagrams_received_total"))


def test_readiness_health_status_and_module_view(
    dns: FakeRouteService, reporter: FakeReporter
) -> None:
    agent, metrics = start_agent(dns.address, reporter.address)
    try:
        assert get_json(metrics.url + "/healthz") == (200, {"status": "ok", "daemon": "agent"})
        wait_until(lambda: agent.stats().route_connected)
        assert get_json(metrics.url + "/readyz")[0] == 200
        dns.set_route((1, 2), [H1, H2])
        with UdpPeer(agent.ports) as peer:
            wait_until(lambda: peer.get_host(1, 2).retcode == SUCC)
            peer.report(1, 2, *H1, 1)
            peer.report(1, 2, *H1, 1)
            peer.get_route(1, 2)
        code, view = get_json(metrics.url + "/debug/module?modid=1&cmdid=2")
        assert code == 200
        assert view["route_state"] == "ready" and view["shard"] == 0
        hosts = {(h["ip"], h["port"]): h for h in view["hosts"]}
        assert hosts[("10.0.0.1", 9001)]["state"] == "overload"
        assert hosts[("10.0.0.1", 9001)]["verr"] == 5  # init_err_cnt after the move
        assert hosts[("10.0.0.2", 9002)]["state"] == "idle"
        assert 0 <= view["route_age"] < 60
        assert get_json(metrics.url + "/debug/module?modid=9&cmdid=9")[0] == 404
        assert get_json(metrics.url + "/debug/module?modid=x")[0] == 400
        code, status = get_json(metrics.url + "/status")
        assert code == 200 and status["daemon"] == "agent"
        assert status["modules"] == {"new": 0, "empty": 0, "ready": 1}
        assert status["hosts"] == {"idle": 1, "overload": 1}
        assert get_json(metrics.url + "/nothing")[0] == 404
    finally:
        agent.stop()
        metrics.stop()


def test_not_ready_without_route_service_or_routes(
    no_leaks: None, reporter: FakeReporter
) -> None:
    agent, metrics = start_agent(("127.0.0.1", free_port()), reporter.address)
    try:
        code, body = get_json(metrics.url + "/readyz")
        assert code == 503 and body["ready"] is False
        assert "no route service connection" in body["reasons"][0]
    finally:
        agent.stop()
        metrics.stop()
    code, body = get_json_or_none(metrics)
    assert code is None  # stopped: nothing listens any more


def get_json_or_none(metrics: MetricsServer) -> tuple[int | None, object]:
    try:
        return get_json(metrics.url + "/healthz")
    except OSError:
        return None, None


def test_busy_metrics_port_names_the_port(no_leaks: None) -> None:
    import socket

    from prometheus_client import CollectorRegistry

    from lars.errors import NetworkError
    from lars.obs.ready import Readiness

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = MetricsServer(
            ("127.0.0.1", port), CollectorRegistry(), daemon="agent",
            ready=lambda: Readiness(True), status=dict,
        )  # fmt: skip
        with pytest.raises(NetworkError, match=f"127.0.0.1:{port}"):
            server.start()


def test_route_cache_age_and_readiness_from_the_cache(
    dns: FakeRouteService, reporter: FakeReporter, tmp_path: object
) -> None:
    from pathlib import Path

    cache = Path(str(tmp_path)) / "routes.json"
    cfg = AgentConfig(
        base_port=0, dns_addresses=(dns.address,), reporter_addresses=(reporter.address,),
        caller="10.1.2.3", cache_path=str(cache), cache_interval=0.05,
    )  # fmt: skip
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.2))
    metrics = agent_metrics_server(agent, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    agent.start()
    try:
        dns.set_route((1, 2), [H1])
        with UdpPeer(agent.ports) as peer:
            wait_until(lambda: peer.get_host(1, 2).retcode == SUCC)
        wait_until(lambda: cache.exists())
        samples = scrape(metrics.url)
        assert value(samples, "lars_agent_route_cache_writes_total") >= 1
        assert 0 <= value(samples, "lars_agent_route_cache_age_seconds") < 30
    finally:
        agent.stop()
        metrics.stop()
    # restarted with no route service to reach: ready from the cache, and says so
    gone = dataclasses.replace(cfg, dns_addresses=(("127.0.0.1", free_port()),))
    agent = AgentService(gone, backoff_factory=lambda: backoff(0.01, 0.2))
    metrics = agent_metrics_server(agent, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    agent.start()
    try:
        samples = scrape(metrics.url)
        assert value(samples, "lars_agent_route_service_up") == 0
        assert value(samples, "lars_agent_modules", state="ready") == 1
        assert get_json(metrics.url + "/readyz")[0] == 200
    finally:
        agent.stop()
        metrics.stop()
