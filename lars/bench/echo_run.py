"""Runs the echo client's processes and turns their counters into QPS figures.

The parent starts P spawned processes, waits until every connection is open, then
flips the shared control cell to RUN and samples the reply counters once a second.
The summary's QPS is the median of the per-second samples (robust against the ramp-up
second and against other work on a shared machine).
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from lars.bench.echo_client import (
    CONNECTED,
    ERRORS,
    REPLIES,
    ROW,
    STATE_RUN,
    STATE_STOP,
    ClientConfig,
    Slots,
    new_slots,
    run_process,
)
from lars.errors import NetworkError

__all__ = ["ClientResult", "run_client"]

JOIN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ClientResult:
    samples: tuple[int, ...]  # replies per second, one per elapsed second
    replies: int
    errors: int
    seconds: float

    @property
    def median_qps(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0

    def summary(self, cfg: ClientConfig) -> str:
        mode = "ping-pong" if cfg.depth == 1 else f"pipelined depth {cfg.depth}"
        return (
            f"echo client summary: {mode}, {cfg.conns} conns in {cfg.procs} procs: "
            f"median {self.median_qps:,.0f} QPS over {len(self.samples)} s "
            f"(min {min(self.samples, default=0):,}, max {max(self.samples, default=0):,}), "
            f"{self.replies:,} replies checked, {self.errors} errors"
        )


def _total(slots: Slots, procs: int, cell: int) -> int:
    return sum(slots[i * ROW + cell] for i in range(procs))


def run_client(
    cfg: ClientConfig,
    report: Callable[[str], None] = print,
    *,
    connect_deadline: float = 30.0,
) -> ClientResult:
    """Run the benchmark for cfg.seconds and return the samples; raises NetworkError when
    the connections cannot be opened."""
    ctx = multiprocessing.get_context("spawn")
    slots = new_slots(cfg.procs)
    control = cfg.procs * ROW
    procs = [
        ctx.Process(target=run_process, args=(cfg, i, slots), name=f"echo-client-{i}")
        for i in range(cfg.procs)
    ]
    for proc in procs:
        proc.start()
    try:
        deadline = time.monotonic() + connect_deadline
        while _total(slots, cfg.procs, CONNECTED) < cfg.conns:
            if time.monotonic() > deadline or any(p.exitcode is not None for p in procs):
                raise NetworkError(
                    f"echo client: only {_total(slots, cfg.procs, CONNECTED)} of "
                    f"{cfg.conns} connections to {cfg.host}:{cfg.port} opened"
                )
            time.sleep(0.01)
        slots[control] = STATE_RUN
        samples = _sample(cfg, slots, report)
    finally:
        slots[control] = STATE_STOP
        for proc in procs:
            proc.join(JOIN_TIMEOUT)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
    failed = sum(1 for p in procs if p.exitcode != 0)
    return ClientResult(
        samples=tuple(samples),
        replies=_total(slots, cfg.procs, REPLIES),
        errors=_total(slots, cfg.procs, ERRORS) + failed,
        seconds=float(len(samples)),
    )


def _sample(cfg: ClientConfig, slots: Slots, report: Callable[[str], None]) -> list[int]:
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
        now = time.monotonic()
        total = _total(slots, cfg.procs, REPLIES)
        elapsed = now - last_time
        if elapsed >= 0.5:  # a short last stretch is not a sample
            qps = round((total - last) / elapsed)
            samples.append(qps)
            errors = _total(slots, cfg.procs, ERRORS)
            report(f"{now - start:5.1f}s {qps:>10,} QPS  errors {errors}")
        last, last_time = total, now
    return samples
