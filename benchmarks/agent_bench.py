"""Agent throughput: get_host + report pairs/s per shard mode and load processes.

Sets up a SQLite route table (10 modules of 5 hosts), starts the real `lars dns`,
`lars reporter` and `lars agent --mode M` processes on loopback, waits until every
module answers SUCC, then runs benchmarks/agent_load.py with 1, 2, 4, 8 processes.
Everything is stopped at the end; traffic stays on 127.0.0.1.

    python benchmarks/agent_bench.py --modes one-loop,threads,processes --seconds 8

`--scrape-rounds R` measures the metrics listener's cost instead: in one run, on one
agent, R rounds of (load without a scraper, load while a scraper GETs /metrics every
`--scrape-interval` seconds), the order flipped every round so drift hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_load
from dns_common import free_port, free_udp_base

from lars.db import route_data, route_version
from lars.dbengine import init_schema, make_engine
from lars.protocol import MsgId, dotted_to_uint, lars_pb2


def fill_routes(url: str, modules: int, hosts: int) -> None:
    engine = make_engine(url)
    init_schema(engine)
    rows = [
        {"modid": m, "cmdid": 1, "serverip": dotted_to_uint(f"10.{m // 250}.{m % 250}.{h + 1}"),
         "serverport": 9000 + h}
        for m in range(1, modules + 1)
        for h in range(hosts)
    ]  # fmt: skip
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(route_data), rows[i : i + 5000])
        conn.execute(update(route_version).values(version=int(time.time())))
    engine.dispose()


def lars(log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "w", encoding="utf-8") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", *args],
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def warm(base: int, modules: list[tuple[int, int]], deadline: float = 120.0) -> None:
    """Ask every module until it answers SUCC (routes fetched from the route service)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    pending = list(modules)
    end = time.monotonic() + deadline
    seq = 0
    try:
        while pending:
            if time.monotonic() > end:
                raise RuntimeError(f"{len(pending)} modules never answered SUCC")
            still = []
            for m, c in pending:
                seq += 1
                body = lars_pb2.GetHostRequest(seq=seq, modid=m, cmdid=c).SerializeToString()
                sock.sendto(agent_load.frame(int(MsgId.GET_HOST_REQUEST), body),
                            ("127.0.0.1", base + (m + c) % 3))  # fmt: skip
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    still.append((m, c))
                    continue
                if lars_pb2.GetHostResponse.FromString(data[8:]).retcode != 0:
                    still.append((m, c))
            pending = still
            if pending:
                time.sleep(0.1)
    finally:
        sock.close()


class Stack:
    """Route service + reporter (SQLite) + one agent process."""

    def __init__(self, workdir: Path, url: str, mode: str) -> None:
        self.dns_port, self.rep_port = free_port(), free_port()
        self.base = free_udp_base()
        self.metrics_port = free_port()
        self.procs = [
            lars(workdir / "dns.log", "dns", "--db", url, "--ip", "127.0.0.1",
                 "--port", str(self.dns_port), "--metrics", "127.0.0.1:0"),
            lars(workdir / "reporter.log", "reporter", "--db", url, "--ip", "127.0.0.1",
                 "--port", str(self.rep_port), "--metrics", "127.0.0.1:0"),
            lars(workdir / f"agent-{mode}.log", "agent", "--mode", mode,
                 "--base-port", str(self.base), "--dns", f"127.0.0.1:{self.dns_port}",
                 "--reporter", f"127.0.0.1:{self.rep_port}", "--caller", "127.0.0.1",
                 "--metrics", f"127.0.0.1:{self.metrics_port}"),
        ]  # fmt: skip

    @property
    def agent(self) -> subprocess.Popen[bytes]:
        return self.procs[2]

    def close(self) -> None:
        for p in reversed(self.procs):
            stop(p)


