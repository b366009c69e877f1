"""One route service behind a fleet: idle cost and push latency at 1,000 and 10,000 agents.

    python -m benchmarks.dns_fleet_push [--fleet 1000,10000] [--generators 2]
        [--per-conn 100] [--changes 10] [--idle 10] [--heartbeat 0.25]
        [--poll-interval 0.1] [--threads 0] [--no-uvloop] [--services 1] [--processes 1]

For each fleet size a fresh `lars dns` (own process, MariaDB scratch database of 100
modules of one host) gets that many simulated agents from `--generators` separate
processes (benchmarks/fleet_agents.py: uvloop, every agent asks `--per-conn` modules, so
with 100 every agent is subscribed to every changed module, and probes with the agent's
heartbeat every `--heartbeat` s when idle). Then:
- idle: `--idle` seconds with no edit: the route service's CPU (% of one core, from
  /proc) and RSS, next to its RSS before the agents came, the generators' CPU, probes/s;
- push: `--changes` edits through RouteAdmin at random moments relative to the poll tick;
  latency = the receipt, by each agent, of the first answer holding the new host - the
  commit (time.monotonic() is one clock for all processes). The route service's CPU over
  the push phase is reported too, and the mean duration of its fan-out (from handing a
  push round to the workers until the last write; its lars_dns_push_duration_seconds
  histogram), which tells the server's share of the latency from the generators' share.
`--no-uvloop` runs the route service on the stdlib event loop (`[reactor] uvloop = false`
in an INI file), whose socket writes release the GIL, so with `--threads 2` two worker
loops can push at once. `--services N` runs N route services (own processes, one
database) and lets every agent pick one at random, as agents do with several
`[dnsserver]` addresses: figures per route service are then lists. `--processes N` runs
each as `lars dns --processes N` (one port, SO_REUSEPORT): figures per child process.
Prints one JSON object per fleet size.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.dns_common import (
    DnsProcess,
    child_pids,
    free_port,
    fresh_mysql_db,
    machine,
    percentile,
)
from benchmarks.fleet_common import Generators, proc_sample
from lars.dbengine import init_schema, make_engine
from lars.dns.processes import metrics_port
from lars.routes.admin import RouteAdmin

MODULES = 100


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def fanout(metrics_port: int) -> tuple[float, float]:
    """(sum of seconds, count) of the route service's push fan-outs so far."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    total = re.search(r"^lars_dns_push_duration_seconds_sum\S* (\S+)$", text, re.M)
    count = re.search(r"^lars_dns_push_duration_seconds_count\S* (\S+)$", text, re.M)
    return (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)


def one_or_list(values: list[Any]) -> Any:
    """One route service: its value; several: the list (one per service)."""
    return values[0] if len(values) == 1 else values


