"""Controller side of the fleet benchmarks: start and drive `benchmarks/fleet_agents.py`
processes, read a process's CPU and RSS from /proc, and a `lars dns` started from an INI
file (for settings that have no flag, such as `[dns] reload_deadline`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["Generators", "ProcSample", "proc_sample"]


class ProcSample:
    """CPU seconds (user + system) and RSS of a process at one moment."""

    def __init__(self, pid: int) -> None:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        self.cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        self.rss_mb = 0.0
        self.hwm_mb = 0.0
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    self.rss_mb = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    self.hwm_mb = int(line.split()[1]) / 1024


def proc_sample(pid: int) -> ProcSample:
    return ProcSample(pid)


class Generators:
    """`count` fleet_agents processes sharing `agents` simulated agents between them."""

    def __init__(
        self,
        count: int,
        agents: int,
        addrs: Sequence[tuple[str, int]],
        *,
        per_conn: int,
        modules: int,
        heartbeat: float = 0.25,
        max_seconds: float = 600,
    ) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        share = [agents // count + (1 if i < agents % count else 0) for i in range(count)]
        first = 0
        for i, n in enumerate(share):
            cfg = {
                "addrs": [list(a) for a in addrs],
                "agents": n,
                "first": first,
                "per_conn": per_conn,
                "modules": modules,
                "heartbeat": heartbeat,
                "seed": i + 1,
                "max_seconds": max_seconds,
            }
            first += n
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.fleet_agents", json.dumps(cfg)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        self.ready = [self._read(p) for p in self.procs]

    @staticmethod
    def _read(p: subprocess.Popen[str]) -> dict[str, Any]:
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"fleet_agents {p.pid} exited: {p.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> list[dict[str, Any]]:
        """Send `command` to every generator; their answers in order."""
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(command + "\n")
            p.stdin.flush()
        return [self._read(p) for p in self.procs]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            try:
                assert p.stdin is not None
                p.stdin.write("stop\n")
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
