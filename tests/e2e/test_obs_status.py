"""`lars status` against real `python -m lars dns|reporter|agent` processes, text and
--json, the agent's module view, exit codes, and JSON log lines."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.client import LarsClient, RetCode
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.obs_util import scrape, value

pytestmark = pytest.mark.e2e

_URL = re.compile(r"metrics (?:on )?(http://[\d.]+:\d+)/metrics")
_PORT = re.compile(r"listening on port (\d+)|reporter on port (\d+)|UDP ([\d,]+) \(")


class Daemon:
    """A `lars` daemon whose log goes to a file; `url` is its metrics listener."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "w", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", *args, "--metrics", "127.0.0.1:0"],
                stdout=subprocess.DEVNULL,
                stderr=fh,
            )
        self.url = self._wait(_URL).group(1)

    def _wait(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = pattern.search(self.text())
            if m:
                return m
            assert self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError(f"no {pattern.pattern!r} in {self.log}:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def port(self) -> str:
        m = self._wait(_PORT)
        return next(g for g in m.groups() if g)

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon, Daemon]]:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 2, "10.0.0.1", 9001)
    RouteAdmin(engine).add_host(1, 2, "10.0.0.2", 9002)
    engine.dispose()
    started: list[Daemon] = []
    try:
        dns = Daemon(tmp_path / "dns.log", "dns", "--db", url, "--ip", "127.0.0.1",
                     "--port", "0")  # fmt: skip
        started.append(dns)
        reporter = Daemon(tmp_path / "reporter.log", "reporter", "--log-format", "json",
                          "--db", url, "--ip", "127.0.0.1", "--port", "0")  # fmt: skip
        started.append(reporter)
        agent = Daemon(
            tmp_path / "agent.log", "--log-level", "INFO", "agent", "--base-port", "0",
            "--dns", f"127.0.0.1:{dns.port()}", "--reporter", f"127.0.0.1:{reporter.port()}",
            "--caller", "127.0.0.1",
        )  # fmt: skip
        started.append(agent)
        yield dns, reporter, agent
    finally:
        for d in reversed(started):
            d.stop()


def test_status_of_each_daemon_text_json_and_module(stack: tuple[Daemon, Daemon, Daemon]) -> None:
    dns, reporter, agent = stack
    ports = tuple(int(p) for p in agent.port().split(","))
    with LarsClient(ports=ports, timeout=1.0) as client:  # type: ignore[arg-type]
        client.reg_init(1, 2)
        deadline = time.monotonic() + 20
        while client.get_host(1, 2).retcode != RetCode.SUCC:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(3):
            client.report(1, 2, "10.0.0.1", 9001, 1)

    r = status("--metrics", dns.address)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("lars dns: ready")
    assert "1 modules, 2 hosts" in r.stdout and "database up" in r.stdout
    r = status("--metrics", dns.address, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["daemon"] == "dns" and doc["hosts"] == 2

    r = status("--metrics", reporter.address)
    assert r.returncode == 0 and r.stdout.startswith("lars reporter: ready"), r.stdout

    deadline = time.monotonic() + 20
    while True:  # the agent needs its route service connection to say "up"
        r = status("--metrics", agent.address)
        if "route service up" in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("lars agent: ready")
    assert "modules: 1 ready" in r.stdout
    doc = json.loads(status("--metrics", agent.address, "--json").stdout)
    assert doc["modules"]["ready"] == 1 and doc["get_host"] >= 1

    deadline = time.monotonic() + 10
    while True:  # the three reports travel by UDP: wait until the shard counted them
        doc = json.loads(status("--metrics", agent.address, "--module", "1", "2", "--json").stdout)
        h1 = next(h for h in doc["hosts"] if h["port"] == 9001)
        if h1["rerr"] == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert h1["rerr"] == 3 and h1["contin_err"] == 3 and h1["state"] == "idle"
    r = status("--metrics", agent.address, "--module", "1", "2")
    assert r.returncode == 0 and r.stdout.startswith("module 1:2 (shard 0): ready")
    assert "10.0.0.1:9001" in r.stdout and "10.0.0.2:9002" in r.stdout
    r = status("--metrics", agent.address, "--module", "5", "5")
    assert r.returncode == 4 and "not held" in r.stderr

    samples = scrape(agent.url)
    assert value(samples, "lars_agent_reports_total", result="error") == 3
    assert value(scrape(dns.url), "lars_dns_subscribers") == 1

    lines = [ln for ln in reporter.text().splitlines() if ln.strip()]
    docs = [json.loads(ln) for ln in lines]  # every line one JSON object
    assert docs and all(d["daemon"] == "reporter" and d["level"] for d in docs)
    assert any("reporter on port" in d["message"] for d in docs)
    assert {"time", "level", "logger", "message", "daemon"} <= set(docs[0])


def test_status_of_nothing_exits_3() -> None:
    r = status("--metrics", f"127.0.0.1:{free_port()}")
    assert r.returncode == 3
    assert r.stderr.startswith("lars status: no answer from http://127.0.0.1:")
    r = status("--metrics", f"127.0.0.1:{free_port()}", "--json")
    assert r.returncode == 3


def test_busy_metrics_port_is_a_clear_error_and_off_works(tmp_path: Path) -> None:
    import socket

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "lars", "reporter", "--db", url, "--port", "0",
             "--metrics", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert f"metrics listener cannot bind 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    log = tmp_path / "off.log"
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "INFO", "reporter", "--db", url,
             "--port", "0", "--metrics", "off"],
            stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "reporter on port" not in log.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert "metrics on" not in log.read_text(encoding="utf-8")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
