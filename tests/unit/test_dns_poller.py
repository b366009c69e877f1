"""Poller decisions and outage handling with a fake store and fake time."""

from __future__ import annotations

import logging
import threading

import pytest

from lars.dns.outage import OutageLog
from lars.dns.pollthread import PollerThread
from lars.dns.store import ChangeRow, PollMark
from lars.errors import StoreUnavailable
from lars.reactor.backoff import no_backoff
from tests.unit.dns_fakes import make


def test_first_load_publishes_without_push_and_deletes_rows_read() -> None:
    store, published, poller = make()
    store.changes = [ChangeRow(1, 1, 1, 1), ChangeRow(2, 5, 5, 2)]  # row 2 is newer
    poller.load(0.0)
    assert len(published.calls) == 1
    table, changed = published.calls[0]
    assert table.version == 1 and table.hosts((1, 1)) == ((10, 80),)
    assert changed == set()
    assert store.deleted == [1]
    assert [c.id for c in store.changes] == [2]


def test_poll_without_new_version_does_nothing() -> None:
    store, published, poller = make()
    poller.load(0.0)
    assert not poller.poll(1.0)
    assert store.loads == 1 and len(published.calls) == 1


def test_new_version_pushes_change_rows_and_diff() -> None:
    store, published, poller = make()
    poller.load(0.0)
    store.version = 2
    store.routes = [(1, 1, 10, 80), (2, 2, 20, 90)]
    store.changes = [ChangeRow(7, 3, 3, 2), ChangeRow(8, 4, 4, 3)]
    assert poller.poll(1.0)
    table, changed = published.calls[-1]
    assert table.version == 2
    assert changed == {(3, 3), (2, 2)}  # the change row <= 2 and the differing module
    assert store.deleted == [7]
    assert poller.pushed_modules == 2


def test_version_bump_without_change_rows_still_pushes_the_diff() -> None:
    store, published, poller = make()
    poller.load(0.0)
    store.version = 2
    store.routes = []  # module (1, 1) removed, no RouteChange row
    assert poller.poll(1.0)
    assert published.calls[-1][1] == {(1, 1)}


def test_reload_interval_reloads_without_version_change() -> None:
    store, published, poller = make(reload_interval=10.0)
    poller.load(0.0)
    store.routes = [(1, 1, 11, 80)]  # a DBA forgot the version
    assert not poller.poll(9.9)
    assert poller.poll(10.0)
    assert published.calls[-1][1] == {(1, 1)}
    assert not poller.poll(15.0)
    assert poller.poll(20.0)
    assert published.calls[-1][1] == set()


def test_outage_raises_and_keeps_the_table() -> None:
    store, _published, poller = make()
    poller.load(0.0)
    before = poller.table
    store.fail = True
    store.version = 5
    with pytest.raises(StoreUnavailable):
        poller.poll(1.0)
    assert poller.table is before


def test_outage_log_once_then_recovery(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.dns.outage")
    outage = OutageLog("dns", logger)
    with caplog.at_level(logging.WARNING, logger="test.dns.outage"):
        outage.succeeded(0.0)
        for t in range(5):
            outage.failed(StoreUnavailable("Lost connection to MySQL"), float(t))
        outage.succeeded(10.0)
        outage.succeeded(11.0)
        outage.failed(StoreUnavailable("again"), 12.0)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 3
    assert "Lost connection to MySQL" in msgs[0]
    assert "reachable again after 10.0s" in msgs[1]
    assert "again" in msgs[2]
    assert outage.outages == 2


def wait_for(cond: object, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError("condition not met")


def test_thread_survives_outage_and_recovers(no_leaks: None) -> None:
    store, published, poller = make()
    thread = PollerThread(poller, interval=0.001, backoff_factory=no_backoff)
    assert thread.first_load()
    thread.start()
    try:
        store.fail = True
        wait_for(lambda: thread.stats().in_outage)
        assert thread.stats().outages == 1
        assert "connection refused" in thread.stats().last_error
        store.routes = [(1, 1, 99, 80)]
        store.version = 2
        store.fail = False
        wait_for(lambda: not thread.stats().in_outage)
        wait_for(lambda: published.calls[-1][0].version == 2)
        assert published.calls[-1][1] == {(1, 1)}
        assert thread.stats().outages == 1
    finally:
        thread.stop()


def test_thread_survives_unexpected_errors(no_leaks: None) -> None:
    store, _published, poller = make()
    thread = PollerThread(poller, interval=0.001, backoff_factory=no_backoff)
    assert thread.first_load()
    calls = threading.Event()

    def broken(release_after: int | None = None) -> PollMark:
        calls.set()
        raise RuntimeError("bug")

    store.poll = broken  # type: ignore[method-assign]
    thread.start()
    try:
        assert calls.wait(10)
        assert thread._thread is not None and thread._thread.is_alive()
    finally:
        thread.stop()


def test_first_load_retries_until_success_or_stop(no_leaks: None) -> None:
    store, published, poller = make()
    store.fail = True
    thread = PollerThread(poller, interval=0.01, backoff_factory=no_backoff)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(thread.first_load()))
    t.start()
    wait_for(lambda: thread.stats().in_outage)
    store.fail = False
    t.join(10)
    thread.stop()  # ends the watchdog that first_load started
    assert result == [True] and published.calls

    store.fail = True
    store2, _p2, poller2 = make()
    store2.fail = True
    stopper = PollerThread(poller2, interval=0.01, backoff_factory=no_backoff)
    t2 = threading.Thread(target=lambda: result.append(stopper.first_load()))
    t2.start()
    wait_for(lambda: stopper.stats().in_outage)
    stopper.request_stop()
    t2.join(10)
    stopper.stop()
    assert result == [True, False]
