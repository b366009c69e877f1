"""Helpers that turn stats() snapshot values into prometheus_client metric families.

Collectors call these at scrape time only; the daemons keep plain integers. Names
follow the Prometheus conventions: `lars_<daemon>_...`, base units, `_total` for
counters (the library appends it to the family name), `_seconds` for durations.
Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from lars.obs.hist import BucketSnapshot
from lars.reactor import ServerStats

__all__ = ["counter", "gauge", "histogram", "labelled_counter", "labelled_gauge", "server_families"]


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    """`name` without `_total` (the exposition adds it)."""
    return CounterMetricFamily(name, doc, value=value)


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def labelled_counter(
    name: str, doc: str, label: str, values: Mapping[str, float]
) -> CounterMetricFamily:
    return _series(CounterMetricFamily(name, doc, labels=[label]), values)


def labelled_gauge(
    name: str, doc: str, label: str, values: Mapping[str, float]
) -> GaugeMetricFamily:
    return _series(GaugeMetricFamily(name, doc, labels=[label]), values)


F = TypeVar("F", CounterMetricFamily, GaugeMetricFamily)


def _series(family: F, values: Mapping[str, float]) -> F:
    """One series per label value."""
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def histogram(
    name: str, doc: str, snaps: Iterable[tuple[Mapping[str, str], BucketSnapshot]]
) -> HistogramMetricFamily:
    """One histogram family; each (labels, snapshot) pair is one labelled series."""
    pairs = list(snaps)
    label_names = sorted(pairs[0][0]) if pairs else []
    family = HistogramMetricFamily(name, doc, labels=label_names)
    for labels, snap in pairs:
        buckets = [(_le(b), float(n)) for b, n in zip(snap.bounds, snap.cumulative, strict=False)]
        buckets.append(("+Inf", float(snap.count)))
        family.add_metric([labels[k] for k in label_names], buckets, snap.total)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def server_families(prefix: str, s: ServerStats | None) -> Iterator[Metric]:
    """The reactor's per-server counters (TcpServer.stats()) under `prefix`."""
    if s is None:  # not listening yet: every counter at zero
        s = ServerStats(**{f.name: 0 for f in dataclasses.fields(ServerStats)})
    yield gauge(f"{prefix}_connections", "Open client connections.", s.connections)
    yield counter(f"{prefix}_connections_accepted", "Connections accepted.", s.accepted)
    yield counter(
        f"{prefix}_connections_refused", "Connections refused at maxConn.", s.refused
    )
    yield counter(f"{prefix}_frames_received", "Frames received.", s.frames_in)
    yield labelled_counter(
        f"{prefix}_frames_dropped",
        "Frames dropped (connection kept), by reason.",
        "reason",
        {
            "unknown_msgid": s.unknown_msgids,
            "bad_body": s.bad_bodies,
            "handler_error": s.handler_errors,
        },
    )
    yield labelled_counter(
        f"{prefix}_connections_closed_by_error",
        "Connections closed for a bad frame length, an incomplete frame held too long, "
        "or a peer that never reads (write buffer past its limit).",
        "reason",
        {
            "frame_error": s.frame_errors,
            "frame_timeout": s.frame_timeouts,
            "backpressure": s.backpressure_drops,
        },
    )
    yield counter(
        f"{prefix}_backpressure_pauses",
        "Times a connection stopped reading because its unsent output passed high water.",
        s.backpressure_pauses,
    )
