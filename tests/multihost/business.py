"""A business client, run inside a test host: get_host + report at a steady rate.

    python -m tests.multihost.business --modules 1:1,1:2 --rate 50 --seconds 40 --out F
        [--watch 9:1 --watch-every 0.01] [--timeout 0.2]

Each tick (1/rate s) it asks the local agent for one host of every module in turn and
reports a success for it. Every second it appends one JSON line to --out:
  {"t": wall, "ok": n, "fail": {"NOEXIST": n, ...}, "p50": ms, "p99": ms, "max": ms,
   "timed_out": n}
and, for every failed call, {"t": wall, "failed": "1:1", "retcode": "...", "ms": ...}
(at most 1000 of them). With --watch a second thread asks get_route for that module every
--watch-every s and appends {"t": wall, "route": [["ip", port], ...]} whenever the host
set it sees changes (the push-latency probe). SIGTERM or the end of --seconds writes
{"done": true, "ok": total, "failed": total, "max": ms, "reports": n} and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from typing import IO, Any

from lars.client import LarsClient
from lars.protocol import RetCode

MAX_FAILURE_LINES = 1000


class Out:
    """JSON lines to a file, flushed at once (the test reads it while we run)."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.lock = threading.Lock()

    def write(self, obj: dict[str, Any]) -> None:
        with self.lock:
            self.fh.write(json.dumps(obj) + "\n")
            self.fh.flush()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def watch(client: LarsClient, key: tuple[int, int], every: float, out: Out,
          stop: threading.Event) -> None:  # fmt: skip
    seen: list[tuple[str, int]] | None = None
    while not stop.is_set():
        route = client.get_route(*key)
        if route.retcode == RetCode.SUCC or route.retcode == RetCode.NOEXIST:
            hosts = sorted((h.ip, h.port) for h in route.hosts)
            if hosts != seen:
                seen = hosts
                out.write({"t": time.time(), "route": hosts})
        stop.wait(every)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--timeout", type=float, default=0.2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--watch")
    parser.add_argument("--watch-every", type=float, default=0.01)
    args = parser.parse_args()
    keys = [tuple(int(x) for x in m.split(":")) for m in args.modules.split(",")]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(args.out, "a", encoding="utf-8") as fh, LarsClient(timeout=args.timeout) as client:
        out = Out(fh)
        for modid, cmdid in keys:
            client.reg_init(modid, cmdid)
        watcher = None
        if args.watch:
            wkey = tuple(int(x) for x in args.watch.split(":"))
            watcher = threading.Thread(
                target=watch, args=(client, wkey, args.watch_every, out, stop), name="watch"
            )
            watcher.start()
        total_ok = total_failed = reports = failure_lines = 0
        worst = 0.0
        ok, timed_out, fails, lat = 0, 0, dict[str, int](), list[float]()
        tick = 1.0 / args.rate
        start = next_tick = last_line = time.monotonic()
        i = 0
        while not stop.is_set() and time.monotonic() - start < args.seconds:
            modid, cmdid = keys[i % len(keys)]
            i += 1
            t0 = time.monotonic()
            result = client.get_host(modid, cmdid)
            ms = (time.monotonic() - t0) * 1000
            lat.append(ms)
            worst = max(worst, ms)
            if result.ok:
                ok += 1
                total_ok += 1
                client.report(modid, cmdid, result.ip, result.port, 0)
                reports += 1
            else:
                total_failed += 1
                name = result.retcode.name
                fails[name] = fails.get(name, 0) + 1
                timed_out += result.timed_out
                if failure_lines < MAX_FAILURE_LINES:
                    failure_lines += 1
                    out.write({"t": time.time(), "failed": f"{modid}:{cmdid}",
                               "retcode": name, "ms": round(ms, 2)})  # fmt: skip
            now = time.monotonic()
            if now - last_line >= 1.0:
                out.write({"t": time.time(), "ok": ok, "fail": fails, "timed_out": timed_out,
                           "p50": round(_pct(lat, 0.5), 3), "p99": round(_pct(lat, 0.99), 3),
                           "max": round(max(lat, default=0.0), 3)})  # fmt: skip
                ok, timed_out, fails, lat = 0, 0, {}, []
                last_line = now
            next_tick = max(next_tick + tick, time.monotonic() - tick)  # late: no burst
            stop.wait(max(0.0, next_tick - time.monotonic()))
        stop.set()
        if watcher is not None:
            watcher.join()
        out.write({"done": True, "ok": total_ok, "failed": total_failed,
                   "max": round(worst, 3), "reports": reports})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
