"""`lars up --demo` as a real process: it answers gethost, stores reports, stops cleanly."""

from __future__ import annotations

import http.cookiejar
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lars.db import server_call_status
from lars.dbengine import make_engine

pytestmark = pytest.mark.e2e

READY = re.compile(r"agent UDP 127\.0\.0\.1 ports (\d+),(\d+),(\d+)")
CONSOLE = re.compile(r"console (http://127\.0\.0\.1:\d+)")
PASSWORD = re.compile(r"console login password .*: (\S+)$")
DEMO_11 = {"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"}


class Up:
    """A `lars up` child process whose stdout lines are collected by a reader thread."""

    def __init__(self, db_url: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", "up", "--db", db_url,
             "--dns-port", "0", "--reporter-port", "0", "--agent-port", "0",
             "--console-port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_line(self, pattern: re.Pattern[str], deadline: float = 60.0) -> re.Match[str]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"lars up exited: {self.stderr()}"
                continue
            self.seen.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern.pattern}: {self.seen}")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._reader.join(10)
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'up.db'}"


@pytest.fixture
def up(db_url: str) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(*extra: str) -> Up:
        started.append(Up(db_url, *extra))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def lars(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def stored_rows(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(server_call_status)).scalar())
    finally:
        engine.dispose()


def test_up_demo_answers_gethost_and_stops_on_sigint(up: Callable[..., Up], db_url: str) -> None:
    proc = up("--demo")
    ports = ",".join(proc.wait_for_line(READY).groups())
    out = lars("gethost", "1", "1", "--agent-ports", ports, "--timeout", "5")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in DEMO_11
    route = lars("getroute", "1", "1", "--agent-ports", ports, "--timeout", "5")
    assert set(route.stdout.split()) == DEMO_11
    sim = lars("simulator", "1", "1", "2", "30", "--agent-ports", ports, "--timeout", "5")
    assert sim.returncode == 0 and "OVERLOAD answers" in sim.stdout, sim.stderr
    # The agent aggregates reports and sends them on; the reporter stores them.
    end = time.monotonic() + 60
    while stored_rows(db_url) < 3:
        assert time.monotonic() < end, "reports never reached the database"
        time.sleep(0.2)
    assert proc.stop(signal.SIGINT) == 0
    assert any("stopped" in line for line in proc.seen + list(proc.lines.queue))


def test_up_stops_on_sigterm_and_restarts_on_the_same_database(
    up: Callable[..., Up], db_url: str
) -> None:
    first = up("--demo")
    first.wait_for_line(READY)
    assert first.stop(signal.SIGTERM) == 0
    second = up("--demo")  # seeding again adds nothing and raises nothing
    ports = ",".join(second.wait_for_line(READY).groups())
    out = lars("getroute", "1", "1", "--agent-ports", ports, "--timeout", "5")
    assert set(out.stdout.split()) == DEMO_11
    assert second.stop(signal.SIGTERM) == 0


def test_up_without_demo_has_empty_routes(up: Callable[..., Up]) -> None:
    proc = up()
    ports = ",".join(proc.wait_for_line(READY).groups())
    out = lars("gethost", "1", "1", "--agent-ports", ports, "--attempts", "2")
    assert out.returncode == 4, out.stderr  # no host: the module is missing
    assert (
        out.stderr
        == "lars gethost: module 1:1: NOEXIST (the route service has no hosts for it)\n"
    )
    assert proc.stop(signal.SIGINT) == 0


def test_up_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        out = lars("up", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--dns-port", port,
                   "--reporter-port", "0", "--agent-port", "0", "--no-console")  # fmt: skip
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"lars up: route service: cannot listen on 127.0.0.1:{port}: " in out.stderr


def test_up_demo_serves_the_console_with_a_generated_password(up: Callable[..., Up]) -> None:
    proc = up("--demo")
    url = proc.wait_for_line(CONSOLE).group(1)
    password = proc.wait_for_line(PASSWORD).group(1)
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with pytest.raises(urllib.error.HTTPError) as denied:  # no session: no data
        opener.open(f"{url}/api/modules", timeout=10)
    assert denied.value.code == 401
    denied.value.close()
    login = urllib.request.Request(
        f"{url}/api/login",
        data=json.dumps({"password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with opener.open(login, timeout=10) as reply:
        assert reply.status == 200
    with opener.open(f"{url}/api/modules", timeout=10) as reply:
        modules = {(m["modid"], m["cmdid"]) for m in json.load(reply)}
    assert (1, 1) in modules
    assert proc.stop(signal.SIGINT) == 0


@pytest.mark.mysql
def test_up_creates_a_missing_mysql_database(mysql_server_url: str) -> None:
    """`lars up --db mysql+pymysql://.../newdb` creates the database as `lars initdb` does
    (it failed with only `Unknown database`)."""
    name = f"lars_up_new_{int(time.time() * 1000) % 10**9}"
    url = mysql_server_url.rstrip("/") + f"/{name}"
    server = make_engine(mysql_server_url)
    up = Up(url, "--no-console")
    try:
        match = up.wait_for_line(READY)
        assert match is not None
        assert f"/{name}" in up.seen[-1]  # the ready line names the database it uses
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(func.count()).select_from(server_call_status))
                assert rows.scalar() == 0  # the schema is there, empty
        finally:
            engine.dispose()
        assert up.stop(signal.SIGTERM) == 0
    finally:
        up.kill()
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()
