"""The watchdog: a call past its deadline is an outage, logged once, whatever the socket."""

from __future__ import annotations

import logging
import threading

import pytest

from lars.dns.outage import OutageLog
from lars.dns.pollthread import PollerThread
from lars.dns.store import PollMark, Snapshot
from lars.dns.watchdog import Watch, Watchdog
from lars.reactor.backoff import no_backoff
from tests.integration.dns_wire import wait_for
from tests.unit.dns_fakes import make


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_watch_reports_a_call_past_its_deadline_once() -> None:
    watch = Watch()
    assert watch.overdue(0.0) is None
    watch.begin("the version poll", 1.0, now=10.0)
    assert watch.overdue(10.9) is None
    found = watch.overdue(11.0)
    assert found is not None
    cause, started = found
    assert started == 10.0 and "the version poll has not returned after 1.0s" in str(cause)
    assert watch.overdue(30.0) is None  # once per call
    watch.end()
    watch.begin("the version poll", 1.0, now=40.0)
    assert watch.overdue(41.5) is not None  # a new call is watched again
    watch.end()
    assert watch.overdue(99.0) is None


def test_watchdog_logs_the_outage_once_and_the_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watch = Watch(clock)
    logger = logging.getLogger("test.dns.watchdog")
    outage = OutageLog("dns-poller", logger)
    dog = Watchdog(watch, outage, interval=0.1, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.dns.watchdog"):
        with watch.running("the version poll", 1.0):
            clock.now += 0.5
            assert not dog.check()
            clock.now += 0.6
            assert dog.check()
            clock.now += 5.0
            assert not dog.check()
        # the hung call then fails by its socket timeout: the same outage
        outage.failed(TimeoutError("timed out"), clock.now)
        clock.now += 20.0
        outage.succeeded(clock.now)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2
    assert "has not returned after 1.1s" in msgs[0]
    assert "reachable again after 26.1s" in msgs[1]  # measured from the hung call's start
    assert outage.outages == 1


def test_poller_thread_reports_a_hung_poll(no_leaks: None) -> None:
    """A poll that never returns (a frozen socket without a timeout) is an outage within
    the poll deadline, and the recovery is logged when it returns."""
    store, _published, poller = make()
    gate = threading.Event()
    entered = threading.Event()
    real_poll = store.poll

    def hung(release_after: int | None = None) -> PollMark:
        entered.set()
        gate.wait(30)
        return real_poll(release_after)

    thread = PollerThread(poller, interval=0.01, poll_deadline=0.2, backoff_factory=no_backoff)
    assert thread.first_load()
    store.poll = hung  # type: ignore[method-assign]
    thread.start()
    try:
        assert entered.wait(10)
        wait_for(lambda: thread.stats().in_outage, timeout=10, what="the hung poll reported")
        assert thread.stats().outages == 1
        assert "the version poll has not returned" in thread.stats().last_error
        gate.set()
        wait_for(lambda: not thread.stats().in_outage, timeout=10, what="the recovery")
        assert thread.stats().outages == 1
    finally:
        gate.set()
        thread.stop()


def test_poller_thread_reports_a_hung_reload_after_the_reload_deadline(no_leaks: None) -> None:
    """Reloads get a longer deadline than polls: a reload hanging past it is reported."""
    store, _published, poller = make()
    gate = threading.Event()
    real_load = store.load

    def hung(after: int | None = None) -> Snapshot:
        gate.wait(30)
        return real_load(after)

    thread = PollerThread(
        poller, interval=0.01, poll_deadline=0.05, reload_deadline=0.3, backoff_factory=no_backoff
    )
    assert thread.first_load()
    store.load = hung  # type: ignore[method-assign]
    store.version = 2  # the next poll finds a change and reloads
    thread.start()
    try:
        wait_for(lambda: thread.stats().in_outage, timeout=10, what="the hung reload reported")
        assert "the route table load has not returned" in thread.stats().last_error
        gate.set()
        wait_for(lambda: not thread.stats().in_outage, timeout=10, what="the recovery")
        assert thread.stats().outages == 1 and poller.table is not None
        assert poller.table.version == 2
    finally:
        gate.set()
        thread.stop()
