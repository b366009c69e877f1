"""Reruns the echo benchmark table of RESULTS.md: server threads x connections.

Starts `lars bench echo server` and `lars bench echo client` as separate processes, the
way the README shows, for threads 0, 1, 2, 4 and ping-pong connections 1, 10, 40, plus
pipelined depth 10; prints one markdown row per run with the median QPS and the
server's RSS, and the machine's load before and after. Traffic stays on 127.0.0.1 and
every run is bounded by --seconds.

    python benchmarks/echo_matrix.py --seconds 5            # server on CPU 0, client on 1
    python benchmarks/echo_matrix.py --seconds 5 --no-pin   # let the scheduler place them
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

LARS = [sys.executable, "-m", "lars", "--log-level", "WARNING", "bench", "echo"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(threads: int, conns: int, depth: int, args: argparse.Namespace) -> tuple[str, int, int]:
    """One server + client run: the client's summary line and the server's RSS (KiB) when
    idle and right after the load."""
    server_cmd = [*LARS, "server", "--port", "0", "--threads", str(threads), "--quiet"]
    client_pin: list[str] = []
    if args.raw:
        server_cmd.append("--raw")
    if args.pin:
        server_cmd += ["--cpus", args.server_cpus]
        client_pin = ["--cpus", args.client_cpus]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        match = re.search(r":(\d+),", server.stdout.readline())
        if match is None:
            raise SystemExit("echo server did not start")
        idle = rss_kib(server.pid)
        client_cmd = [
            *LARS,
            "client",
            "--port",
            match.group(1),
            "--conns",
            str(conns),
            "--procs",
            str(min(args.procs, conns)),
            "--depth",
            str(depth),
            "--seconds",
            str(args.seconds),
            *client_pin,
        ]
        out = subprocess.run(client_cmd, capture_output=True, text=True, check=False).stdout
        rss = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    summary = out.strip().splitlines()[-1] if out.strip() else "no output"
    return summary, idle, rss


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
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    threads = [int(t) for t in args.threads.split(",")]
    plan = [(t, int(c), 1) for t in threads for c in args.conns.split(",")]
    plan += [(t, 10, args.depth) for t in threads]
    results: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {k: [] for k in plan}
    for round_no in range(args.repeat):  # rounds interleave configs: noise spreads evenly
        for key in plan:
            summary, idle, rss = run(*key, args)
            match = re.search(r"median ([\d,]+) QPS", summary)
            qps = int(match.group(1).replace(",", "")) if match else 0
            results[key].append((qps, idle, rss))
            print(f"round {round_no + 1} {key}: {summary}", file=sys.stderr, flush=True)
    print(f"load after: {os.getloadavg()}  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print("| threads | conns | depth | best median QPS | all rounds | server RSS MiB idle/loaded |")
    print("|---|---|---|---|---|---|")
    for (t, c, d), runs in results.items():
        best = max(q for q, _, _ in runs)
        rounds = ", ".join(f"{q:,}" for q, _, _ in runs)
        idle = max(i for _, i, _ in runs) >> 10
        loaded = max(r for _, _, r in runs) >> 10
        print(f"| {t} | {c} | {d} | {best:,} | {rounds} | {idle}/{loaded} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
