"""What a metrics scrape costs the agent's hot path, with many known-empty modules.

Issue 19 item 5: one /metrics scrape used to walk every module on the shard loops (7.4 ms
with 30k modules), so get_host stalled behind it. This starts the real `lars dns` and
`lars reporter` (SQLite, 10 modules of 5 hosts) and one `lars agent` per tree measured
(this work tree or the git revision `--after REV`, and with `--before REV` also the
code of git revision REV; a revision is extracted with `git archive` and run from its
own directory; REV may also be a directory holding a `lars` package), makes each agent
hold `--empty` extra known-empty modules (a get_host for each unknown module: the route
service answers empty; empty_module_ttl is raised so none expires during the run), runs
`--rounds` rounds per agent of (get_host load without a scraper, the same load while a
scraper GETs /metrics every `--interval` seconds), the order flipped every round so
drift hits both alike, agents interleaved round by round.

The load is one closed-loop client process (window 1, get_host only, the 10 modules in
turn) that times every request; the scraper runs in this process, so it never competes
with the client for a GIL. Per agent and condition it prints the median over rounds of
get_host/s and of the per-round p99, then the ratios (scraping / not scraping), and the
median of the per-round ratios (the two runs of a round are back to back, so that one
resists a machine whose load drifts).

    python benchmarks/agent_scrape.py --empty 30000 --rounds 5 --seconds 4 --before 7baaf69
    python benchmarks/agent_scrape.py --empty 0 --rounds 5 --seconds 4
    python benchmarks/agent_scrape.py --empty 30000 --debug-module   # /debug/module too
    python benchmarks/agent_scrape.py --empty 30000 --interval 0     # scrapes back to back

Traffic stays on 127.0.0.1; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_bench
import agent_load
from dns_common import free_port, free_udp_base

from lars.protocol import MsgId, lars_pb2

REPO = Path(__file__).resolve().parent.parent
GET_HOST = int(MsgId.GET_HOST_REQUEST)
EMPTY_BASE = 100_000  # modids of the known-empty modules start here (none in the table)


def extract(rev: str, dest: Path) -> Path:
    """The `lars` package of git revision `rev`, under dest (run with cwd=dest); `rev`
    may also name a directory holding a `lars` package (a revision with patches)."""
    if (Path(rev) / "lars").is_dir():
        return Path(rev).resolve()
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "lars"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def daemon(work: Path, log: str, *args: str) -> subprocess.Popen[bytes]:
    """`lars ARGS` run in `work` (files a daemon writes to its directory stay there)."""
    with open(work / log, "w", encoding="utf-8") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", *args],
            cwd=work, stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip


def stack(work: Path, url: str, dns_port: int, rep_port: int) -> list[subprocess.Popen[bytes]]:
    """The route service and the reporter on SQLite."""
    return [
        daemon(work, "dns.log", "dns", "--db", url, "--ip", "127.0.0.1",
               "--port", str(dns_port), "--metrics", "127.0.0.1:0"),
        daemon(work, "rep.log", "reporter", "--db", url, "--ip", "127.0.0.1",
               "--port", str(rep_port), "--metrics", "127.0.0.1:0"),
    ]  # fmt: skip


def show_logs(work: Path) -> None:
    """The last lines of every daemon log (after a failure)."""
    for log in sorted(work.glob("*.log")):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print(f"--- {log.name}", *lines, sep="\n", file=sys.stderr)


class Agent:
    """One `lars agent` process run from `tree` (its `lars` package comes first)."""

    def __init__(self, name: str, tree: Path, work: Path, dns: int, rep: int) -> None:
        self.name = name
        self.base = free_udp_base()
        self.metrics = free_port()
        conf = work / f"agent-{name}.conf"
        conf.write_text(
            f"[dnsserver]\nip = 127.0.0.1\nport = {dns}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {rep}\n"
            "[agent]\nempty_module_ttl = 86400\n",
            encoding="utf-8",
        )
        with open(work / f"agent-{name}.log", "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", "--log-level", "WARNING", "agent",
                 "-c", str(conf), "--base-port", str(self.base), "--caller", "127.0.0.1",
                 "--metrics", f"127.0.0.1:{self.metrics}"],
                cwd=tree, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}"

    def close(self) -> None:
        agent_bench.stop(self.proc)


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the agent's exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as rsp:
        text = rsp.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def make_empty(agent: Agent, count: int, deadline: float = 300.0) -> None:
    """Ask for `count` modules the route service does not know until the agent holds
    every one as known-empty."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.settimeout(0.2)
    end = time.monotonic() + deadline
    try:
        while metric(agent.url, "lars_agent_modules", state="empty") < count:
            if time.monotonic() > end:
                raise RuntimeError(f"agent {agent.name}: the empty modules never all arrived")
            for i in range(count):
                m = EMPTY_BASE + i
                body = lars_pb2.GetHostRequest(seq=i, modid=m, cmdid=1).SerializeToString()
                sock.sendto(
                    agent_load.frame(GET_HOST, body), ("127.0.0.1", agent.base + (m + 1) % 3)
                )
                if i % 200 == 199:
                    drain(sock)
            drain(sock)
            time.sleep(1.0)
    finally:
        sock.close()


