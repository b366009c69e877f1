"""No silent thread death (issue 19, item 3): each thread the daemons start has its work
killed by an injected exception; a restartable one comes back and keeps working, the
others are reported dead, and `/readyz` and `/status` (what `lars status` prints) name the
thread and the error. Real services on loopback sockets and SQLite."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lars.agent.config import AgentConfig
from lars.agent.metrics import agent_metrics_server
from lars.agent.service import AgentService
from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsConfig, DnsService
from lars.obs.listen import MetricsConfig
from lars.obs.server import MetricsServer
from lars.obs.status import render_status
from lars.reactor import ReactorConfig, backoff
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterConfig, ReporterService
from lars.routes.admin import RouteAdmin
from lars.threads import ThreadFailure
from lars.up.stack import UpStack
from tests.integration.agent_fakes import FakeReporter, FakeRouteService
from tests.integration.dns_wire import RouteConn, wait_for
from tests.integration.test_obs_reporter import frame
from tests.obs_util import get_json

LISTEN = MetricsConfig(listen=("127.0.0.1", 0))


def once(exc: BaseException, then: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in that raises `exc` on its first call and behaves like `then` afterwards."""
    calls = [0]

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise exc
        return then(*args, **kwargs)

    return fake


def raise_(exc: BaseException) -> Callable[[], None]:
    def fn() -> None:
        raise exc

    return fn


def not_ready_because(metrics: MetricsServer, needle: str) -> None:
    """/readyz answers 503 naming `needle`, and /status renders it for `lars status`."""

    def named() -> bool:
        code, body = get_json(metrics.url + "/readyz")
        return code == 503 and any(needle in r for r in body["reasons"])

    wait_for(named, timeout=30, what=f"/readyz naming {needle!r}")
    code, body = get_json(metrics.url + "/readyz")
    assert code == 503 and any(needle in r for r in body["reasons"]), body
    code, doc = get_json(metrics.url + "/status")
    assert code == 200
    assert needle in render_status(doc).splitlines()[0]
    dead = [f"thread {t['thread']} died: {t['error']}" for t in doc["threads"] if t["dead"]]
    assert any(line.startswith(needle) for line in dead), doc["threads"]


@pytest.fixture
def dns(no_leaks: None, sqlite_url: str) -> Iterator[tuple[DnsService, MetricsServer, str]]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
    engine.dispose()
    svc = DnsService(
        DnsConfig(
            db_url=sqlite_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0, threads=1),
            poll_interval=0.05,
            retry_initial=0.05,
            retry_max=0.2,
        )
    )
    metrics = dns_metrics_server(svc, LISTEN)
    assert metrics is not None
    metrics.start()
    svc.start()
    try:
        yield svc, metrics, sqlite_url
    finally:
        svc.stop()
        metrics.stop()


def test_dns_poller_restarts_after_an_injected_failure_and_keeps_serving_edits(
    dns: tuple[DnsService, MetricsServer, str],
) -> None:
    svc, metrics, url = dns
    poller = svc._poller
    poller.check = once(SystemExit(9), poller.check)  # type: ignore[method-assign]
    wait_for(lambda: any(f.thread == "dns-poller" for f in svc.stats().threads), what="failure")
    [failure] = [f for f in svc.stats().threads if f.thread == "dns-poller"]
    assert (failure.error, failure.restarts, failure.dead) == ("SystemExit: 9", 1, False)
    engine = make_engine(url)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.2", 80)
    engine.dispose()

    def served() -> bool:
        with RouteConn(svc.port) as conn:
            return sorted(conn.get(1, 1)) == [("10.0.0.1", 80), ("10.0.0.2", 80)]

    wait_for(served, timeout=30, what="the edit served after the restart")
    wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, what="ready")
    _, doc = get_json(metrics.url + "/status")
    [thread] = doc["threads"]
    assert thread["thread"] == "dns-poller" and thread["restarts"] == 1 and not thread["dead"]
    text = render_status(doc)
    assert "thread dns-poller restarted 1x, last error " in text and "SystemExit: 9" in text


