"""DbHealth: one outage event with its cause, one recovery with its duration (fake time)."""

from __future__ import annotations

import pytest

from lars.reporter.health import DbHealth, HealthEvent


def test_a_failed_write_is_an_outage_once_and_a_success_ends_it() -> None:
    h = DbHealth(2, stall_after=2.0)
    h.begin(0, 10.0)
    down = h.end(0, 10.1, "Can't connect to MySQL server")
    assert down == HealthEvent(True, "writer 0: Can't connect to MySQL server")
    assert not h.available and h.outages == 1
    h.begin(1, 10.2)
    assert h.end(1, 10.3, "Lost connection") is None  # the same outage: no second line
    h.begin(0, 12.0)
    assert h.end(0, 12.1) is None  # writer 1 still failing
    h.begin(1, 13.0)
    up = h.end(1, 13.5)
    assert up is not None and not up.down and up.duration == pytest.approx(3.4)
    assert h.available and h.outages == 1


def test_the_watchdog_sees_a_write_that_hangs_whatever_the_socket_does() -> None:
    """Measured defect: a frozen database was first logged after ~60 s (the PyMySQL read
    timeout stacked with pre-ping and reconnect). The watchdog sees it at stall_after."""
    h = DbHealth(3, stall_after=2.0)
    h.begin(2, 100.0)
    assert h.check(101.9) is None
    down = h.check(102.0)
    assert down is not None and down.down and "writer 2" in down.cause
    assert "no answer" in down.cause and h.down_since == 100.0
    assert h.check(103.0) is None  # once
    # another writer succeeding while writer 2 still hangs is no recovery
    h.begin(0, 103.0)
    assert h.end(0, 103.1) is None
    # the hung write finally gives up (socket timeout): still down, no new line
    assert h.end(2, 110.0, "timed out") is None
    h.begin(2, 111.0)
    up = h.end(2, 111.2)
    assert up is not None and up.duration == pytest.approx(11.2)


def test_a_slow_write_that_completes_before_stall_after_is_no_outage() -> None:
    h = DbHealth(1, stall_after=2.0)
    h.begin(0, 0.0)
    assert h.check(1.5) is None
    assert h.end(0, 1.9) is None
    assert h.available and h.outages == 0


def test_a_stalled_write_that_completes_ends_the_outage() -> None:
    h = DbHealth(1, stall_after=2.0)
    h.begin(0, 0.0)
    assert h.check(5.0) is not None
    up = h.end(0, 6.0)  # thawed: the write went through
    assert up is not None and up.duration == pytest.approx(6.0)
