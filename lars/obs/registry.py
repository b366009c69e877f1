"""A daemon's metric registry, with what every Prometheus user expects besides ours.

Each daemon keeps its own CollectorRegistry (no global default registry: two services in
one process, as in `lars up` or a test, must not collide). This adds the standard
`process_*` (CPU, memory, file descriptors, start time), `python_info` and `python_gc_*`
families, and `lars_build_info{version,python,daemon} 1`, so dashboards and alerts can
tell versions apart across a fleet.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from lars import __version__
from lars.obs.ready import Readiness

__all__ = ["ReadinessCollector", "new_registry"]


def new_registry(daemon: str) -> CollectorRegistry:
    """A registry for `daemon` (dns, reporter, agent, console, up) with the standard
    process, Python and build families already registered."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    build = Info("lars_build", "Version of lars and Python this daemon runs", registry=registry)
    build.info({"version": __version__, "python": platform.python_version(), "daemon": daemon})
    return registry


class ReadinessCollector:
    """`lars_ready` 1/0: what /readyz answers, as a series an alert rule can watch."""

    def __init__(self, ready: Callable[[], Readiness]) -> None:
        self._ready = ready

    def collect(self) -> Iterator[Metric]:
        try:
            ready = self._ready().ready
        except Exception:  # a readiness that cannot be computed is not ready
            ready = False
        yield GaugeMetricFamily(
            "lars_ready", "1 when /readyz answers 200, else 0 (reasons in /readyz)", int(ready)
        )