def test_dns_poller_that_keeps_dying_is_reported_dead_and_stops_the_daemon(
    dns: tuple[DnsService, MetricsServer, str],
) -> None:
    """The issue's finding: an interval of inf made the poll thread's wait raise
    OverflowError and the thread vanished while /readyz blamed the database."""
    svc, metrics, _ = dns
    fatal: list[ThreadFailure] = []
    svc.threads.on_fatal(fatal.append)
    svc._thread.set_interval(math.inf)  # bypasses the range check, as the bug did
    not_ready_because(metrics, "thread dns-poller died: OverflowError: timestamp out of range")
    assert [f.thread for f in fatal] == ["dns-poller"]
    assert fatal[0].restarts == 5
    with RouteConn(svc.port) as conn:  # the last table is still served meanwhile
        assert conn.get(1, 1) == [("10.0.0.1", 80)]


def test_dns_watchdog_restarts(dns: tuple[DnsService, MetricsServer, str]) -> None:
    svc, metrics, _ = dns
    watchdog = svc._thread._watchdog
    watchdog.check = once(RuntimeError("injected"), watchdog.check)  # type: ignore[method-assign]
    wait_for(
        lambda: (
            [(f.thread, f.restarts, f.dead, f.error) for f in svc.stats().threads]
            == [("dns-poller-watchdog", 1, False, "RuntimeError: injected")]
        ),
        what="the watchdog restarted",
    )
    wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, what="ready")


def test_dns_worker_loop_death_is_named(dns: tuple[DnsService, MetricsServer, str]) -> None:
    svc, metrics, _ = dns
    fatal: list[ThreadFailure] = []
    svc.threads.on_fatal(fatal.append)
    assert svc._server is not None
    svc._server._threads[0].post(raise_(SystemExit(1)))
    not_ready_because(metrics, "thread dns-worker0 died: SystemExit: 1")
    assert [f.thread for f in fatal] == ["dns-worker0"]


def test_dns_master_loop_death_is_named(dns: tuple[DnsService, MetricsServer, str]) -> None:
    svc, metrics, _ = dns
    assert svc._server is not None
    svc._server.master.post(raise_(KeyboardInterrupt()))
    not_ready_because(metrics, "thread dns-master died: KeyboardInterrupt")


@pytest.fixture
def reporter(no_leaks: None, sqlite_url: str) -> Iterator[tuple[ReporterService, MetricsServer]]:
    svc = ReporterService(
        ReporterConfig(
            db_url=sqlite_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0, threads=1),
            writers=2,
            batch_interval=0.01,
            stats_interval=0,
        )
    )
    metrics = reporter_metrics_server(svc, LISTEN)
    assert metrics is not None
    metrics.start()
    svc.start()
    try:
        yield svc, metrics
    finally:
        svc.stop()
        metrics.stop()


def test_reporter_writer_restarts_and_loses_no_row(
    reporter: tuple[ReporterService, MetricsServer],
) -> None:
    svc, metrics = reporter
    for writer in svc._writers:
        writer._write = once(SystemExit(2), writer._write)  # type: ignore[method-assign]
    with socket.create_connection(("127.0.0.1", svc.port)) as conn:
        for modid in range(1, 41):  # 40 modules: both writers get rows
            conn.sendall(frame(modid, [(i, 80, 1, 0) for i in range(1, 6)]))
        wait_for(lambda: svc.stats().written == 200, timeout=30, what="every row written")
    assert all(w.received > 0 for w in svc.stats().writers)
    threads = sorted((f.thread, f.restarts, f.dead, f.error) for f in svc.stats().threads)
    assert threads == [(f"reporter-writer{i}", 1, False, "SystemExit: 2") for i in (0, 1)]
    assert svc.stats().dropped == 0
    assert get_json(metrics.url + "/readyz")[0] == 200


