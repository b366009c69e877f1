"""lars.threads: no thread ends silently (issue 19, item 3), and the readiness rules that
name a dead thread, a missing table or a database never reached (item 6)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from lars.errors import DaemonFailed
from lars.obs.ready import Readiness, dns_ready, missing_schema, reporter_ready, with_threads
from lars.obs.status import render_status
from lars.reload import SignalWaiter
from lars.threads import ThreadFailure, ThreadHealth


def run(target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def fast(**kw: float) -> ThreadHealth:
    return ThreadHealth(restart_delay=0.01, **kw)  # type: ignore[arg-type]


def test_a_failing_restartable_body_runs_again_and_is_listed_not_dead() -> None:
    health = fast()
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OverflowError("timeout value is too large")
        # the second run ends because the daemon stops

    stopped = threading.Event()

    def stop_after_second() -> bool:
        if len(calls) >= 2:
            stopped.set()
        return stopped.is_set()

    run(health.target("dns-poller", body, stopping=stop_after_second, restart=True))
    assert len(calls) == 2
    [failure] = health.failures()
    assert (failure.thread, failure.error, failure.restarts, failure.dead) == (
        "dns-poller",
        "OverflowError: timeout value is too large",
        1,
        False,
    )
    assert failure.recent and 0 <= failure.age < 30
    assert health.reasons() == []  # restarted: running, not a readiness reason
    assert failure.describe() == (
        "thread dns-poller restarted 1x, last error 0s ago: "
        "OverflowError: timeout value is too large"
    )


def test_an_old_restart_is_no_longer_recent() -> None:
    now = [100.0]
    health = ThreadHealth(restart_delay=0.0, clock=lambda: now[0])
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("once")

    run(health.target("w", body, stopping=lambda: len(calls) >= 2, restart=True))
    now[0] += 61.0
    [failure] = health.failures()
    assert failure.age == 61.0 and not failure.recent
    assert "last error 61s ago" in failure.describe()


def test_a_body_that_keeps_failing_dies_after_the_restart_budget_and_calls_the_hook() -> None:
    health = fast(max_restarts=3)
    dead: list[ThreadFailure] = []
    health.on_fatal(dead.append)
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise ValueError("cannot convert float NaN to integer")

    run(health.target("reporter-writer0", body, stopping=lambda: False, restart=True))
    assert len(calls) == 4  # the first run and 3 restarts
    assert [f.describe() for f in dead] == [
        "thread reporter-writer0 died: ValueError: cannot convert float NaN to integer"
    ]
    assert dead[0].restarts == 3
    assert health.reasons() == [dead[0].describe()]


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), RuntimeError("boom")])
def test_any_exception_kills_a_not_restartable_thread_loudly(exc: BaseException) -> None:
    health = fast()
    dead: list[ThreadFailure] = []
    health.on_fatal(dead.append)

    def body() -> None:
        raise exc

    run(health.target("agent-udp", body, stopping=lambda: False, restart=False))
    assert len(dead) == 1 and dead[0].dead and dead[0].thread == "agent-udp"
    assert dead[0].error.startswith(type(exc).__name__)


def test_a_loop_that_just_returns_counts_as_a_failure() -> None:
    health = fast()
    run(health.target("dns-watchdog", lambda: None, stopping=lambda: False, restart=False))
    assert health.reasons() == ["thread dns-watchdog died: its loop returned unexpectedly"]


def test_ending_while_stopping_is_not_a_failure() -> None:
    health = fast()

    def body() -> None:
        raise RuntimeError("closing")

    run(health.target("t", body, stopping=lambda: True, restart=True))
    run(health.target("u", lambda: None, stopping=lambda: True, restart=False))
    assert health.failures() == ()


def test_a_hook_added_after_the_death_is_still_called() -> None:
    health = fast()
    health.died("agent-clients", "SystemExit")
    seen: list[str] = []
    health.on_fatal(lambda f: seen.append(f.describe()))
    assert seen == ["thread agent-clients died: SystemExit"]


def test_signal_waiter_fail_ends_wait_with_daemon_failed() -> None:
    waiter = SignalWaiter("dns")
    health = fast()
    health.on_fatal(lambda f: waiter.fail(f.describe()))
    threading.Thread(target=health.died, args=("dns-poller", "OverflowError: x")).start()
    with pytest.raises(DaemonFailed, match=r"^dns stops: thread dns-poller died: OverflowError"):
        waiter.wait()


# --- readiness rules ---


def test_with_threads_puts_dead_threads_first() -> None:
    assert with_threads(Readiness(True), []) == Readiness(True)
    got = with_threads(Readiness(False, ("db",)), ["thread x died: E"])
    assert got == Readiness(False, ("thread x died: E", "db"))


@pytest.mark.parametrize(
    ("error", "named"),
    [
        ("ProgrammingError: (1146, \"Table 'lars_dns.RouteData' doesn't exist\")",
         "table RouteData is missing"),
        ("OperationalError: no such table: RouteVersion", "table RouteVersion is missing"),
        ("(1054, \"Unknown column 'weight' in 'field list'\")", "column weight is missing"),
        ("OperationalError: (2003, \"Can't connect to MySQL server\")", None),
        ("", None),
    ],
)  # fmt: skip
def test_missing_schema(error: str, named: str | None) -> None:
    assert missing_schema(error) == named


def test_dns_readiness_names_a_missing_table_instead_of_reachability() -> None:
    err = "ProgrammingError: (1146, \"Table 'lars_dns.RouteData' doesn't exist\")"
    r = dns_ready(loaded=True, last_success=0.0, poll_interval=0.1, now=5.0, last_error=err)
    assert not r.ready
    assert r.reasons[0].startswith("table RouteData is missing in the database")
    assert "reachable" not in r.reasons[0]
    down = dns_ready(loaded=True, last_success=0.0, poll_interval=0.1, now=5.0, last_error="x")
    assert "is the database reachable?" in down.reasons[0]


def test_reporter_not_ready_while_the_database_was_never_reached() -> None:
    r = reporter_ready(
        db_up=False, queue_depth=(0, 0), max_pending=10, db_reached=False, db_cause="refused"
    )
    assert r == Readiness(False, ("database unavailable since start: refused",))
    # reached once, then down: buffering keeps it ready (as before)
    assert reporter_ready(db_up=False, queue_depth=(0, 0), max_pending=10, db_reached=True).ready


def test_status_shows_restarted_threads_and_the_database_error() -> None:
    doc = {
        "daemon": "reporter",
        "ready": {"ready": False, "reasons": ["database unavailable since start: refused"]},
        "port": 7779,
        "connections": 0,
        "received": 0,
        "written": 0,
        "dropped": 0,
        "queue_depth": [0],
        "database_up": False,
        "database_error": "refused",
        "last_commit_age": None,
        "threads": [
            {"thread": "reporter-writer0", "error": "E: x", "restarts": 2, "dead": False, "age": 3}
        ],
    }
    text = render_status(doc)
    assert "NOT READY: database unavailable since start: refused" in text
    assert "database DOWN (refused), no commit yet" in text
    assert "thread reporter-writer0 restarted 2x, last error 3s ago: E: x" in text
