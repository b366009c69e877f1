"""Shared pieces of the benchmarks: a fresh MariaDB database, a `lars dns` process, free
loopback ports, percentiles and the machine description recorded with every figure."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lars.dbengine import scratch_database

DEFAULT_SERVER = os.environ.get("LARS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")


@contextmanager
def fresh_mysql_db(server_url: str = DEFAULT_SERVER) -> Iterator[str]:
    """A URL of a new, empty database, dropped afterwards."""
    with scratch_database(server_url, "lars_bench") as url:
        yield url


class DnsProcess:
    """`lars dns` in a child process; `port` once it listens (with `--processes N`: once
    every one of its processes does); `stop()` with SIGTERM."""

    def __init__(self, args: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", "dns", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        lines = []
        for line in self.proc.stderr:
            lines.append(line)
            m = re.search(r"listening on port (\d+)", line)
            if m and (" with " in line or "--processes" not in args):
                self.port = int(m.group(1))
                return
        self.proc.wait()
        raise RuntimeError("lars dns did not start:\n" + "".join(lines))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def child_pids(pid: int) -> list[int]:
    """The child processes of `pid` (those its threads started too)."""
    kids: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += [int(p) for p in fh.read().split()]
        except FileNotFoundError:
            pass
    return sorted(kids)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine() -> str:
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    return (
        f"{platform.node()} {os.cpu_count()} cpu, Python {platform.python_version()}, load {load}"
    )


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_udp_base() -> int:
    for _ in range(200):
        base = free_port(socket.SOCK_DGRAM)
        socks: list[socket.socket] = []
        try:
            for i in range(3):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no three consecutive free UDP ports")