@pytest.mark.parametrize("loop", ["reporter-master", "reporter-worker0"])
def test_reporter_loop_death_is_named(
    reporter: tuple[ReporterService, MetricsServer], loop: str
) -> None:
    svc, metrics = reporter
    thread = svc._master if loop == "reporter-master" else svc._server._threads[0]
    thread.post(raise_(SystemExit("injected")))
    not_ready_because(metrics, f"thread {loop} died: SystemExit: injected")


@pytest.mark.parametrize("target", ["agent-clients", "agent-udp"])
def test_agent_loop_death_is_named(no_leaks: None, target: str) -> None:
    route, rep = FakeRouteService().start(), FakeReporter().start()
    agent = AgentService(
        AgentConfig(
            base_port=0,
            dns_addresses=(route.address,),
            reporter_addresses=(rep.address,),
            caller="10.1.2.3",
        ),
        backoff_factory=lambda: backoff(0.01, 0.2),
    )
    metrics = agent_metrics_server(agent, LISTEN)
    assert metrics is not None
    metrics.start()
    agent.start()
    try:
        wait_for(lambda: agent.stats().route_connected, what="connected")
        thread = agent._clients if target == "agent-clients" else agent._shard_threads[0]
        thread.post(raise_(SystemExit(5)))
        not_ready_because(metrics, f"thread {target} died: SystemExit: 5")
    finally:
        agent.stop()
        metrics.stop()
        route.stop()
        rep.stop()


def test_console_serving_thread_death_is_reported(no_leaks: None, sqlite_url: str) -> None:
    from lars.console import build_console
    from lars.console.server import ConsoleServer

    engine = make_engine(sqlite_url)
    init_schema(engine)
    server = ConsoleServer(build_console(engine, "test-password-1"), "127.0.0.1", 0)
    fatal: list[ThreadFailure] = []
    server.threads.on_fatal(fatal.append)
    server.start()
    try:
        uvicorn_server = server._server
        assert uvicorn_server is not None

        async def failing_tick(counter: int) -> bool:
            raise RuntimeError("injected")

        uvicorn_server.on_tick = failing_tick  # type: ignore[method-assign]
        wait_for(lambda: bool(fatal), timeout=30, what="the console thread reported dead")
        assert [f.describe() for f in fatal] == ["thread lars-console died: RuntimeError: injected"]
        assert server.threads.reasons() == [fatal[0].describe()]
    finally:
        server.stop()
        engine.dispose()


def _kill_loop(svc: Any) -> str:
    """Kill one event-loop thread of a started service; the thread's name."""
    if isinstance(svc, DnsService):
        svc._thread.set_interval(math.inf)  # the finding, past the range check
        return "dns-poller"
    if isinstance(svc, ReporterService):
        svc._master.post(raise_(SystemExit("injected")))
        return "reporter-master"
    if isinstance(svc, AgentService):
        svc._clients.post(raise_(SystemExit("injected")))
        return "agent-clients"
    if isinstance(svc, UpStack):
        assert svc.agent is not None
        svc.agent._shard_threads[0].post(raise_(SystemExit("injected")))
        return "agent-udp"
    server = svc._server  # ConsoleServer: uvicorn's tick raises

    async def failing_tick(counter: int) -> bool:
        raise SystemExit("injected")

    server.on_tick = failing_tick
    return "lars-console"