def drain(sock: socket.socket) -> None:
    try:
        while True:
            sock.recv(65536)
    except TimeoutError:
        pass


def load(base: int, modules: list[tuple[int, int]], seconds: float, out: Any) -> None:
    """Closed loop, window 1: get_host count and latencies (child process)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    reqs = [
        (agent_load.frame(GET_HOST, lars_pb2.GetHostRequest(seq=1, modid=m, cmdid=c)
                          .SerializeToString()), ("127.0.0.1", base + (m + c) % 3))
        for m, c in modules
    ]  # fmt: skip
    lat: list[float] = []
    timeouts = 0
    clock = time.perf_counter
    end = clock() + seconds
    i = 0
    n = len(reqs)
    while True:
        t0 = clock()
        if t0 >= end:
            break
        data, addr = reqs[i % n]
        i += 1
        sock.sendto(data, addr)
        try:
            sock.recv(65536)
        except TimeoutError:
            timeouts += 1
            continue
        lat.append(clock() - t0)
    sock.close()
    lat.sort()
    out.put({
        "get_host": len(lat),
        "per_s": len(lat) / seconds,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        "max_ms": 1000 * lat[-1],
        "timeouts": timeouts,
    })  # fmt: skip


class Scraper:
    """GET `paths` every `interval` seconds on its own thread."""

    def __init__(self, base_url: str, paths: list[str], interval: float) -> None:
        self.urls = [base_url + p for p in paths]
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.seconds: list[float] = []

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scraper")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            for url in self.urls:
                with urllib.request.urlopen(url, timeout=10) as rsp:
                    rsp.read()
            self.seconds.append(time.perf_counter() - t0)
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - t0)))


def one_round(agent: Agent, args: argparse.Namespace, scraping: bool,
              mods: list[tuple[int, int]], paths: list[str]) -> dict[str, Any]:  # fmt: skip
    ctx = mp.get_context("fork")
    out: Any = ctx.Queue()
    scraper = Scraper(agent.url, paths, args.interval)
    child = ctx.Process(target=load, args=(agent.base, mods, args.seconds, out))
    if scraping:
        scraper.start()
    try:
        child.start()
        r: dict[str, Any] = out.get(timeout=args.seconds + 60)
        child.join()
    finally:
        scraper.stop()
    r.update(agent=agent.name, scraping=scraping, scrapes=len(scraper.seconds),
             scrape_ms=round(1000 * statistics.median(scraper.seconds), 1)
             if scraper.seconds else None,
             load1=os.getloadavg()[0])  # fmt: skip
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--empty", type=int, default=30_000, help="known-empty modules to hold")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    ap.add_argument("--before", metavar="REV", help="also measure the agent of git REV")
    ap.add_argument("--after", metavar="REV", help="the agent of git REV, not the work tree")
    ap.add_argument("--debug-module", action="store_true",
                    help="each scrape also GETs /debug/module of a module with hosts")  # fmt: skip
    args = ap.parse_args()
    mods = [(m, 1) for m in range(1, 11)]
    paths = ["/metrics"] + (["/debug/module?modid=1&cmdid=1"] if args.debug_module else [])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lars-agent-scrape-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'lars.db'}"
        agent_bench.fill_routes(url, 10, 5)
        dns_port, rep_port = free_port(), free_port()
        procs = stack(work, url, dns_port, rep_port)
        trees = [("after", extract(args.after, work / "after") if args.after else REPO)]
        if args.before:
            trees.insert(0, ("before", extract(args.before, work / "before")))
        agents = [Agent(name, tree, work, dns_port, rep_port) for name, tree in trees]
        try:
            print(json.dumps({"uptime": agent_bench.uptime(), "cpus": os.cpu_count(),
                              "empty": args.empty}), flush=True)  # fmt: skip
            for agent in agents:
                agent_bench.warm(agent.base, mods)
                if args.empty:
                    make_empty(agent, args.empty)
                agent_bench.warm(agent.base, mods)
            for i in range(args.rounds):
                for agent in agents:
                    for scraping in (False, True) if i % 2 == 0 else (True, False):
                        r = one_round(agent, args, scraping, mods, paths)
                        r["round"] = i
                        rows.append(r)
                        print(json.dumps(r), flush=True)
            for agent in agents:
                modules = metric(agent.url, "lars_agent_modules", state="empty")
                print(json.dumps({"agent": agent.name, "empty_modules_at_end": modules}))
        except BaseException:
            show_logs(work)
            raise
        finally:
            for agent in agents:
                agent.close()
            for p in reversed(procs):
                agent_bench.stop(p)
    print(
        f"\n{args.empty} known-empty modules + 10 with hosts; median of {args.rounds} rounds "
        f"of {args.seconds:g} s; scrape every {args.interval:g} s ({' + '.join(paths)})"
    )
    print("| agent | scraping | get_host/s | p50 ms | p99 ms | scrape ms (median) |")
    print("|---|---|---|---|---|---|")
    for name, _ in trees:
        med: dict[bool, dict[str, float]] = {}
        for scraping in (False, True):
            rs = [r for r in rows if r["agent"] == name and r["scraping"] == scraping]
            med[scraping] = {k: statistics.median(r[k] for r in rs)
                             for k in ("per_s", "p50_ms", "p99_ms")}  # fmt: skip
            scr = [r["scrape_ms"] for r in rs if r["scrape_ms"] is not None]
            print(f"| {name} | {'yes' if scraping else 'no'} | {med[scraping]['per_s']:,.0f} "
                  f"| {med[scraping]['p50_ms']:.3f} | {med[scraping]['p99_ms']:.3f} "
                  f"| {statistics.median(scr) if scr else '-'} |")  # fmt: skip
        ratio = med[True]["per_s"] / med[False]["per_s"]
        p99 = med[True]["p99_ms"] / med[False]["p99_ms"]
        print(f"{name}: get_host/s with/without scrapes {ratio:.3f}, p99 with/without {p99:.2f}x")
        paired = [
            (on["per_s"] / off["per_s"], on["p99_ms"] / off["p99_ms"])
            for on in rows
            for off in rows
            if on["agent"] == off["agent"] == name
            and on["round"] == off["round"]
            and on["scraping"]
            and not off["scraping"]
        ]
        print(f"{name}: median of the per-round ratios (each round's pair run back to back): "
              f"get_host/s {statistics.median(r for r, _ in paired):.3f}, "
              f"p99 {statistics.median(p for _, p in paired):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
