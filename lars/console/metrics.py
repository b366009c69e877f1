"""The console's exporter: HTTP requests by route and status, failed and throttled logins.
Served by the console itself at GET /metrics, and by `lars up`'s one listener.
Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from lars.console.counters import ConsoleCounters
from lars.obs.families import counter

__all__ = ["ConsoleCollector"]

P = "lars_console"


class ConsoleCollector(Collector):
    def __init__(self, counters: ConsoleCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters
        family = CounterMetricFamily(
            f"{P}_http_requests", "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )  # fmt: skip
        for (method, route, status), n in sorted(c.requests().items()):
            family.add_metric([method, route, str(status)], n)
        yield family
        yield counter(f"{P}_login_failures", "Logins with a wrong password.", c.login_failures)
        yield counter(f"{P}_logins_throttled",
                      "Login attempts refused while the address was throttled.",
                      c.logins_throttled)  # fmt: skip