def push_phase(
    gens: Generators, admin: RouteAdmin, changes: int, poll: float, expected: int, tag: int
) -> dict[str, object]:
    rng = random.Random(tag)
    latencies: list[float] = []
    missing = 0
    for k in range(changes):
        modid = (k * 37 + tag) % MODULES + 1
        ip = f"10.{tag % 200 + 1}.{k}.1"
        gens.ask(f"watch {modid} {ip}")
        time.sleep(rng.uniform(0, poll))
        admin.add_host(modid, 1, ip, 1000 + k)
        committed = time.monotonic()
        deadline = committed + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if sum(a["n"] for a in gens.ask(f"count {modid}")) >= expected:
                break
        times = [t for a in gens.ask(f"result {modid}") for t in a["times"]]
        missing += max(0, expected - len(times))
        latencies.extend(t - committed for t in times)
    return {
        "samples": len(latencies),
        "missing": missing,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def run_size(
    args: argparse.Namespace, conns: int, admin: RouteAdmin, url: str
) -> dict[str, object]:
    ports = [free_port() for _ in range(args.services)]
    extra = ["-c", args.ini] if args.ini else []
    flags = ["--ip", "127.0.0.1", "--port", "0", "--threads", str(args.threads),
             "--poll-interval", str(args.poll_interval)]  # fmt: skip
    if args.processes > 1:
        flags += ["--processes", str(args.processes)]
    services = [
        DnsProcess([*extra, "--db", url, "--metrics", f"127.0.0.1:{port}", *flags])
        for port in ports
    ]
    if args.processes > 1:  # the route services are the children (lars.dns.processes)
        pids = [kid for d in services for kid in child_pids(d.proc.pid)]
        ports = [metrics_port(p, i) for p in ports for i in range(args.processes)]
    else:
        pids = [d.proc.pid for d in services]
    gens: Generators | None = None
    try:
        time.sleep(1.0)
        before = [proc_sample(pid) for pid in pids]
        t0 = time.monotonic()
        gens = Generators(
            args.generators, conns, [("127.0.0.1", d.port) for d in services],
            per_conn=args.per_conn, modules=MODULES, heartbeat=args.heartbeat,
        )  # fmt: skip
        connect_s = time.monotonic() - t0
        by_port: dict[str, int] = {}
        for answer in gens.ask("stats"):
            for port_s, n in answer["by_port"].items():
                by_port[port_s] = by_port.get(port_s, 0) + n
        time.sleep(2.0)  # let the subscribe burst settle
        load_idle0 = loadavg()
        d0, g0 = [proc_sample(p) for p in pids], [proc_sample(p) for p in gens.pids]
        s0, w0 = gens.ask("stats"), time.monotonic()
        time.sleep(args.idle)
        d1, g1 = [proc_sample(p) for p in pids], [proc_sample(p) for p in gens.pids]
        s1, w1 = gens.ask("stats"), time.monotonic()
        wall = w1 - w0
        probes = sum(b["probes"] - a["probes"] for a, b in zip(s0, s1, strict=True)) / wall
        answered = sum(b["replies"] - a["replies"] for a, b in zip(s0, s1, strict=True)) / wall
        idle = {
            "dns_cpu_pct": one_or_list(
                [round((b.cpu - a.cpu) / wall * 100, 1) for a, b in zip(d0, d1, strict=True)]
            ),
            "dns_rss_mb_before_agents": one_or_list([round(b.rss_mb, 1) for b in before]),
            "dns_rss_mb": one_or_list([round(b.rss_mb, 1) for b in d1]),
            "dns_hwm_mb": one_or_list([round(b.hwm_mb, 1) for b in d1]),
            "generators_cpu_pct": [
                round((b.cpu - a.cpu) / wall * 100, 1) for a, b in zip(g0, g1, strict=True)
            ],
            "probes_per_s": round(probes),
            "probe_answers_per_s": round(answered),
            "load": f"{load_idle0} -> {loadavg()}",
        }
        expected = conns if args.per_conn >= MODULES else conns * args.per_conn // MODULES
        p0, pw0, load_push0 = [proc_sample(p) for p in pids], time.monotonic(), loadavg()
        f0 = [fanout(port) for port in ports]
        push = push_phase(gens, admin, args.changes, args.poll_interval, expected, conns % 97)
        p1, pw1 = [proc_sample(p) for p in pids], time.monotonic()
        f1 = [fanout(port) for port in ports]
        push["server_fanout_mean_ms"] = one_or_list(
            [
                round((b[0] - a[0]) / (b[1] - a[1]) * 1000, 1) if b[1] > a[1] else None
                for a, b in zip(f0, f1, strict=True)
            ]
        )
        push["dns_cpu_pct"] = one_or_list(
            [round((b.cpu - a.cpu) / (pw1 - pw0) * 100, 1) for a, b in zip(p0, p1, strict=True)]
        )
        push["load"] = f"{load_push0} -> {loadavg()}"
        return {
            "conns": conns,
            "services": args.services,
            "processes": args.processes,
            "connected_by_port": by_port,
            "generators": args.generators,
            "per_conn": args.per_conn,
            "connect_and_subscribe_s": round(connect_s, 1),
            "idle": idle,
            "push": push,
        }
    finally:
        if gens is not None:
            gens.stop()
        for d in services:
            d.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", default="1000,10000", help="fleet sizes, comma-separated")
    ap.add_argument("--generators", type=int, default=2)
    ap.add_argument("--per-conn", type=int, default=100)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--heartbeat", type=float, default=0.25)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--services", type=int, default=1, help="route services (own processes)")
    ap.add_argument("--processes", type=int, default=1, help="lars dns --processes N each")
    ap.add_argument("--no-uvloop", action="store_true", help="stdlib event loop")
    args = ap.parse_args()
    with fresh_mysql_db() as url, tempfile.TemporaryDirectory() as tmp:
        args.ini = None
        if args.no_uvloop:
            args.ini = str(Path(tmp) / "dns.conf")
            Path(args.ini).write_text("[reactor]\nuvloop = false\n")
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for m in range(1, MODULES + 1):
            admin.add_host(m, 1, "10.0.0.1", 80)
        try:
            for size in (int(s) for s in args.fleet.split(",")):
                result = run_size(args, size, admin, url)
                result.update(
                    poll_interval=args.poll_interval, threads=args.threads,
                    uvloop=not args.no_uvloop,
                    heartbeat=args.heartbeat, machine=machine(),
                )  # fmt: skip
                print(json.dumps(result), flush=True)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
