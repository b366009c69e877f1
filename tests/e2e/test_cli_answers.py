"""The client tools say what happened (issue 12, item 2), through the real entry point.

A real `lars agent` whose route service is down, no agent at all (a closed port, a
silent one), `lars up`'s hint on other ports, and `--json` on every tool.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base
from tests.integration.client_fake_agent import FakeAgent

pytestmark = pytest.mark.e2e

HOSTS = {(1, 1): [("10.0.0.1", 9001), ("192.168.1.177", 9002)], (2, 1): [("10.0.0.3", 80)]}
UNREACHABLE = "NOEXIST (the agent cannot reach the route service)"


def lars(
    *argv: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def lonely_agent(tmp_path: Path) -> Iterator[int]:
    """A real agent whose route service (and reporter) nothing listens for."""
    base = free_udp_base()
    nowhere = f"127.0.0.1:{free_port()}"
    agent = Proc(tmp_path / "agent.log", "agent", "--base-port", str(base),
                 "--dns", nowhere, "--reporter", nowhere)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "agent listening" not in agent.log.read_text():
            assert agent.proc.poll() is None and time.monotonic() < deadline, agent.log.read_text()
            time.sleep(0.05)
        yield base
    finally:
        code, log = agent.stop()
        assert code == 0, log


def test_gethost_says_the_agent_cannot_reach_the_route_service(lonely_agent: int) -> None:
    port = str(lonely_agent)
    out = lars("gethost", "1", "2", "--agent-port", port)
    assert (out.returncode, out.stdout) == (3, ""), out.stderr
    assert out.stderr == f"lars gethost: module 1:2: {UNREACHABLE}\n"
    out = lars("gethost", "1", "2", "--agent-port", port, "--json")
    assert out.returncode == 3
    answer = json.loads(out.stdout)
    assert answer["retcode"] == "NOEXIST"
    assert answer["reason"] == "ROUTE_SERVICE_UNREACHABLE"
    assert answer["answer"] == UNREACHABLE
    out = lars("getroute", "1", "2", "--agent-port", port)
    assert (out.returncode, out.stderr) == (3, f"lars getroute: module 1:2: {UNREACHABLE}\n")


def test_no_agent_listening_is_named_with_its_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # closed once the block ends: ICMP refusals
    for command in (
        ["gethost", "5", "5"],
        ["getroute", "5", "5"],
        ["report", "5", "5", "1.2.3.4", "80", "0"],
    ):
        out = lars(*command, "--agent-ports", f"{closed},{closed},{closed}")
        assert out.returncode == 3, (command, out.stderr)
        assert out.stderr == (
            f"lars {command[0]}: agent 127.0.0.1:{closed} does not answer: "
            "nothing listens there (port unreachable)\n"
        )


def test_qps_without_an_agent_is_no_answer_not_a_rate() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    ports = f"{closed},{closed},{closed}"
    out = lars("qps", "1", "--duration", "1", "--quiet", "--agent-ports", ports)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "hosts answered: 0" in out.stdout and "other answers: 0" in out.stdout
    assert out.stderr == (
        f"lars qps: agent 127.0.0.1 ports {ports} does not answer: no get_host was answered\n"
    )


def test_report_to_a_silent_agent_is_not_a_silent_success() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        out = lars(
            "report", "1", "2", "1.2.3.4", "80", "0", "--agent-ports", f"{port},{port},{port}"
        )
        got, _ = silent.recvfrom(65536)  # the report did go out
    assert got[:4] == (6).to_bytes(4, "little")
    assert out.returncode == 3
    assert out.stderr == (
        f"lars report: agent 127.0.0.1:{port} does not answer: no reply within 0.2 s\n"
    )


def test_up_suggests_a_command_that_reaches_its_agent(tmp_path: Path) -> None:
    base = free_udp_base()
    env = {**os.environ, "LARS_CONSOLE_PASSWORD": "x" * 20}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lars", "--log-level", "WARNING", "up", "--demo", "--no-console",
         "--db", f"sqlite:///{tmp_path / 'up.db'}", "--dns-port", "0", "--reporter-port", "0",
         "--agent-port", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        hint = ""
        for line in proc.stdout:
            if "try: " in line:
                hint = line.split("try: ", 1)[1].strip()
                break
        assert hint == f"lars gethost 1 1 --agent-port {base}"
        out = lars(*hint.split()[1:], "--timeout", "5")
        assert out.returncode == 0, out.stderr
        assert re.fullmatch(r"127\.0\.0\.1:\d+\n", out.stdout)
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    with FakeAgent(HOSTS) as fake:
        yield fake


def ports(agent: FakeAgent) -> list[str]:
    return ["--agent-ports", ",".join(map(str, agent.ports)), "--timeout", "5"]


def test_json_output_of_the_client_tools(agent: FakeAgent) -> None:
    out = lars("gethost", "1", "1", "--json", *ports(agent))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "modid": 1, "cmdid": 1, "retcode": "SUCC", "ip": "10.0.0.1", "port": 9001,
        "reason": None, "answer": "SUCC", "timed_out": False, "refused": False,
    }  # fmt: skip
    out = lars("getroute", "1", "1", "--json", *ports(agent))
    route = json.loads(out.stdout)
    assert route["hosts"] == [
        {"ip": "10.0.0.1", "port": 9001},
        {"ip": "192.168.1.177", "port": 9002},
    ]
    missing = lars("getroute", "7", "7", "--json", "--attempts", "1", *ports(agent))
    assert missing.returncode == 4 and json.loads(missing.stdout)["retcode"] == "NOEXIST"
    out = lars("simulator", "1", "1", "0", "10", "--json", "--seed", "1", *ports(agent))
    sim = json.loads(out.stdout)
    assert sim["calls"] == 10 and sum(h["succ"] for h in sim["hosts"]) == 10
    assert sim["answers"]["SUCC"] == 10
    out = lars("qps", "1", "--duration", "1", "--json", *ports(agent))
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    qps = json.loads(line)
    assert qps["workers"] == 1 and qps["calls"] >= qps["hosts"] > 0


def test_json_route_version(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert lars("route", "add", "3", "1", "10.0.0.5", "80", "--db", db).returncode == 0
    out = lars("route", "version", "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["version"] > 0
    assert got["pending"] == [{"modid": 3, "cmdid": 1, "version": got["version"]}]