class Scraper:
    """A Prometheus stand-in: GET /metrics every `interval` seconds on its own thread."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.scrapes = 0
        self.bytes = 0
        self.seconds: list[float] = []

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=5) as rsp:
                self.bytes += len(rsp.read())
            self.seconds.append(time.perf_counter() - t0)
            self.scrapes += 1
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - t0)))


def scrape_ab(args: argparse.Namespace, work: Path, url: str, mods: list[tuple[int, int]]) -> None:
    """Alternate rounds without and with a scraper on one agent; print both and the cost."""
    mode = args.modes.split(",")[0]
    n = int(args.procs.split(",")[0])
    stack = Stack(work, url, mode)
    rows: list[dict[str, Any]] = []
    try:
        warm(stack.base, mods)
        scraper = Scraper(f"http://127.0.0.1:{stack.metrics_port}/metrics", args.scrape_interval)
        for i in range(args.scrape_rounds):
            for scraping in ((False, True) if i % 2 == 0 else (True, False)):
                if scraping:
                    scraper.start()
                try:
                    r = agent_load.run(stack.base, n, args.seconds, mods, args.window, True)
                finally:
                    if scraping:
                        scraper.stop()
                r.pop("per_second")
                r.update(mode=mode, round=i, scraping=scraping, uptime=uptime())
                rows.append(r)
                print(json.dumps(r), flush=True)
    finally:
        stack.close()
    off = sorted(r["pairs_per_s_median"] for r in rows if not r["scraping"])
    on = sorted(r["pairs_per_s_median"] for r in rows if r["scraping"])
    med_off, med_on = statistics.median(off), statistics.median(on)
    mean_off, mean_on = statistics.mean(off), statistics.mean(on)
    lat = sorted(scraper.seconds)
    print(f"| {mode} | {n} | without scraper | {med_off:,.0f} | rounds {off} |")
    every = f"scrape every {args.scrape_interval:g} s"
    print(f"| {mode} | {n} | {every} | {med_on:,.0f} | rounds {on} |")
    print(f"mean of rounds: {mean_off:,.0f} without, {mean_on:,.0f} with "
          f"({100 * (mean_off - mean_on) / mean_off:+.1f}%)")
    print(f"cost: {100 * (med_off - med_on) / med_off:+.1f}% of pairs/s (positive = slower); "
          f"{scraper.scrapes} scrapes, {scraper.bytes // max(1, scraper.scrapes)} bytes each, "
          f"median {1000 * lat[len(lat) // 2]:.1f} ms, max {1000 * lat[-1]:.1f} ms")  # fmt: skip


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="one-loop,threads,processes")
    ap.add_argument("--procs", default="1,2,4,8")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--modules", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=5)
    ap.add_argument("--no-reports", action="store_true", help="get_host only")
    ap.add_argument("--scrape-rounds", type=int, default=0,
                    help="measure the scraper's cost: rounds of (off, on), first mode/procs")
    ap.add_argument("--scrape-interval", type=float, default=1.0)
    args = ap.parse_args()
    mods = [(m, 1) for m in range(1, args.modules + 1)]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lars-agent-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'lars.db'}"
        fill_routes(url, args.modules, args.hosts)
        print(json.dumps({"uptime_before": uptime(), "cpus": os.cpu_count()}), flush=True)
        if args.scrape_rounds:
            scrape_ab(args, work, url, mods)
            return
        for mode in args.modes.split(","):
            stack = Stack(work, url, mode)
            try:
                warm(stack.base, mods)
                for n in (int(p) for p in args.procs.split(",")):
                    r = agent_load.run(
                        stack.base, n, args.seconds, mods, args.window, not args.no_reports
                    )
                    r.update(mode=mode, uptime=uptime())
                    r.pop("per_second")
                    results.append(r)
                    print(json.dumps(r), flush=True)
            finally:
                stack.close()
    print("| mode | load procs | window | reports | pairs/s (median) | pairs/s (mean) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['procs']} | {r['window']} | {'on' if r['reports'] else 'off'} "
              f"| {r['pairs_per_s_median']:,.0f} | {r['pairs_per_s_mean']:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
