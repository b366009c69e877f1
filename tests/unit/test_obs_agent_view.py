"""Shard counters and views that the agent exporter reads, with plain values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from lars.agent.config import AgentConfig, BalancerConfig
from lars.agent.metrics import AgentCollector
from lars.agent.service import AgentService
from lars.agent.shard import Shard
from lars.agent.view import module_view, shard_gauges
from lars.protocol import RetCode

CFG = BalancerConfig(probe_num=2, contin_err_limit=1, contin_succ_limit=1)
H1, H2 = (1, 80), (2, 80)


def make_shard() -> Shard:
    asked: list[tuple[int, int]] = []
    return Shard(0, CFG, ask=lambda m, c: asked.append((m, c)), max_modules=10)


def test_results_transitions_and_probes_are_counted() -> None:
    shard = make_shard()
    assert shard.get_host(1, 2, 0.0)[0] == RetCode.NOEXIST  # new module
    shard.on_route(1, 2, [H1], 0.0)  # the reply (waiting): not a push
    assert shard.get_host(1, 2, 1.0)[0] == RetCode.SUCC
    shard.report(1, 2, *H1, 1, 1.0)  # contin_err_limit 1: overload
    codes = [shard.get_host(1, 2, 1.0)[0] for _ in range(3)]
    assert codes == [RetCode.OVERLOAD, RetCode.OVERLOAD, RetCode.SUCC]  # probe on the third
    shard.report(1, 2, *H1, 0, 1.0)  # contin_succ_limit 1: idle again
    shard.on_route(1, 2, [H1, H2], 2.0)  # nobody waiting: a push
    s = shard.stats()
    assert (s.get_host, s.get_host_overload, s.get_host_noexist) == (5, 2, 1)
    assert (s.reports, s.report_errors) == (2, 1)
    assert (s.probes, s.to_overload, s.to_idle) == (1, 1, 1)
    assert (s.routes_received, s.routes_pushed) == (2, 1)


def test_gauges_and_module_view() -> None:
    shard = make_shard()
    shard.get_host(1, 2, 0.0)
    shard.get_host(2, 1, 0.0)
    shard.get_host(3, 3, 0.0)
    shard.on_route(1, 2, [H1, H2], 5.0)
    shard.on_route(2, 1, [], 7.0)
    shard.report(1, 2, *H1, 1, 8.0)
    g = shard_gauges(shard)
    assert (g.modules_new, g.modules_empty, g.modules_ready) == (1, 1, 1)
    assert (g.hosts_idle, g.hosts_overloaded) == (1, 1)
    assert g.oldest_route_at == 5.0
    view = module_view(shard, 1, 2, 10.0)
    assert view is not None and view.route_state == "ready" and view.route_age == 5.0
    states = {(h.ip, h.port): (h.state, h.verr, h.window_age) for h in view.hosts}
    assert states == {("0.0.0.1", 80): ("overload", 5, 2.0), ("0.0.0.2", 80): ("idle", 0, 5.0)}
    new = module_view(shard, 3, 3, 10.0)
    assert new is not None and new.route_state == "new" and new.route_age is None
    assert new.waiting
    assert module_view(shard, 9, 9, 10.0) is None


def test_collector_registers_every_family_with_its_labels() -> None:
    agent = AgentService(AgentConfig(caller="10.0.0.1"))  # not started: no sockets, no threads
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    labels = {
        m.name: {tuple(sorted(s.labels)) for s in m.samples} for m in registry.collect()
    }
    assert labels["lars_agent_get_host"] == {("result",)}
    results = {s.labels["result"] for m in registry.collect() for s in m.samples
               if m.name == "lars_agent_get_host"}  # fmt: skip
    assert results == {"succ", "overload", "noexist"}
    assert labels["lars_agent_modules"] == {("state",)}
    assert labels["lars_agent_datagrams_dropped"] == {("reason",)}
    assert labels["lars_agent_route_service_up"] == {()}
    for name in labels:  # no per-host label explosion
        assert not any({"ip", "port", "host"} & set(ls) for ls in labels[name]), name
