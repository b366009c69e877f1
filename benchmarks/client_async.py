"""AsyncLarsClient throughput from one process: get_host per second against a local agent.

    python benchmarks/client_async.py                      # starts lars up --demo itself
    python benchmarks/client_async.py --tasks 64 --seconds 10 --agent-ports 8888,8889,8890

`--tasks` coroutines on one uvloop loop each loop `await client.get_host(...)` over the
demo modules (1, 1), (1, 2), (2, 1) (all three agent ports); a sampler prints the calls
of every second and the median at the end. Bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.client_latency import agent
from benchmarks.client_stack import Agent, machine, own_cpu_seconds
from lars.client import AsyncLarsClient, RetCode
from lars.reactor import new_event_loop

MODULES = [(1, 1), (1, 2), (2, 1)]


async def run(stack: Agent, tasks: int, seconds: float, report: bool) -> list[int]:
    async with AsyncLarsClient(ports=stack.ports, timeout=1.0) as client:
        for modid, cmdid in MODULES:
            if await client.reg_init(modid, cmdid, attempts=100) is not RetCode.SUCC:
                raise RuntimeError(f"module ({modid}, {cmdid}) has no hosts")
        counts = {"calls": 0, "failed": 0}
        cpu0, agent0 = own_cpu_seconds(), stack.cpu_seconds()
        end = time.monotonic() + seconds

        async def worker(i: int) -> None:
            modid, cmdid = MODULES[i % len(MODULES)]
            get_host = client.get_host
            n = failed = 0
            while time.monotonic() < end:
                for _ in range(32):
                    result = await get_host(modid, cmdid)
                    n += 1
                    if result.retcode is not RetCode.SUCC:
                        failed += 1
                    if report:
                        await client.report(modid, cmdid, result.ip, result.port, 0)
                counts["calls"] += n
                counts["failed"] += failed
                n = failed = 0

        samples: list[int] = []

        async def sampler() -> None:
            last = 0
            while time.monotonic() < end - 1:
                await asyncio.sleep(1.0)
                now = counts["calls"]
                samples.append(now - last)
                print(f"  {now - last} get_host/s", flush=True)
                last = now

        await asyncio.gather(sampler(), *(worker(i) for i in range(tasks)))
        calls = max(1, counts["calls"])
        cpu, agent_cpu = own_cpu_seconds() - cpu0, stack.cpu_seconds() - agent0
        print(f"  CPU per get_host: client {cpu / calls * 1e6:.1f} us, "
              f"agent process {agent_cpu / calls * 1e6:.1f} us")  # fmt: skip
        stats = client.stats()
        print(f"  failed answers {counts['failed']}, timeouts {stats.timeouts}, "
              f"skipped {stats.skipped}")  # fmt: skip
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=64, help="calls in flight (default 64)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--report", action="store_true", help="also report after each call")
    parser.add_argument("--agent-ports", default=None, metavar="P0,P1,P2")
    args = parser.parse_args()
    print(machine())
    with agent(args.agent_ports) as stack:
        loop = new_event_loop(True)
        try:
            samples = loop.run_until_complete(run(stack, args.tasks, args.seconds, args.report))
        finally:
            loop.close()
    ordered = sorted(samples)
    median = ordered[len(ordered) // 2] if ordered else 0
    print(f"median {median} get_host/s over {len(samples)} s, {args.tasks} tasks in flight")
    print(machine())


if __name__ == "__main__":
    main()
