"""Two reporters in front of one MariaDB, offered 100,000 result rows/s in total.

    python -m benchmarks.reporter_fleet [--rate 100000] [--seconds 30] [--reporters 2]
        [--senders-per-reporter 2] [--modules 1000] [--hosts 5] [--writers 3]

Each reporter is its own process (`ReporterService` with the defaults of `lars reporter`:
3 writers, batches of 1,000 rows / 50 ms) writing ServerCallStatus in one MariaDB scratch
database; each prints its counters once a second. `--senders-per-reporter` sender
processes per reporter (the agent-like senders of benchmarks/reporter_bench.py, one
caller address each, so every sender has its own modules x hosts keys) are paced to
offer `--rate` rows/s in total. Printed once a second: rows received and written per
second by each reporter and their backlog (rows queued in the writers); at the end the
medians and means, rows dropped, the time from the last report to its row in the table,
and the CPU of every process over the window (% of one core, from /proc): reporters,
senders, and mariadbd (the machine's shared server: its CPU includes other users').
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine

from benchmarks.dns_common import machine
from benchmarks.fleet_common import proc_sample
from benchmarks.reporter_bench import FINAL_TS, wait_final
from lars.dbengine import scratch_database

BENCH = Path(__file__).with_name("reporter_bench.py")


def reporter(db_url: str, writers: int, seconds: float) -> None:
    """One reporter process: print the port, then the counters every second."""
    from lars.reactor import ReactorConfig
    from lars.reporter.service import ReporterConfig, ReporterService

    service = ReporterService(
        ReporterConfig(
            db_url=db_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            writers=writers,
            stats_interval=0,
        )
    )
    service.start()
    print(json.dumps({"port": service.port}), flush=True)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            time.sleep(1.0)
            s = service.stats()
            print(
                json.dumps(
                    {
                        "t": time.monotonic(),
                        "received": s.received,
                        "written": s.written,
                        "dropped": s.dropped,
                        "coalesced": s.coalesced,
                        "queue": sum(s.queue_depth),
                    }
                ),
                flush=True,
            )
            if sys.stdin.closed:
                break
    finally:
        service.stop()


def mariadb_pid() -> int | None:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    if fh.read().strip() == "mariadbd":
                        return int(pid)
            except OSError:
                continue
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306/")
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--reporters", type=int, default=2)
    ap.add_argument("--senders-per-reporter", type=int, default=2)
    ap.add_argument("--modules", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=5)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--reporter", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reporter:
        reporter(args.reporter[0], int(args.reporter[1]), float(args.reporter[2]))
        return 0
    with scratch_database(args.server, "lars_bench") as db_url:
        engine = create_engine(db_url)
        from lars.dbengine import init_schema

        init_schema(engine)
        reps: list[subprocess.Popen[str]] = []
        senders: list[subprocess.Popen[str]] = []
        try:
            life = args.seconds + 90
            for _ in range(args.reporters):
                reps.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.reporter_fleet",
                            "--reporter",
                            db_url,
                            str(args.writers),
                            str(life),
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            ports = []
            for r in reps:
                assert r.stdout is not None
                ports.append(json.loads(r.stdout.readline())["port"])
            total = args.reporters * args.senders_per_reporter
            for i in range(total):
                cfg = {
                    "port": ports[i % args.reporters],
                    "modules": args.modules,
                    "hosts": args.hosts,
                    "rate": args.rate,
                    "senders": total,
                    "deadline": int(args.seconds) + 60,
                }
                senders.append(
                    subprocess.Popen(
                        [sys.executable, str(BENCH), "--sender", str(i), json.dumps(cfg)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            for p in senders:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            db_pid = mariadb_pid()
            pids = {f"reporter{i}": r.pid for i, r in enumerate(reps)}
            pids.update({f"sender{i}": p.pid for i, p in enumerate(senders)})
            if db_pid is not None:
                pids["mariadbd"] = db_pid
            with open("/proc/loadavg") as fh:
                load0 = " ".join(fh.read().split()[:3])
            cpu0 = {k: proc_sample(v).cpu for k, v in pids.items()}
            w0 = time.monotonic()
            for p in senders:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            samples: list[list[dict[str, float]]] = [[] for _ in reps]
            while time.monotonic() < w0 + args.seconds:
                for i, r in enumerate(reps):
                    assert r.stdout is not None
                    samples[i].append(json.loads(r.stdout.readline()))
                line = []
                for i, s in enumerate(samples):
                    if len(s) >= 2:
                        dt = s[-1]["t"] - s[-2]["t"]
                        line.append(
                            f"r{i} recv {(s[-1]['received'] - s[-2]['received']) / dt:8,.0f}/s "
                            f"written {(s[-1]['written'] - s[-2]['written']) / dt:8,.0f}/s "
                            f"queue {s[-1]['queue']:6,.0f}"
                        )
                if line:
                    print(f"  {len(samples[0]):3d}s " + " | ".join(line), flush=True)
            wall = time.monotonic() - w0
            cpu1 = {k: proc_sample(v).cpu for k, v in pids.items()}
            with open("/proc/loadavg") as fh:
                load1 = " ".join(fh.read().split()[:3])
            finals = []
            for p in senders:
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write("stop\n")
                p.stdin.flush()
                finals.append(json.loads(p.stdout.readline()))
            keys = total * args.modules * args.hosts
            last = wait_final(engine, FINAL_TS, keys, max(f["last_sent"] for f in finals))
            recv_rates: list[float] = []
            write_rates: list[float] = []
            for k in range(2, min(len(s) for s in samples)):  # skip the first second
                dt = samples[0][k]["t"] - samples[0][k - 1]["t"]
                recv_rates.append(
                    sum(s[k]["received"] - s[k - 1]["received"] for s in samples) / dt
                )
                write_rates.append(sum(s[k]["written"] - s[k - 1]["written"] for s in samples) / dt)
            first, end = [s[0] for s in samples], [s[-1] for s in samples]
            span = end[0]["t"] - first[0]["t"]
            result = {
                "reporters": args.reporters,
                "senders": total,
                "offered_rows_per_s": args.rate,
                "received_median": round(statistics.median(recv_rates)),
                "written_median": round(statistics.median(write_rates)),
                "received_mean": round(
                    sum(e["received"] - f["received"] for e, f in zip(end, first, strict=True))
                    / span
                ),
                "written_mean": round(
                    sum(e["written"] - f["written"] for e, f in zip(end, first, strict=True)) / span
                ),
                "written_min": round(min(write_rates)),
                "backlog_max_rows": max(int(x["queue"]) for s in samples for x in s),
                "dropped": sum(int(s[-1]["dropped"]) for s in samples),
                "coalesced": sum(int(s[-1]["coalesced"]) for s in samples),
                "last_report_to_table_ms": round(last * 1000),
                "cpu_pct": {k: round((cpu1[k] - cpu0[k]) / wall * 100, 1) for k in pids},
                "load": f"{load0} -> {load1}",
                "machine": machine(),
            }
            print(json.dumps(result), flush=True)
        finally:
            for p in senders + reps:
                if p.poll() is None:
                    p.kill()
                p.wait()
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
