"""Three route services behind 10,000 simulated agents; one is killed (SIGKILL).

    python -m benchmarks.dns_failover [--agents 10000] [--generators 2] [--per-conn 10]
        [--edits 8] [--edit-gap 0.25] [--heartbeat 0.25] [--poll-interval 0.1]

Three `lars dns` processes read one MariaDB scratch database (100 modules of one host).
`--generators` separate processes (benchmarks/fleet_agents.py) run `--agents` simulated
agents that pick a route service at random, subscribe to `--per-conn` modules each, probe
with the agent's heartbeat, and after a lost connection reconnect exactly as TcpClient
does (lars/reactor/backoff.py ReconnectPolicy: the first retry anywhere in [0, 1 s) for a
peer seen recently, then to another address at random). Then:
- before the kill: `--edits` edits, push latency to every subscriber (the baseline);
- the kill: SIGKILL one route service at t0; during the storm, `--edits` edits through
  RouteAdmin one every `--edit-gap` s starting at t0;
- printed: agents that lost their connection (when they noticed, relative to t0), when
  each connected again and how long from there until every module was answered, when
  each had every module answered again
  on its new connection (resubscribed) relative to t0 (p50/p99/max, the count of agents
  still pending, and a histogram of reconnects per 200 ms, i.e. the spread), the push
  latency during the storm for agents that stayed on the surviving services (p50/p99/max)
  and for those that moved (the edit reached them by the answer after reconnecting), and
  the CPU of each surviving route service and generator over the storm (t0 .. t0 + 3 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections import Counter

from benchmarks.dns_common import DnsProcess, fresh_mysql_db, machine, percentile
from benchmarks.fleet_common import Generators, proc_sample
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin

MODULES = 100


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def stats(values: list[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "min_ms": round(min(values) * 1000, 1) if values else None,
        "p50_ms": round(percentile(values, 50) * 1000, 1) if values else None,
        "p99_ms": round(percentile(values, 99) * 1000, 1) if values else None,
        "max_ms": round(max(values) * 1000, 1) if values else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--generators", type=int, default=2)
    ap.add_argument("--per-conn", type=int, default=10)
    ap.add_argument("--edits", type=int, default=8)
    ap.add_argument("--edit-gap", type=float, default=0.25)
    ap.add_argument("--heartbeat", type=float, default=0.25)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    args = ap.parse_args()
    with fresh_mysql_db() as url:
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for m in range(1, MODULES + 1):
            admin.add_host(m, 1, "10.0.0.1", 80)
        flags = ["--db", url, "--ip", "127.0.0.1", "--port", "0", "--metrics", "off",
                 "--poll-interval", str(args.poll_interval)]  # fmt: skip
        services = [DnsProcess(flags) for _ in range(3)]
        gens: Generators | None = None
        try:
            addrs = [("127.0.0.1", s.port) for s in services]
            gens = Generators(
                args.generators, args.agents, addrs,
                per_conn=args.per_conn, modules=MODULES, heartbeat=args.heartbeat,
            )  # fmt: skip
            time.sleep(2.0)
            spread = Counter[str]()
            for answer in gens.ask("stats"):
                spread.update(answer["by_port"])
            result: dict[str, object] = {
                "agents": args.agents,
                "generators": args.generators,
                "per_conn": args.per_conn,
                "connected_by_port": dict(spread),
            }
            # baseline: pushes with all three up
            base: list[float] = []
            for k in range(args.edits):
                modid, ip = k + 1, f"10.9.{k}.1"
                gens.ask(f"watch {modid} {ip}")
                admin.add_host(modid, 1, ip, 2000 + k)
                committed = time.monotonic()
                time.sleep(1.0)
                base += [t - committed for a in gens.ask(f"result {modid}") for t in a["times"]]
            result["push_before_kill"] = stats(base)
            # the kill and the storm
            victim = services[0]
            survivors = services[1:]
            gens.ask("mark")
            storm_mods = [(MODULES - k, f"10.8.{k}.1") for k in range(args.edits)]
            for modid, ip in storm_mods:
                gens.ask(f"watch {modid} {ip}")
            s0 = [proc_sample(s.proc.pid) for s in survivors]
            g0 = [proc_sample(p) for p in gens.pids]
            load0 = loadavg()
            t0 = time.monotonic()
            os.kill(victim.proc.pid, signal.SIGKILL)
            commits: list[float] = []
            for k, (modid, ip) in enumerate(storm_mods):
                time.sleep(max(0.0, t0 + k * args.edit_gap - time.monotonic()))
                admin.add_host(modid, 1, ip, 3000 + k)
                commits.append(time.monotonic())
            time.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
            s1 = [proc_sample(s.proc.pid) for s in survivors]
            g1 = [proc_sample(p) for p in gens.pids]
            wall = time.monotonic() - t0
            time.sleep(max(0.0, t0 + 5.0 - time.monotonic()))  # late stragglers, if any
            fo = gens.ask("failover")
            lost = [t - t0 for a in fo for t in a["lost"]]
            resub = [t - t0 for a in fo for t in a["resubscribed"]]
            connects = [t - t0 for a in fo for t in a["connects"]]
            setup = [t for a in fo for t in a["setup"]]
            stayed: list[float] = []
            moved: list[float] = []
            for (modid, _ip), committed in zip(storm_mods, commits, strict=True):
                for a in gens.ask(f"result {modid}"):
                    for t, m in zip(a["times"], a["moved"], strict=True):
                        (moved if m else stayed).append(t - committed)
            hist = Counter(int(c / 0.2) for c in connects)
            spread = Counter[str]()
            for answer in gens.ask("stats"):
                spread.update(answer["by_port"])
            result.update(
                lost_connection=len(lost),
                lost_after_kill_ms=stats(lost),
                reconnected=stats(connects),
                connect_to_resubscribed=stats(setup),
                resubscribed=stats(resub),
                resubscribed_within_2s=sum(1 for r in resub if r <= 2.0),
                pending_after_5s=sum(a["pending"] for a in fo),
                reconnects_per_200ms=[hist.get(i, 0) for i in range(max(hist, default=0) + 1)],
                push_during_storm_stayed=stats(stayed),
                push_during_storm_moved=stats(moved),
                survivors_cpu_pct=[
                    round((b.cpu - a.cpu) / wall * 100, 1) for a, b in zip(s0, s1, strict=True)
                ],
                survivors_rss_mb=[round(b.rss_mb, 1) for b in s1],
                generators_cpu_pct=[
                    round((b.cpu - a.cpu) / wall * 100, 1) for a, b in zip(g0, g1, strict=True)
                ],
                connected_by_port_after=dict(spread),
                killed_port=victim.port,
                load=f"{load0} -> {loadavg()}",
                machine=machine(),
            )
            print(json.dumps(result), flush=True)
        finally:
            if gens is not None:
                gens.stop()
            for s in services:
                if s.proc.poll() is None:
                    s.stop()
                else:
                    s.proc.wait()
                    if s.proc.stderr is not None:
                        s.proc.stderr.close()
            engine.dispose()


if __name__ == "__main__":
    main()
