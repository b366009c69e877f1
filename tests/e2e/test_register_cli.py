"""`lars register|deregister|heartbeat` against a real `lars agent` process (issue 20).

One line and exit 0 on an answer ("not registered" for an unknown deregister, still 0),
2 for bad arguments, 3 when no agent answers; the agent keeps registrations across its
own restart (SIGTERM deregisters nothing).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base

pytestmark = pytest.mark.e2e


def lars(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


class Agent:
    """A real agent on fixed ports whose route service and reporter do not exist."""

    def __init__(self, tmp: Path, base: int, nowhere: str, n: int = 0) -> None:
        self.base = base
        self.proc = Proc(tmp / f"agent{n}.log", "agent", "--base-port", str(base),
                         "--dns", nowhere, "--reporter", nowhere, "--metrics", "off",
                         "--registrations", str(tmp / "agent.registrations.json"))  # fmt: skip
        deadline = time.monotonic() + 60
        while "agent listening" not in self.proc.log.read_text():
            assert self.proc.proc.poll() is None, self.proc.log.read_text()
            assert time.monotonic() < deadline, self.proc.log.read_text()
            time.sleep(0.05)

    def stop(self) -> str:
        code, log = self.proc.stop()
        assert code == 0, log
        return log


@pytest.fixture
def agent_env(tmp_path: Path) -> Iterator[tuple[Path, int, str]]:
    yield tmp_path, free_udp_base(), f"127.0.0.1:{free_port()}"


def test_register_heartbeat_deregister(agent_env: tuple[Path, int, str]) -> None:
    tmp, base, nowhere = agent_env
    agent = Agent(tmp, base, nowhere)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = str(listener.getsockname()[1])
    flags = ["--agent-port", str(base), "--timeout", "10"]
    try:
        out = lars("register", "1", "2", "127.0.0.1", port, *flags)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"registered 1:2 127.0.0.1:{port} (check tcp)\n"
        out = lars("register", "1", "2", "127.0.0.1", port, "--check", "ttl:30",
                   "--fail-after", "3", "--json", *flags)  # fmt: skip
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        assert (answer["status"], answer["check"], answer["op"]) == ("OK", "ttl:30", "register")
        out = lars("heartbeat", "1", "2", "127.0.0.1", port, *flags)
        assert (out.returncode, out.stdout) == (0, f"heartbeat 1:2 127.0.0.1:{port}\n")
        out = lars("deregister", "1", "2", "127.0.0.1", port, *flags)
        assert (out.returncode, out.stdout) == (0, f"deregistered 1:2 127.0.0.1:{port}\n")
        out = lars("deregister", "1", "2", "127.0.0.1", port, *flags)
        assert (out.returncode, out.stdout) == (0, f"not registered: 1:2 127.0.0.1:{port}\n")
        out = lars("heartbeat", "1", "2", "127.0.0.1", port, *flags)
        assert out.returncode == 1 and "not registered" in out.stderr
        # any IPv4, loopback included; explicit ports work as for gethost
        ports = f"{base},{base + 1},{base + 2}"
        out = lars("register", "3", "3", "10.9.8.7", "80", "--check", "ttl:30",
                   "--agent-ports", ports, "--timeout", "10")  # fmt: skip
        assert out.returncode == 0, out.stderr
    finally:
        listener.close()
        agent.stop()


@pytest.mark.parametrize(
    "argv",
    [
        ["register", "1", "2", "127.0.0.1"],
        ["register", "1", "2", "300.0.0.1", "80"],
        ["register", "1", "2", "127.0.0.1", "80", "--check", "udp:1"],
        ["register", "1", "2", "127.0.0.1", "80", "--interval", "0.001"],
        ["register", "1", "2", "127.0.0.1", "80", "--timeout", "0"],
        ["deregister", "-5", "2", "127.0.0.1", "80"],
        ["heartbeat", "1", "2", "127.0.0.1", "99999"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    out = lars(*argv, "--agent-port", "1")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""


def test_no_agent_exits_3() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers: a timeout
        port = silent.getsockname()[1]
        ports = f"{port},{port},{port}"
        out = lars("register", "1", "2", "127.0.0.1", "80", "--agent-ports", ports,
                   "--timeout", "0.3")  # fmt: skip
    assert out.returncode == 3
    assert (
        out.stderr
        == f"lars register: agent 127.0.0.1:{port} does not answer: no reply within 0.3 s\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    out = lars("deregister", "1", "2", "127.0.0.1", "80", "--agent-ports",
               f"{closed},{closed},{closed}")  # fmt: skip
    assert out.returncode == 3 and "nothing listens there" in out.stderr


def test_registrations_survive_the_agent_restart(agent_env: tuple[Path, int, str]) -> None:
    tmp, base, nowhere = agent_env
    flags = ["--agent-port", str(base), "--timeout", "10"]
    agent = Agent(tmp, base, nowhere)
    try:
        out = lars("register", "4", "4", "127.0.0.1", "9", "--check", "ttl:60", *flags)
        assert out.returncode == 0, out.stderr
    finally:
        agent.stop()  # SIGTERM: nothing deregistered
    saved = json.loads((tmp / "agent.registrations.json").read_text())
    assert [(i["modid"], i["port"], i["check"]) for i in saved["instances"]] == [(4, 9, "ttl:60")]
    agent = Agent(tmp, base, nowhere, n=1)
    try:
        assert "registrations: 1 restored" in agent.proc.log.read_text()
        out = lars("heartbeat", "4", "4", "127.0.0.1", "9", *flags)
        assert out.returncode == 0, out.stderr
        out = lars("deregister", "4", "4", "127.0.0.1", "9", *flags)
        assert (out.returncode, out.stdout) == (0, "deregistered 4:4 127.0.0.1:9\n")
    finally:
        agent.stop()


def test_status_module_shows_the_check_state(agent_env: tuple[Path, int, str]) -> None:
    tmp, base, nowhere = agent_env
    metrics = free_port()
    agent = Proc(tmp / "agent-status.log", "agent", "--base-port", str(base), "--dns", nowhere,
                 "--reporter", nowhere, "--metrics", f"127.0.0.1:{metrics}",
                 "--registrations", str(tmp / "status.registrations.json"))  # fmt: skip
    try:
        flags = ["--agent-port", str(base), "--timeout", "10"]
        deadline = time.monotonic() + 60
        while lars("register", "5", "5", "127.0.0.1", "9", "--check", "ttl:30", *flags).returncode:
            assert time.monotonic() < deadline, agent.log.read_text()
            time.sleep(0.2)
        where = ["--metrics", f"127.0.0.1:{metrics}"]
        deadline = time.monotonic() + 60
        while True:
            out = lars("status", *where, "--module", "5", "5")
            if "127.0.0.1:9" in out.stdout and "passing" in out.stdout:
                break
            assert time.monotonic() < deadline, (out.stdout, out.stderr)
            time.sleep(0.2)
        assert out.returncode == 0 and "registered with this agent" in out.stdout
        out = lars("status", *where, "--module", "5", "5", "--json")
        doc = json.loads(out.stdout)
        assert [(r["port"], r["check"], r["state"]) for r in doc["registrations"]] == [
            (9, "ttl:30", "passing")
        ]
        out = lars("status", *where)
        assert "registered here: 1 passing, 0 failing, 0 pending" in out.stdout
    finally:
        code, log = agent.stop()
        assert code == 0, log
