"""The agent's memory under unknown protobuf fields, and what a fresh message per parse
costs the hot path (issue 19, item 1), before and after, in one run.

Starts the real `lars dns` and `lars reporter` (SQLite, 10 modules of 5 hosts) and two
`lars agent` processes: "before" runs the code of git revision `--before` (extracted with
`git archive`, run from its own directory: it parsed into reused messages) and "after"
runs this work tree or the git revision `--after` (a fresh message per datagram); either
revision may also be a directory holding a `lars` package (a revision with a patch, to
measure one change alone).
Then:

1. hot path: `--rounds` rounds of benchmarks/agent_load.py (get_host + report pairs, one
   process, window 1) against each agent in turn, the order flipped every round; prints
   the median pairs/s of each and the ratio after/before.
2. storm: per agent, a warm-up of 10k requests (get_host, report, API get_route, each
   with a 2-byte unknown field) and 40 of 60 kB, VmRSS read from /proc, then 100k
   requests with the 2-byte field and 2k with 60 kB of unknown fields, VmRSS again.

    python benchmarks/agent_unknown_fields.py --before 7baaf69 --rounds 5 --seconds 5

Traffic stays on 127.0.0.1; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_bench
import agent_load
from agent_rss import rss_mb
from agent_scrape import REPO, Agent, extract, show_logs, stack
from dns_common import free_port

from lars.protocol import MsgId, lars_pb2
from lars.reactor.frame import encode

SMALL_FIELD = b"\x78\x01"  # field 15, varint 1: unknown to every request message


def big_field(i: int, size: int = 60_000) -> bytes:
    """`size` bytes of unknown length-delimited field 14, different for every i."""
    payload = i.to_bytes(4, "little") * (size // 4)
    n = len(payload)
    return b"\x72" + bytes([(n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14]) + payload


def requests(start: int, count: int, big: bool) -> Iterator[tuple[bytes, bool]]:
    """(datagram, answered?) for module 1:1: get_host, report, API get_route, get_host."""
    for i in range(start, start + count):
        extra = big_field(i) if big else SMALL_FIELD
        kind = i % 4
        if kind == 1:
            host = lars_pb2.HostInfo(ip=167772417, port=9000)
            report = lars_pb2.ReportRequest(modid=1, cmdid=1, host=host, retcode=0)
            yield encode(int(MsgId.REPORT_REQUEST), report.SerializeToString() + extra), False
        elif kind == 2:
            route = lars_pb2.GetRouteRequest(modid=1, cmdid=1).SerializeToString()
            yield encode(int(MsgId.API_GET_ROUTE_REQUEST), route + extra), True
        else:
            body = lars_pb2.GetHostRequest(seq=i & 0xFFFF, modid=1, cmdid=1).SerializeToString()
            yield encode(int(MsgId.GET_HOST_REQUEST), body + extra), True


def storm(port: int, items: Iterator[tuple[bytes, bool]], window: int) -> tuple[int, int]:
    """Send with at most `window` answers outstanding; (sent, answers lost)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(2.0)
    sent = lost = outstanding = 0

    def recv() -> None:
        nonlocal lost
        try:
            sock.recv(65536)
        except TimeoutError:
            lost += 1

    try:
        for data, answered in items:
            sock.sendto(data, ("127.0.0.1", port))
            sent += 1
            outstanding += answered
            while outstanding >= window:
                outstanding -= 1
                recv()
        for _ in range(outstanding):
            recv()
    finally:
        sock.close()
    return sent, lost


def storm_rss(agent: Agent) -> dict[str, Any]:
    port = agent.base + 2  # (1 + 1) % 3: module 1:1's shard
    storm(port, requests(0, 10_000, False), 32)
    storm(port, requests(0, 40, True), 2)
    before = rss_mb(agent.proc.pid)
    sent, lost = storm(port, requests(0, 100_000, False), 32)
    after_small = rss_mb(agent.proc.pid)
    sent2, lost2 = storm(port, requests(10_000, 2_000, True), 2)
    after = rss_mb(agent.proc.pid)
    return {
        "agent": agent.name,
        "rss_mb_after_warm_up": round(before, 1),
        "growth_mb_100k_small": round(after_small - before, 1),
        "growth_mb_2k_60kB": round(after - after_small, 1),
        "rss_mb_at_end": round(after, 1),
        "sent": sent + sent2,
        "answers_lost": lost + lost2,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, metavar="REV", help="git revision before")
    ap.add_argument("--after", metavar="REV", help="git revision after (default: work tree)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    mods = [(m, 1) for m in range(1, 11)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lars-agent-fields-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'lars.db'}"
        agent_bench.fill_routes(url, 10, 5)
        dns_port, rep_port = free_port(), free_port()
        procs = stack(work, url, dns_port, rep_port)
        after = extract(args.after, work / "after") if args.after else REPO
        trees = [("before", extract(args.before, work / "before")), ("after", after)]
        agents = [Agent(name, tree, work, dns_port, rep_port) for name, tree in trees]
        try:
            print(json.dumps({"uptime": agent_bench.uptime(), "cpus": os.cpu_count()}))
            for agent in agents:
                agent_bench.warm(agent.base, mods)
            for i in range(args.rounds):
                for agent in agents if i % 2 == 0 else agents[::-1]:
                    r = agent_load.run(agent.base, 1, args.seconds, mods, 1, True)
                    r.pop("per_second")
                    r.update(agent=agent.name, round=i, load1=os.getloadavg()[0])
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            storms = [storm_rss(agent) for agent in agents]
            for s in storms:
                print(json.dumps(s), flush=True)
        except BaseException:
            show_logs(work)
            raise
        finally:
            for agent in agents:
                agent.close()
            for p in reversed(procs):
                agent_bench.stop(p)
    med = {
        name: statistics.median(r["pairs_per_s_median"] for r in rows if r["agent"] == name)
        for name, _ in trees
    }
    print(f"\nget_host + report pairs/s, median of {args.rounds} rounds of {args.seconds:g} s")
    print(f"before {med['before']:,.0f}, after {med['after']:,.0f}, "
          f"after/before {med['after'] / med['before']:.3f}")  # fmt: skip
    per_round = {(r["agent"], r["round"]): r["pairs_per_s_median"] for r in rows}
    paired = [per_round["after", i] / per_round["before", i] for i in range(args.rounds)]
    print(f"median of the per-round ratios after/before (back to back): "
          f"{statistics.median(paired):.3f}")  # fmt: skip
    print("| agent | RSS after warm-up | +100k 2-byte | +2k 60 kB | RSS at end |")
    print("|---|---|---|---|---|")
    for s in storms:
        print(f"| {s['agent']} | {s['rss_mb_after_warm_up']} MB | {s['growth_mb_100k_small']:+} MB"
              f" | {s['growth_mb_2k_60kB']:+} MB | {s['rss_mb_at_end']} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
