"""The client tools stop on SIGINT even when they inherit it ignored, and `lars qps`
workers never outlive their parent (issue 19 item 8).

Before: gethost, simulator and qps relied on Python's default SIGINT handler, which is
not installed when SIGINT is inherited ignored (a script's `&`); after kill -9 of qps its
workers ran on for their whole --duration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client_fake_agent import FakeAgent

pytestmark = pytest.mark.e2e

HOSTS = {(1, 1): [("10.0.0.1", 9001)], (2, 1): [("10.0.0.3", 80)]}

# Starts `python -m lars ARGS` with SIGINT ignored, as a shell's `cmd &` does: exec keeps
# an ignored disposition.
_IGNORING = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'lars', *sys.argv[1:]])"
)


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    with FakeAgent(HOSTS) as fake:
        yield fake


def ports(agent: FakeAgent) -> list[str]:
    return ["--agent-ports", ",".join(map(str, agent.ports)), "--timeout", "5"]


def start(*argv: str, ignore_sigint: bool) -> subprocess.Popen[str]:
    prefix = [sys.executable, "-c", _IGNORING] if ignore_sigint else [sys.executable, "-m", "lars"]
    return subprocess.Popen(
        [*prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def sigint_ignored(pid: int) -> bool:
    """Whether SIGINT (bit 2) is in the process's ignored set (/proc/PID/status SigIgn)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError("no SigIgn line")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize(
    "ignore_sigint", [False, True], ids=["inherited-default", "inherited-ignored"]
)
def test_qps_stops_on_sigint_whatever_it_inherited(agent: FakeAgent, ignore_sigint: bool) -> None:
    proc = start("qps", "2", "--duration", "120", *ports(agent), ignore_sigint=ignore_sigint)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first per-second line: workers are running
    assert "get_host/s" in first, finish(proc)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 0, err
    assert "interrupted" in out and "total:" in out


@pytest.mark.parametrize("command", ["gethost", "simulator"])
def test_tools_stop_on_sigint_when_started_with_it_ignored(agent: FakeAgent, command: str) -> None:
    """gethost waits on an agent port that never answers; simulator makes a million
    calls: both would run for minutes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = str(silent.getsockname()[1])
        if command == "gethost":
            argv = ["gethost", "1", "1", "--agent-ports", f"{port},{port},{port}",
                    "--attempts", "100000", "--timeout", "5"]  # fmt: skip
        else:
            argv = ["simulator", "1", "1", "2", "1000000", *ports(agent)]
        proc = start(*argv, ignore_sigint=True)
        try:
            wait_until(lambda: _started(proc.pid), proc)
            assert sigint_ignored(proc.pid) is False  # the tool installed its own handler
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            _, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err


def _started(pid: int) -> bool:
    """The tool runs its command: its SIGINT disposition is no longer the inherited
    SIG_IGN (the wrapper exec'd and lars installed the handler)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"-m\x00lars" in cmdline and not sigint_ignored(pid)
    except OSError:
        return False


def test_qps_workers_die_with_their_parent_even_after_kill_9(agent: FakeAgent) -> None:
    proc = start("qps", "2", "--duration", "120", *ports(agent), ignore_sigint=False)
    try:
        assert proc.stdout is not None
        assert "get_host/s" in proc.stdout.readline()
        workers = children(proc.pid, b"spawn_main")
        assert len(workers) == 2
        proc.kill()  # SIGKILL: no handler, no cleanup in the parent
        proc.wait(30)
        deadline = time.monotonic() + 30
        while alive(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(workers) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def children(pid: int, marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and marker in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(entry))
    return found


def alive(pids: list[int]) -> list[int]:
    """Those still running (a zombie waiting for its new parent to reap it is not)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def wait_until(cond: object, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert proc.poll() is None, finish(proc)
        assert time.monotonic() < deadline, "never started"
        time.sleep(0.05)
