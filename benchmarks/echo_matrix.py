"""Reruns the echo benchmark table of RESULTS.md: server threads x connections.

Starts `lars bench echo server` and `lars bench echo client` as separate processes, the
way the README shows, for threads 0, 1, 2, 4 and ping-pong connections 1, 10, 40, plus
pipelined depth 10; prints one markdown row per configuration with the median QPS of
each round, the CPU time server and client spent per reply (a figure other work on a
shared machine disturbs far less than QPS), and the server's RSS. Rounds interleave the
configurations so that noise from other work spreads evenly. Traffic stays on
127.0.0.1 and every run is bounded by --seconds.

    python benchmarks/echo_matrix.py --seconds 5 --repeat 3      # server CPU 0, client 1
    python benchmarks/echo_matrix.py --seconds 5 --no-pin        # scheduler places them
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

LARS = [sys.executable, "-m", "lars", "--log-level", "WARNING", "bench", "echo"]


@dataclass(frozen=True)
class Run:
    qps: int
    replies: int
    server_us: float  # server CPU per reply
    client_us: float  # client CPU per reply
    idle_rss: int  # KiB
    rss: int  # KiB
    summary: str


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_percent(seconds: float = 1.0) -> float:
    """The machine's idle CPU share over `seconds`, from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
        return sum(values), values[3] + values[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(threshold: float, patience: float) -> float:
    """Wait (at most `patience` s) until the idle share reaches `threshold`; the last
    idle share seen."""
    deadline = time.monotonic() + patience
    idle = idle_percent()
    while idle < threshold and time.monotonic() < deadline:
        idle = idle_percent()
    return idle


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1).replace(",", "")) if match else 0.0


def run(threads: int, conns: int, depth: int, args: argparse.Namespace) -> Run:
    """One server + client run."""
    server_cmd = [*LARS, "server", "--port", "0", "--threads", str(threads), "--quiet"]
    client_cmd = [*LARS, "client", "--conns", str(conns), "--procs", str(min(args.procs, conns))]
    client_cmd += ["--depth", str(depth), "--seconds", str(args.seconds)]
    if args.raw:
        server_cmd.append("--raw")
    if args.pin:
        server_cmd += ["--cpus", args.server_cpus]
        client_cmd += ["--cpus", args.client_cpus]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        match = re.search(r":(\d+),", server.stdout.readline())
        if match is None:
            raise SystemExit("echo server did not start")
        idle_rss = rss_kib(server.pid)
        cpu0 = cpu_seconds(server.pid)
        client_cmd += ["--port", match.group(1)]
        out = subprocess.run(client_cmd, capture_output=True, text=True, check=False).stdout
        server_cpu = cpu_seconds(server.pid) - cpu0
        rss = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    summary = out.strip().splitlines()[-1] if out.strip() else "no output"
    replies = int(_number(r"([\d,]+) replies checked", summary))
    return Run(
        qps=int(_number(r"median ([\d,]+) QPS", summary)),
        replies=replies,
        server_us=server_cpu / replies * 1e6 if replies else 0.0,
        client_us=_number(r"client CPU ([\d.]+) us/reply", summary),
        idle_rss=idle_rss,
        rss=rss,
        summary=summary,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", default="0,1,2,4")
    parser.add_argument("--conns", default="1,10,40")
    parser.add_argument("--depth", type=int, default=10, help="pipelined depth (10 conns)")
    parser.add_argument("--procs", type=int, default=1, help="client processes")
    parser.add_argument("--raw", action="store_true", help="server echoes bytes unparsed")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the whole plan")
    parser.add_argument(
        "--quiet-idle",
        type=float,
        default=0.0,
        help="before each run, wait up to 60 s for this much idle CPU (percent)",
    )
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    threads = [int(t) for t in args.threads.split(",")]
    plan = [(t, int(c), 1) for t in threads for c in args.conns.split(",")]
    if args.depth > 1:
        plan += [(t, 10, args.depth) for t in threads]
    results: dict[tuple[int, int, int], list[Run]] = {k: [] for k in plan}
    for round_no in range(args.repeat):
        for key in plan:
            idle = wait_for_quiet(args.quiet_idle, 60.0) if args.quiet_idle else -1.0
            result = run(*key, args)
            results[key].append(result)
            print(
                f"round {round_no + 1} {key} idle before {idle:.0f}%: {result.summary}",
                file=sys.stderr,
                flush=True,
            )
    print(f"load after: {os.getloadavg()}  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        "| threads | conns | depth | best median QPS | each round | "
        "server / client CPU us per reply | server RSS MiB idle/loaded |"
    )
    print("|---|---|---|---|---|---|---|")
    for (t, c, d), runs in results.items():
        best = max(r.qps for r in runs)
        rounds = ", ".join(f"{r.qps:,}" for r in runs)
        server_us = statistics.median(r.server_us for r in runs)
        client_us = statistics.median(r.client_us for r in runs)
        idle = max(r.idle_rss for r in runs) >> 10
        loaded = max(r.rss for r in runs) >> 10
        print(
            f"| {t} | {c} | {d} | {best:,} | {rounds} | {server_us:.2f} / {client_us:.2f} | "
            f"{idle}/{loaded} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
