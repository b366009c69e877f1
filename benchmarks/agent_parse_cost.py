"""The hot-path cost of parsing every agent datagram into a fresh protobuf message
(issue 19 item 1), measured in-process where a loaded machine's noise is smallest.

For each tree (git revisions or directories holding a `lars` package, extracted as in
benchmarks/agent_scrape.py), a child Python run from that tree feeds one ShardEndpoint
(no sockets: a transport that drops the answer) get_host + report pairs for a module of
5 hosts among 30,000 known-empty ones, `--number` pairs per repeat, 7 repeats, and
prints the best microseconds per pair. The trees alternate for `--rounds` rounds; the
summary is the minimum and the median over rounds of each tree's best, and the
difference after - before in nanoseconds per pair. It also times the parse alone:
ParseFromString into a reused GetHostRequest against GetHostRequest.FromString.

    python benchmarks/agent_parse_cost.py --before 7baaf69 --after HEAD --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_scrape import extract

from lars.protocol import lars_pb2

CHILD = r"""
import sys, timeit
from lars.agent.config import BalancerConfig
from lars.agent.endpoint import ShardEndpoint
from lars.agent.shard import Shard
from lars.protocol import MsgId, lars_pb2
from lars.reactor import encode

class Drop:
    def sendto(self, data, addr):
        pass

shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=100_000)
ep = ShardEndpoint(shard, caller=1, clock=lambda: 0.0, wall=lambda: 0.0)
ep.transport = Drop()
for m in range(6, 6 + 3 * 30_000, 3):
    shard.get_host(m, 0, 0.0)
    shard.on_route(m, 0, [], 0.0)
shard.get_host(3, 0, 0.0)
shard.on_route(3, 0, [(h, 80) for h in range(1, 6)], 0.0)
get_host = encode(int(MsgId.GET_HOST_REQUEST),
                  lars_pb2.GetHostRequest(seq=5, modid=3, cmdid=0).SerializeToString())
report = encode(int(MsgId.REPORT_REQUEST), lars_pb2.ReportRequest(
    modid=3, cmdid=0, host=lars_pb2.HostInfo(ip=1, port=80), retcode=0).SerializeToString())
received = ep.datagram_received

def pair():
    received(get_host, None)
    received(report, None)

n = int(sys.argv[1])
print(min(timeit.repeat(pair, number=n, repeat=7)) / n * 1e6)
"""


def parse_alone(number: int = 200_000) -> tuple[float, float]:
    """(reused ParseFromString, FromString) nanoseconds per GetHostRequest parse."""
    body = lars_pb2.GetHostRequest(seq=1, modid=5, cmdid=1).SerializeToString()
    reused = lars_pb2.GetHostRequest()
    new = lars_pb2.GetHostRequest.FromString

    def reuse() -> int:
        reused.ParseFromString(body)
        return reused.modid

    def fresh() -> int:
        return new(body).modid

    a = min(timeit.repeat(reuse, number=number, repeat=7)) / number * 1e9
    b = min(timeit.repeat(fresh, number=number, repeat=7)) / number * 1e9
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, metavar="REV|DIR")
    ap.add_argument("--after", required=True, metavar="REV|DIR")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--number", type=int, default=50_000)
    args = ap.parse_args()
    best: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="lars-parse-cost-") as tmp:
        trees = {
            "before": extract(args.before, Path(tmp) / "before"),
            "after": extract(args.after, Path(tmp) / "after"),
        }
        print(json.dumps({"load1": os.getloadavg()[0], "cpus": os.cpu_count()}), flush=True)
        for i in range(args.rounds):
            for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(args.number)],
                    cwd=trees[name], check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                best[name].append(float(out))
                print(json.dumps({"round": i, "tree": name, "us_per_pair": float(out)}),
                      flush=True)  # fmt: skip
    reuse, fresh = parse_alone()
    print(f"\nGetHostRequest parse alone: reused {reuse:.0f} ns, fresh {fresh:.0f} ns "
          f"(+{fresh - reuse:.0f} ns)")  # fmt: skip
    print("| tree | best us/pair (min of rounds) | median of rounds |")
    print("|---|---|---|")
    for name in ("before", "after"):
        print(f"| {name} | {min(best[name]):.3f} | {statistics.median(best[name]):.3f} |")
    diff = 1000 * (min(best["after"]) - min(best["before"]))
    print(f"after - before: {diff:+.0f} ns per get_host + report pair (min of rounds); "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
