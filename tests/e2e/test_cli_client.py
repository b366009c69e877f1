"""The client tools as real `lars` processes against the scripted fake agent."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lars.protocol import RetCode
from tests.integration.client_fake_agent import FakeAgent

pytestmark = pytest.mark.e2e

HOSTS = {(1, 1): [("10.0.0.1", 9001), ("192.168.1.177", 9002)], (2, 1): [("10.0.0.3", 80)]}
COMMANDS = ["gethost", "getroute", "report", "simulator", "qps"]


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    with FakeAgent(HOSTS) as fake:
        yield fake


def lars(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ports(agent: FakeAgent) -> list[str]:
    return ["--agent-ports", ",".join(map(str, agent.ports)), "--timeout", "5"]


def test_help_lists_every_command() -> None:
    top = lars("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        sub = lars(name, "--help")
        assert sub.returncode == 0 and "--agent-ip" in sub.stdout, name
    assert "agent" in lars("bench", "--help").stdout
    assert "--duration" in lars("bench", "agent", "--help").stdout


def test_gethost(agent: FakeAgent) -> None:
    out = lars("gethost", "1", "1", *ports(agent))
    assert (out.returncode, out.stdout) == (0, "10.0.0.1:9001\n"), out.stderr
    missing = lars("gethost", "7", "7", "--attempts", "2", *ports(agent))
    assert missing.returncode == 4 and "NOEXIST" in missing.stderr  # 4: no host
    bad = lars("gethost", "-1", "1", *ports(agent))
    assert bad.returncode == 2 and "modid" in bad.stderr


def test_getroute(agent: FakeAgent) -> None:
    agent.route_after = 2  # answers empty twice, as an agent fetching the route
    out = lars("getroute", "1", "1", *ports(agent))
    assert (out.returncode, out.stdout) == (0, "10.0.0.1:9001\n192.168.1.177:9002\n"), out.stderr
    missing = lars("getroute", "5", "5", "--attempts", "1", *ports(agent))
    assert missing.returncode == 4 and "NOEXIST" in missing.stderr


def test_report(agent: FakeAgent) -> None:
    out = lars("report", "2", "1", "10.0.0.3", "80", "1", *ports(agent))
    assert out.returncode == 0, out.stderr
    assert agent.reports == [(0, 2, 1, "10.0.0.3", 80, 1)]
    # a host the agent does not hold: the agent ignores the report, and lars says so
    out = lars("report", "2", "1", "192.168.1.177", "9002", "1", *ports(agent))
    assert out.returncode == 4
    assert out.stderr == (
        "lars report: module 2:1: the agent holds no host 192.168.1.177:9002, "
        "so it ignored the report\n"
    )
    out = lars("report", "2", "1", "192.168.1.177", "9002", "1", "--no-check", *ports(agent))
    assert out.returncode == 0, out.stderr
    bad = lars("report", "2", "1", "300.1.1.1", "9002", "1", *ports(agent))
    assert bad.returncode == 2 and "IPv4" in bad.stderr


def test_simulator(agent: FakeAgent) -> None:
    out = lars("simulator", "1", "1", "5", "40", "--seed", "7", *ports(agent))
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:3]}
    succ = sum(int(v[2]) for v in lines.values())
    err = sum(int(v[4]) for v in lines.values())
    assert set(lines) == {"10.0.0.1:9001", "192.168.1.177:9002"}
    assert succ + err == 40 and 0 < err < 40
    assert "OVERLOAD answers: 0" in out.stdout
    assert len(agent.reports) == 40 and sum(r[5] != 0 for r in agent.reports) == err
    agent.retcode = RetCode.OVERLOAD
    over = lars("simulator", "1", "1", "0", "5", "--no-init", *ports(agent))
    assert "OVERLOAD answers: 5" in over.stdout
    bad = lars("simulator", "1", "1", "11", *ports(agent))
    assert bad.returncode == 2 and "ERR_RATE" in bad.stderr


@pytest.mark.parametrize("command", [["qps"], ["bench", "agent"]])
def test_qps(agent: FakeAgent, command: list[str]) -> None:
    out = lars(*command, "2", "--duration", "2", *ports(agent))
    assert out.returncode == 0, out.stderr
    assert "get_host/s" in out.stdout and "total:" in out.stdout
    assert {(m, c) for _, _, m, c in agent.requests} == {(1, 1), (2, 1)}
    bad = lars(*command, "2", "--duration", "0")
    assert bad.returncode == 2 and "duration" in bad.stderr


def test_no_agent_is_an_error_not_a_hang() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
        out = lars("gethost", "1", "1", "--agent-ports", f"{port},{port},{port}", "--attempts", "2")
    assert out.returncode == 3  # the agent does not answer
    assert out.stderr == (
        f"lars gethost: agent 127.0.0.1:{port} does not answer: no reply within 0.2 s\n"
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_qps_stops_early_on_a_signal_with_a_summary(agent: FakeAgent, sig: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lars", "qps", "2", "--duration", "120", *ports(agent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first per-second line: workers are running
        assert "get_host/s" in first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "interrupted" in out and "total:" in out


def test_a_port_past_the_base_says_where_it_comes_from() -> None:
    """`--agent-port 9999` for module 1:1 reported "127.0.0.1:10001 does not answer"
    without explaining the +2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    if base > 65000:
        base -= 1000
    out = lars("gethost", "1", "1", "--agent-port", str(base), "--attempts", "1")
    assert out.returncode == 3
    assert out.stderr.startswith(f"lars gethost: agent 127.0.0.1:{base + 2} does not answer: ")
    assert out.stderr.endswith(f"(port {base + 2} = agent port {base} + (1 + 1) % 3)\n")
    out = lars("gethost", "9", "9", "--agent-port", str(base), "--attempts", "1")
    assert "% 3" not in out.stderr  # module 9:9 goes to the base port itself
