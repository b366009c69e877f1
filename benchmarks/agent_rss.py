"""Agent memory: RSS of a `lars agent` process holding 10,000 modules of 10 hosts.

Fills a SQLite route table, starts the real `lars dns`, `lars reporter` and
`lars agent`, makes the agent learn every module (get_host until SUCC), reports one
call for every host (so every host has counters and every module a pending report),
and reads VmRSS from /proc before and after.

    python benchmarks/agent_rss.py --modules 10000 --hosts 10
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_bench
import agent_load

from lars.protocol import MsgId, lars_pb2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def report_all(base: int, modules: int, hosts: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for m in range(1, modules + 1):
            for h in range(hosts):
                ip = agent_bench.dotted_to_uint(f"10.{m // 250}.{m % 250}.{h + 1}")
                body = lars_pb2.ReportRequest(
                    modid=m, cmdid=1, retcode=0,
                    host=lars_pb2.HostInfo(ip=ip - (1 << 32) if ip >= 1 << 31 else ip,
                                           port=9000 + h),
                ).SerializeToString()  # fmt: skip
                sock.sendto(agent_load.frame(int(MsgId.REPORT_REQUEST), body),
                            ("127.0.0.1", base + (m + 1) % 3))  # fmt: skip
            if m % 200 == 0:
                time.sleep(0.01)  # let the agent keep up (UDP has no flow control)
    finally:
        sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", type=int, default=10_000)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--mode", default="one-loop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lars-agent-rss-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'lars.db'}"
        agent_bench.fill_routes(url, args.modules, args.hosts)
        stack = agent_bench.Stack(work, url, args.mode)
        try:
            mods = [(m, 1) for m in range(1, args.modules + 1)]
            agent_bench.warm(stack.base, mods[:1])
            idle = rss_mb(stack.agent.pid)
            started = time.monotonic()
            agent_bench.warm(stack.base, mods, deadline=600)
            learned = time.monotonic() - started
            report_all(stack.base, args.modules, args.hosts)
            time.sleep(2.0)  # a report interval passes: reports aggregated and sent
            full = rss_mb(stack.agent.pid)
            print(json.dumps({
                "modules": args.modules, "hosts_per_module": args.hosts, "mode": args.mode,
                "rss_mb_one_module": round(idle, 1), "rss_mb_all_modules": round(full, 1),
                "learn_seconds": round(learned, 1), "uptime": agent_bench.uptime(),
            }))  # fmt: skip
        finally:
            stack.close()


if __name__ == "__main__":
    main()
