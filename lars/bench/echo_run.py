"""Runs the echo client's worker processes and turns their counts into QPS figures.

The parent starts P worker processes (`python -m lars.bench.echo_client`), waits until
every connection is open, says go on their stdin, and reads their reply counts from
their stdout once a second; closing stdin stops them. Plain pipes keep the parent free
of multiprocessing's helper process and shared-memory files. The summary's QPS is the
median of the per-second samples (robust against the ramp-up second and against other
work on a shared machine).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from lars.bench.echo_client import ClientConfig
from lars.errors import NetworkError

__all__ = ["ClientResult", "run_client"]

JOIN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ClientResult:
    samples: tuple[int, ...]  # replies per second, one per elapsed second
    replies: int
    errors: int
    cpu_seconds: float  # the client processes' CPU time during the run

    @property
    def median_qps(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0

    @property
    def cpu_us_per_reply(self) -> float:
        return self.cpu_seconds / self.replies * 1e6 if self.replies else 0.0

    def summary(self, cfg: ClientConfig) -> str:
        mode = "ping-pong" if cfg.depth == 1 else f"pipelined depth {cfg.depth}"
        return (
            f"echo client summary: {mode}, {cfg.conns} conns in {cfg.procs} procs: "
            f"median {self.median_qps:,.0f} QPS over {len(self.samples)} s "
            f"(min {min(self.samples, default=0):,}, max {max(self.samples, default=0):,}), "
            f"{self.replies:,} replies checked, client CPU {self.cpu_us_per_reply:.2f} us/reply, "
            f"{self.errors} errors"
        )


class _Worker:
    """One worker process and the last figures it reported."""

    def __init__(self, cfg: ClientConfig, index: int) -> None:
        args = [sys.executable, "-m", "lars.bench.echo_client", str(index)]
        args.append(json.dumps(dataclasses.asdict(cfg)))
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        self._partial = b""
        self.connected = 0
        self.replies = 0
        self.errors = 0
        self.cpu = 0.0  # CPU seconds the worker used while the clock ran

    def poll(self) -> None:
        """Read whatever the worker has said so far (never blocks)."""
        chunks = [self._partial]
        while True:
            try:
                data = os.read(self._out, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        for line in lines:
            kind, *values = line.decode("ascii", "replace").split()
            if kind == "connected":
                self.connected = int(values[0])
            elif kind == "count":
                self.replies, self.errors = int(values[0]), int(values[1])
            elif kind == "cpu":
                self.cpu = float(values[0])

    def say_go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        """Stop the worker (EOF on stdin), collect its last figures; its exit code."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(JOIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.poll()
        self.proc.stdout.close()
        return self.proc.returncode


def run_client(
    cfg: ClientConfig,
    report: Callable[[str], None] = print,
    *,
    connect_deadline: float = 30.0,
) -> ClientResult:
    """Run the benchmark for cfg.seconds and return the per-second samples.

    Raises NetworkError when the connections cannot all be opened."""
    workers: list[_Worker] = []
    try:
        for i in range(cfg.procs):
            workers.append(_Worker(cfg, i))
        deadline = time.monotonic() + connect_deadline
        while sum(w.connected for w in workers) < cfg.conns:
            if time.monotonic() > deadline or any(w.proc.poll() is not None for w in workers):
                raise NetworkError(
                    f"echo client: only {sum(w.connected for w in workers)} of "
                    f"{cfg.conns} connections to {cfg.host}:{cfg.port} opened"
                )
            time.sleep(0.01)
            for w in workers:
                w.poll()
        for w in workers:
            w.say_go()
        samples = _sample(cfg, workers, report)
    finally:
        failed = sum(1 for w in workers if w.finish() != 0)
    return ClientResult(
        samples=tuple(samples),
        replies=sum(w.replies for w in workers),
        errors=sum(w.errors for w in workers) + failed,
        cpu_seconds=sum(w.cpu for w in workers),
    )


def _sample(cfg: ClientConfig, workers: list[_Worker], report: Callable[[str], None]) -> list[int]:
    samples: list[int] = []
    start = last_time = time.monotonic()
    end = start + cfg.seconds
    last = 0
    tick = start
    while tick < end:
        tick = min(tick + 1.0, end)
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for w in workers:
            w.poll()
        now = time.monotonic()
        total = sum(w.replies for w in workers)
        elapsed = now - last_time
        if elapsed >= 0.5:  # a short last stretch is not a sample
            qps = round((total - last) / elapsed)
            samples.append(qps)
            errors = sum(w.errors for w in workers)
            report(f"{now - start:5.1f}s {qps:>10,} QPS  errors {errors}")
        last, last_time = total, now
    return samples
