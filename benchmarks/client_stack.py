"""Shared by the client benchmarks: a `lars up --demo` child process on free ports.

Started with a temporary SQLite file and ephemeral ports, stopped with SIGINT; the
agent's three UDP ports are parsed from its ready line. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

READY = re.compile(r"agent UDP 127\.0\.0\.1 ports (\d+),(\d+),(\d+)")


@dataclass(frozen=True)
class Agent:
    ports: tuple[int, int, int]
    pid: int | None  # the lars up process, when we started it

    def cpu_seconds(self) -> float:
        """User + system CPU of the agent process so far (0 when it is not ours)."""
        if self.pid is None:
            return 0.0
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextmanager
def lars_up(deadline: float = 60.0) -> Iterator[Agent]:
    """A fresh `lars up --demo` on free ports; yields its agent's ports and pid."""
    with tempfile.TemporaryDirectory(prefix="lars-bench-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", "up", "--demo",
             "--db", f"sqlite:///{os.path.join(tmp, 'bench.db')}",
             "--dns-port", "0", "--reporter-port", "0", "--agent-port", "0"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            end = time.monotonic() + deadline
            for line in proc.stdout:
                match = READY.search(line)
                if match:
                    a, b, c = (int(g) for g in match.groups())
                    break
                if time.monotonic() > end:
                    raise RuntimeError("lars up did not get ready")
            else:
                raise RuntimeError(f"lars up exited with {proc.wait()}")
            yield Agent((a, b, c), proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def machine() -> str:
    """CPU model, core count and load, for the RESULTS.md line."""
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {load}"
