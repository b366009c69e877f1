"""`lars qps N` / `lars bench agent`: N worker processes hammer the agent, one module each.

Worker i (1..N) loops get_host(i, CMDID) and reports a success for every host it gets,
for at most --duration seconds. Each worker publishes its counters in shared memory
(one writer per slot, so no lock); the parent prints the total QPS every second and a
summary at the end. Ctrl-C or SIGTERM stops early and still prints the summary, even
when the process inherited SIGINT ignored (lars.client.signals). Workers never outlive
the parent: the kernel kills them when it dies (PR_SET_PDEATHSIG, kill -9 included), and
each also stops when it finds itself re-parented.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

from lars.client.signals import die_with_parent, parent_gone, stop_on_signals
from lars.client.sync import LarsClient
from lars.errors import ConfigError, NotAnswering
from lars.jsonout import add_json_flag, print_json

__all__ = ["QpsSummary", "add_qps_arguments", "run_qps"]

MAX_DURATION = 3600.0
_PUBLISH_EVERY = 64  # calls between counter updates: cheap, and fresh enough for 1 s samples
_FIELDS = 3  # calls, hosts (SUCC answers), timeouts (or refusals: no agent answered)


def add_qps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workers", metavar="N", type=int, help="worker processes (modules 1..N)")
    p.add_argument("--cmdid", type=int, default=1, help="cmdid of every module (default 1)")
    p.add_argument(
        "--duration", type=float, default=10.0,
        help=f"seconds to run, at most {MAX_DURATION:.0f} (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no per-second line")
    add_json_flag(p)


@dataclass(frozen=True, slots=True)
class QpsSummary:
    seconds: float
    calls: int
    hosts: int
    timeouts: int
    samples: tuple[int, ...]  # get_host per second, one per full second

    @property
    def qps(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def median(self) -> int:
        ordered = sorted(self.samples)
        return ordered[len(ordered) // 2] if ordered else int(self.qps)

    def as_json(self, workers: int) -> dict[str, Any]:
        return {
            "workers": workers,
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "qps": round(self.qps, 1),
            "median_qps": self.median,
            "hosts": self.hosts,
            "timeouts": self.timeouts,
            "other": self.calls - self.hosts - self.timeouts,
            "samples": list(self.samples),
        }

    def lines(self) -> list[str]:
        median = self.median
        return [
            f"total: {self.calls} get_host in {self.seconds:.1f}s = {self.qps:.0f}/s "
            f"(median of seconds {median}/s)",
            f"hosts answered: {self.hosts}, timeouts: {self.timeouts}, "
            f"other answers: {self.calls - self.hosts - self.timeouts}",
        ]


def run_qps(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= 256:
        raise ConfigError(f"N must be 1..256, got {args.workers}")
    if not 0 < args.duration <= MAX_DURATION:
        raise ConfigError(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds")
    quiet = args.quiet or args.json  # --json: the one object is all of stdout
    report: Callable[[str], None] = (lambda _: None) if quiet else _print
    summary = measure(args, report)
    if args.json:
        print_json(summary.as_json(args.workers))
    else:
        for line in summary.lines():
            _print(line)
    if summary.calls <= summary.timeouts:
        ports = args.agent_ports or tuple(args.agent_port + i for i in range(3))
        where = f"{args.agent_ip} ports {','.join(map(str, ports))}"
        raise NotAnswering(f"agent {where} does not answer: no get_host was answered")
    return 0


def measure(args: argparse.Namespace, report: Callable[[str], None]) -> QpsSummary:
    """Run the workers; SIGINT or SIGTERM stops them early and still gives the summary."""
    with stop_on_signals():
        return _measure(args, report)


def _measure(args: argparse.Namespace, report: Callable[[str], None]) -> QpsSummary:
    ctx = multiprocessing.get_context("spawn")
    counters: Any = ctx.RawArray("q", _FIELDS * args.workers)
    stop = ctx.Event()
    client_args = (args.agent_ip, args.agent_port, args.agent_ports, args.timeout)
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, i + 1, args.cmdid, client_args, args.duration, counters, stop, os.getpid()),
            name=f"lars-qps-{i + 1}",
        )
        for i in range(args.workers)
    ]
    started = time.monotonic()
    samples: list[int] = []
    last = 0
    try:
        for proc in procs:
            proc.start()
        while any(p.is_alive() for p in procs):
            time.sleep(max(0.0, started + len(samples) + 1 - time.monotonic()))
            total = sum(counters[0::_FIELDS])
            if any(p.is_alive() for p in procs):
                samples.append(total - last)
                report(f"[{len(samples):>4}s] {total - last:>8} get_host/s  (total {total})")
            last = total
    except KeyboardInterrupt:
        report("interrupted: stopping workers")
    finally:
        stop.set()
        for proc in procs:
            if proc.pid is None:  # interrupted before it started
                continue
            proc.join(10.0)
            if proc.is_alive():  # pragma: no cover - a worker stuck past its own deadline
                proc.terminate()
                proc.join()
    seconds = min(time.monotonic() - started, args.duration)
    return QpsSummary(
        seconds=seconds,
        calls=sum(counters[0::_FIELDS]),
        hosts=sum(counters[1::_FIELDS]),
        timeouts=sum(counters[2::_FIELDS]),
        samples=tuple(samples),
    )


def _worker(
    index: int,
    modid: int,
    cmdid: int,
    client_args: tuple[str, int, tuple[int, int, int] | None, float],
    duration: float,
    counters: Any,
    stop: Event,
    parent_pid: int,
) -> None:
    die_with_parent(parent_pid)
    ip, base_port, ports, timeout = client_args
    slot = index * _FIELDS
    calls = hosts = timeouts = 0
    try:
        with stop_on_signals(), LarsClient(ip, base_port, ports=ports, timeout=timeout) as client:
            client.reg_init(modid, cmdid)
            deadline = time.monotonic() + duration
            get_host, report, now = client.get_host, client.report, time.monotonic
            while now() < deadline:
                result = get_host(modid, cmdid)
                calls += 1
                if result.ok:
                    hosts += 1
                    report(modid, cmdid, result.ip, result.port, 0)
                elif result.timed_out or result.refused:  # no agent answered
                    timeouts += 1
                # After a timeout too: 64 of them in a row would hide `stop` for seconds.
                if calls % _PUBLISH_EVERY == 0 or result.timed_out or result.refused:
                    counters[slot], counters[slot + 1], counters[slot + 2] = calls, hosts, timeouts
                    if stop.is_set() or parent_gone(parent_pid):
                        break
    except KeyboardInterrupt:
        pass  # the parent prints the summary
    counters[slot], counters[slot + 1], counters[slot + 2] = calls, hosts, timeouts


def _print(line: str) -> None:
    print(line, flush=True)