@pytest.mark.parametrize("command", ["dns", "reporter", "agent", "console", "up"])
def test_a_dead_thread_stops_each_daemon_with_exit_1_and_one_line(
    no_leaks: None, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The wiring in each daemon's main: the death ends the wait, the daemon stops, and
    the error boundary prints one line naming the thread (exit 1)."""
    import io
    import threading

    import lars.agent.cli
    import lars.console.cli
    import lars.dns.cli
    import lars.reporter.cli
    import lars.up.stack
    from lars.boundary import report_failure
    from lars.cli import build_parser
    from lars.console.server import ConsoleServer
    from lars.errors import DaemonFailed

    started: list[Any] = []
    module, name, base = {
        "dns": (lars.dns.cli, "DnsService", DnsService),
        "reporter": (lars.reporter.cli, "ReporterService", ReporterService),
        "agent": (lars.agent.cli, "AgentService", AgentService),
        "console": (lars.console.cli, "ConsoleServer", ConsoleServer),
        "up": (lars.up.stack, "UpStack", UpStack),
    }[command]

    class Recorded(base):  # type: ignore[valid-type,misc]
        def start(self) -> None:
            super().start()
            started.append(self)

    monkeypatch.setattr(module, name, Recorded)
    monkeypatch.setenv("LARS_CONSOLE_PASSWORD", "x" * 12)
    route, rep = FakeRouteService().start(), FakeReporter().start()
    argv = {
        "dns": ["--db", sqlite_url, "--ip", "127.0.0.1", "--port", "0", "--metrics", "off"],
        "reporter": ["--db", sqlite_url, "--ip", "127.0.0.1", "--port", "0", "--metrics", "off"],
        "agent": ["--dns", f"127.0.0.1:{route.address[1]}",
                  "--reporter", f"127.0.0.1:{rep.address[1]}",
                  "--base-port", "0", "--metrics", "off", "--ip", "127.0.0.1"],
        "console": ["--db", sqlite_url, "--ip", "127.0.0.1", "--port", "0"],
        "up": ["--db", sqlite_url, "--ip", "127.0.0.1", "--dns-port", "0", "--reporter-port",
               "0", "--agent-port", "0", "--no-console", "--metrics", "off"],
    }[command]  # fmt: skip
    thread_name: list[str] = []

    def kill() -> None:
        wait_for(lambda: bool(started), timeout=60, what="started")
        thread_name.append(_kill_loop(started[0]))

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        args = build_parser([command]).parse_args([command, *argv])
        with pytest.raises(DaemonFailed) as info:
            args.func(args)
    finally:
        killer.join(60)
        route.stop()
        rep.stop()
    out = io.StringIO()
    code = report_failure(command, info.value, debug=False, stream=out)
    assert int(code) == 1
    line = out.getvalue()
    assert line.startswith(f"lars {command}: {command} stops: thread {thread_name[0]} died: ")
    assert line.count("\n") == 1


def test_the_metrics_listener_threads_are_the_daemons_threads(
    dns: tuple[DnsService, MetricsServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener's handler thread is restarted after an injected failure and keeps
    answering; its serving loop, which cannot be restarted, is reported dead to the
    route service's ThreadHealth (the daemon's main stops on it: exit 1)."""
    svc, metrics, _ = dns
    deaths: list[ThreadFailure] = []
    svc.threads.on_fatal(deaths.append)
    assert metrics.threads is svc.threads
    # The worker thread: make one job's bookkeeping raise past respond()'s own catch.
    import concurrent.futures

    real = concurrent.futures.Future.set_running_or_notify_cancel
    monkeypatch.setattr(
        concurrent.futures.Future, "set_running_or_notify_cancel",
        once(SystemExit("injected into the handler thread"), real),
    )  # fmt: skip
    # The first request fails (500) with the thread; the next identical one must not wait
    # on its future (identical requests share one).
    assert get_json(metrics.url + "/status")[0] == 500
    wait_for(
        lambda: any(f.thread == "dns-metrics-work" and f.restarts for f in svc.threads.failures()),
        timeout=30, what="the handler thread restarted",
    )  # fmt: skip
    assert get_json(metrics.url + "/healthz")[0] == 200
    assert get_json(metrics.url + "/status")[0] == 200  # answered by the restarted thread
    assert deaths == []
    # The serving loop: stop it from inside with an exception it does not expect.
    loop = metrics._loop
    assert loop is not None
    loop.call_soon_threadsafe(raise_in_loop, loop)
    wait_for(lambda: any(f.thread == "dns-metrics" for f in deaths), timeout=30,
             what="the listener reported dead")  # fmt: skip
    assert "dns-metrics" in " ".join(svc.threads.reasons())


def raise_in_loop(loop: Any) -> None:
    async def boom() -> None:
        raise SystemExit("injected into the listener loop")

    loop.create_task(boom())
