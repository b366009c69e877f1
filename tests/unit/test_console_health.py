"""Host health from ServerCallStatus rows and its SVG chart, with plain values."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lars.console.chart import error_rate_svg
from lars.console.health import HostHealth, HostState, StatusRow, hosts_health, summarize
from lars.protocol.ipv4 import dotted_to_uint


def row(
    ip: str, port: int, caller: str, succ: int, err: int, ts: int, over: bool = False
) -> StatusRow:
    return StatusRow(1, 2, dotted_to_uint(ip), port, dotted_to_uint(caller), succ, err, ts, over)


def test_hosts_sum_callers_and_take_the_newest_report() -> None:
    rows = [
        row("10.0.0.1", 80, "192.168.0.9", 90, 10, 1000),
        row("10.0.0.1", 80, "192.168.0.10", 10, 0, 1005),
    ]
    [host] = hosts_health([("10.0.0.1", 80)], rows, now=1010.0, stale_after=60.0)
    assert (host.succ, host.err, host.error_rate) == (100, 10, 10 / 110)
    assert host.callers == ("192.168.0.9", "192.168.0.10")  # numeric, not text, order
    assert (host.last_report, host.age, host.stale) == (1005, 5.0, False)
    assert host.state is HostState.OK and host.in_route


def test_overload_from_any_caller_makes_a_fresh_host_overloaded() -> None:
    rows = [
        row("10.0.0.1", 80, "1.1.1.1", 5, 5, 490, over=True),
        row("10.0.0.1", 80, "1.1.1.2", 5, 0, 495),
    ]
    [host] = hosts_health([("10.0.0.1", 80)], rows, now=500.0, stale_after=60.0)
    assert host.overload and not host.stale
    assert host.state is HostState.OVERLOAD


def test_a_stale_host_is_stale_whatever_its_last_report_said() -> None:
    """An 853 s old 'overloaded' report stayed red: the host's state is unknown now."""
    rows = [row("10.0.0.1", 80, "1.1.1.1", 5, 5, 1000, over=True)]
    [host] = hosts_health([("10.0.0.1", 80)], rows, now=1853.0, stale_after=60.0)
    assert host.overload and host.stale and host.age == 853.0  # the report, as it was
    assert host.state is HostState.STALE
    assert summarize([host]).state is HostState.STALE
    assert (summarize([host]).overloaded, summarize([host]).stale) == (0, 1)


def test_stale_no_data_and_unrouted_hosts() -> None:
    rows = [row("10.0.0.2", 81, "1.1.1.1", 1, 0, 100), row("10.0.0.9", 9, "1.1.1.1", 0, 0, 990)]
    hosts = hosts_health([("10.0.0.2", 81), ("10.0.0.3", 82)], rows, now=1000.0, stale_after=60.0)
    by = {(h.ip, h.port): h for h in hosts}
    assert by[("10.0.0.2", 81)].state is HostState.STALE
    assert by[("10.0.0.3", 82)].state is HostState.NODATA
    assert by[("10.0.0.3", 82)].error_rate is None and by[("10.0.0.3", 82)].age is None
    assert not by[("10.0.0.9", 9)].in_route
    assert by[("10.0.0.9", 9)].error_rate is None  # no calls at all: no rate, not 0/0
    assert [h.ip for h in hosts] == ["10.0.0.2", "10.0.0.3", "10.0.0.9"]


def test_hosts_are_ordered_by_address_numerically() -> None:
    hosts = hosts_health(
        [("10.0.0.10", 1), ("10.0.0.9", 1), ("9.0.0.1", 2)], [], now=0.0, stale_after=1.0
    )
    assert [(h.ip, h.port) for h in hosts] == [("9.0.0.1", 2), ("10.0.0.9", 1), ("10.0.0.10", 1)]


def test_clock_behind_reports_gives_age_zero() -> None:
    [host] = hosts_health(
        [("1.2.3.4", 5)], [row("1.2.3.4", 5, "1.1.1.1", 1, 1, 200)], now=100.0, stale_after=10.0
    )
    assert host.age == 0.0 and not host.stale


def test_summary_counts_routed_hosts_and_takes_the_worst_state() -> None:
    rows = [
        row("10.0.0.1", 1, "1.1.1.1", 1, 0, 100, over=True),
        row("10.0.0.2", 1, "1.1.1.1", 1, 0, 10),
        row("10.0.0.3", 1, "1.1.1.1", 1, 0, 100),
        row("10.0.0.99", 1, "1.1.1.1", 1, 0, 100, over=True),  # not routed: not counted
    ]
    routed = [("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1), ("10.0.0.4", 1)]
    summary = summarize(hosts_health(routed, rows, now=100.0, stale_after=60.0))
    assert (summary.hosts, summary.ok, summary.overloaded, summary.stale, summary.nodata) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert summary.state is HostState.OVERLOAD
    assert summarize([]).state is HostState.NODATA


addresses = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 65535))


@given(
    routed=st.lists(addresses, max_size=6, unique=True),
    reports=st.lists(
        st.tuples(
            addresses,
            st.integers(0, 2**32 - 1),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.integers(0, 2000),
            st.booleans(),
        ),
        max_size=12,
    ),
    now=st.floats(0, 3000),
)
def test_health_invariants(
    routed: list[tuple[int, int]],
    reports: list[tuple[tuple[int, int], int, int, int, int, bool]],
    now: float,
) -> None:
    from lars.protocol.ipv4 import uint_to_dotted

    route_hosts = [(uint_to_dotted(ip), port) for ip, port in routed]
    rows = {}
    for (ip, port), caller, succ, err, ts, over in reports:
        rows[(ip, port, caller)] = StatusRow(1, 1, ip, port, caller, succ, err, ts, over)
    hosts = hosts_health(route_hosts, rows.values(), now=now, stale_after=60.0)
    assert len({(h.ip, h.port) for h in hosts}) == len(hosts)
    assert {(h.ip, h.port) for h in hosts if h.in_route} == set(route_hosts)
    for h in hosts:
        assert h.error_rate is None or 0.0 <= h.error_rate <= 1.0
        assert (h.state is HostState.NODATA) == (not h.callers)
        assert h.state is not HostState.OVERLOAD or (h.overload and not h.stale)
        assert (h.state is HostState.STALE) == h.stale
    summary = summarize(hosts)
    assert summary.ok + summary.overloaded + summary.stale + summary.nodata == summary.hosts
    svg = error_rate_svg(hosts)
    assert svg == "" or svg.count("<rect") == 2 * len(hosts)


def _host(ip: str, rate: float | None, state: HostState) -> HostHealth:
    return HostHealth(ip, 80, True, 0, 0, rate, False, (), None, None, False, state)


def test_chart_draws_a_bar_per_host_scaled_by_error_rate() -> None:
    svg = error_rate_svg(
        [
            _host("10.0.0.1", 0.5, HostState.OK),
            _host("10.0.0.2", None, HostState.NODATA),
            _host("10.0.0.3", 1.0, HostState.OVERLOAD),
        ]
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    widths = re.findall(r'class="chart-bar[^"]*"', svg)
    assert len(widths) == 3
    assert 'width="120.0"' in svg and 'width="240.0"' in svg and 'width="0.0"' in svg
    assert "50.0%" in svg and "n/a" in svg and "state-overload" in svg
    assert error_rate_svg([]) == ""
