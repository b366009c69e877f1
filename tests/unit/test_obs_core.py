"""Sans-I/O parts of lars/obs: bucket counters, listen addresses, readiness rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.config import IniFile
from lars.errors import ConfigError
from lars.obs.hist import Buckets
from lars.obs.listen import MetricsConfig, parse_listen
from lars.obs.ready import agent_ready, dns_ready, reporter_ready


def test_buckets_are_cumulative_and_inclusive() -> None:
    b = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):
        b.observe(v)
    snap = b.snapshot()
    assert snap.cumulative == (2, 4, 5)  # le=0.1 holds 0.1 itself, like Prometheus
    assert snap.count == 5 and snap.total == pytest.approx(8.65)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_buckets_count_every_value_once(values: list[float]) -> None:
    b = Buckets((0.5, 1.0, 10.0))
    for v in values:
        b.observe(v)
    snap = b.snapshot()
    assert snap.count == len(values)
    assert list(snap.cumulative) == sorted(snap.cumulative)
    for bound, n in zip(snap.bounds, snap.cumulative, strict=False):
        assert n == sum(1 for v in values if v <= bound)


def test_buckets_refuse_unsorted_bounds() -> None:
    with pytest.raises(ValueError):
        Buckets((1.0, 0.5))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:7783", ("127.0.0.1", 7783)), ("0.0.0.0:0", ("0.0.0.0", 0)),
     ("[::1]:9", ("::1", 9)), ("off", None), ("OFF", None), ("none", None)],
)  # fmt: skip
def test_parse_listen(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["7783", ":7783", "host:", "host:x", "host:70000", ""])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="metrics listen address"):
        parse_listen(text)


def test_metrics_config_defaults_file_then_flag() -> None:
    empty = IniFile.empty()
    assert MetricsConfig.build("agent", empty, None).listen == ("127.0.0.1", 7783)
    assert MetricsConfig.build("dns", empty, None).listen == ("127.0.0.1", 7781)
    assert MetricsConfig.build("reporter", empty, None).listen == ("127.0.0.1", 7782)
    ini = IniFile.from_string("[metrics]\nlisten = 0.0.0.0:9100\n")
    assert MetricsConfig.build("agent", ini, None).listen == ("0.0.0.0", 9100)
    assert MetricsConfig.build("agent", ini, "off").listen is None
    assert MetricsConfig.build("agent", ini, "127.0.0.1:1").url == "http://127.0.0.1:1"


def test_agent_readiness() -> None:
    assert agent_ready(route_connected=True, known_routes=0).ready
    assert agent_ready(route_connected=False, known_routes=3).ready  # serves from cache
    verdict = agent_ready(route_connected=False, known_routes=0)
    assert not verdict.ready and "no route service connection" in verdict.reasons[0]
    assert verdict.as_dict()["ready"] is False


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0


def test_dns_readiness_with_a_fake_clock() -> None:
    clock = FakeClock()
    last = clock.now

    def verdict() -> bool:
        return dns_ready(loaded=True, last_success=last, poll_interval=1.0, now=clock.now).ready

    assert verdict()
    clock.now += 3.0  # exactly three intervals: still ready
    assert verdict()
    clock.now += 0.01
    assert not verdict()
    why = dns_ready(loaded=True, last_success=last, poll_interval=1.0, now=clock.now).reasons
    assert "3.0s ago (limit 3s)" in why[0]
    last = clock.now  # a poll succeeds again
    assert verdict()
    not_loaded = dns_ready(loaded=False, last_success=None, poll_interval=1.0, now=clock.now)
    assert not_loaded.reasons == ("route table not loaded yet",)
    assert not dns_ready(loaded=True, last_success=None, poll_interval=1.0, now=0).ready


def test_reporter_readiness() -> None:
    assert reporter_ready(db_up=True, queue_depth=(10, 10), max_pending=10).ready
    assert reporter_ready(db_up=False, queue_depth=(9, 0), max_pending=10).ready  # buffering
    full = reporter_ready(db_up=False, queue_depth=(3, 10), max_pending=10)
    assert not full.ready and "writer(s) 1 full" in full.reasons[0]


def test_a_collector_that_raises_answers_500_and_the_listener_keeps_serving() -> None:
    """A scrape whose collector fails (an agent stopping under a scrape: its shard loops
    no longer answer) is a 500 with the cause, counted and logged, like every other path;
    it used to escape respond(), and the HTTP server printed a traceback to stderr and
    closed the connection without an answer."""
    from collections.abc import Iterator

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

    from lars.obs.ready import Readiness
    from lars.obs.server import MetricsServer

    class Broken(Collector):
        def collect(self) -> Iterator[Metric]:
            raise RuntimeError("shard loop stopped")
            yield  # pragma: no cover

    registry = CollectorRegistry()
    registry.register(Broken())
    server = MetricsServer(
        ("127.0.0.1", 0), registry, daemon="agent", ready=lambda: Readiness(True), status=dict
    )
    code, ctype, body = server.respond("/metrics", {})
    assert code == 500 and ctype == "application/json"
    assert b"shard loop stopped" in body
    assert server.errors == 1
    assert server.respond("/healthz", {})[0] == 200
