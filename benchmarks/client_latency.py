"""get_host round trip of the blocking LarsClient against a local agent: p50 / p99.

    python benchmarks/client_latency.py                  # starts lars up --demo itself
    python benchmarks/client_latency.py --calls 50000 --agent-ports 8888,8889,8890

One thread, one call in flight, module (1, 1); each call is timed with perf_counter_ns
after a warm-up. The agent runs in its own process (lars up), as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from benchmarks.client_stack import Agent, lars_up, machine
from lars.client import LarsClient, RetCode


def percentile(ordered: list[int], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000.0


def measure(ports: tuple[int, int, int], calls: int, warmup: int) -> list[int]:
    with LarsClient(ports=ports, timeout=1.0) as client:
        if client.reg_init(1, 1, attempts=100) is not RetCode.SUCC:
            raise RuntimeError("module (1, 1) has no hosts")
        get_host, clock = client.get_host, time.perf_counter_ns
        for _ in range(warmup):
            get_host(1, 1)
        samples = []
        failures = 0
        for _ in range(calls):
            start = clock()
            result = get_host(1, 1)
            samples.append(clock() - start)
            failures += not result.ok
        if failures:
            raise RuntimeError(f"{failures} calls got no host")
        return samples


@contextlib.contextmanager
def agent(ports: str | None) -> Iterator[Agent]:
    if ports:
        a, b, c = (int(p) for p in ports.split(","))
        yield Agent((a, b, c), None)
    else:
        with lars_up() as started:
            yield started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="report each, and the median")
    parser.add_argument("--agent-ports", default=None, metavar="P0,P1,P2")
    args = parser.parse_args()
    print(machine())
    rows = []
    with agent(args.agent_ports) as stack:
        for i in range(args.rounds):
            ordered = sorted(measure(stack.ports, args.calls, args.warmup))
            p50, p99, p999 = (percentile(ordered, f) for f in (0.5, 0.99, 0.999))
            rows.append((p50, p99))
            print(
                f"round {i + 1}: {args.calls} get_host: p50 {p50:.1f} us, p99 {p99:.1f} us, "
                f"p99.9 {p999:.1f} us, max {ordered[-1] / 1000:.0f} us, "
                f"{args.calls / (sum(ordered) / 1e9):.0f} calls/s"
            )
    p50s, p99s = sorted(r[0] for r in rows), sorted(r[1] for r in rows)
    mid = len(rows) // 2
    print(f"median of rounds: p50 {p50s[mid]:.1f} us, p99 {p99s[mid]:.1f} us")
    print(machine())


if __name__ == "__main__":
    main()
