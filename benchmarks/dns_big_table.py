"""A route table of 100,000 modules x 10 hosts (1M RouteData rows) on MariaDB.

    python -m benchmarks.dns_big_table [--modules 100000] [--hosts 10] [--fetch 1000]
        [--reload-interval 600] [--reload-deadline 120] [--seconds 90]

Fills a scratch database with multi-row INSERTs (10,000 rows a statement), then starts
`lars dns` in its own process with an INI file giving `[dns] reload_interval` and
`[dns] reload_deadline` (a 1M-row load takes longer than the defaults of 10 s; the
deadline has no flag) and reports:
- fill: seconds to insert the rows;
- start: seconds from spawning `lars dns` to its "listening" line (imports + the full
  load + guard + table build), its RSS and peak RSS (VmHWM) once listening;
- fetch: an agent starting with `--fetch` modules: one connection asks them all at once
  (as the agent re-asks every module on connect) -> seconds until every answer is in;
  and one at a time (ask, wait, next) -> seconds;
- reload: a separate client process asks GetRouteRequest ping-pong (one request, its
  answer, 1 ms pause, the next) and holds a connection subscribed to module 1; one edit
  (RouteAdmin.add_host on module 1) makes the route service reload all 1M rows; printed:
  commit -> push receipt (the reload time), the answer latency (p50/p99/max, count)
  during the reload (commit .. push), before it and after it (the old table is freed
  then), and the route service's RSS/HWM.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from benchmarks.dns_common import DnsProcess, fresh_mysql_db, machine, percentile
from benchmarks.fleet_common import proc_sample
from lars.dbengine import init_schema, make_engine
from lars.protocol import MsgId, lars_pb2
from lars.routes.admin import RouteAdmin

HEADER = struct.Struct("<ii")
REQ = int(MsgId.GET_ROUTE_REQUEST)


def frame(modid: int) -> bytes:
    body = lars_pb2.GetRouteRequest(modid=modid, cmdid=1).SerializeToString()
    return HEADER.pack(REQ, len(body)) + body


def read_frame(sock: socket.socket, buf: bytearray) -> bytes:
    while True:
        if len(buf) >= 8:
            n = HEADER.unpack_from(buf)[1]
            if len(buf) >= 8 + n:
                body = bytes(buf[8 : 8 + n])
                del buf[: 8 + n]
                return body
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed")
        buf += data


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def fill(url: str, modules: int, hosts: int) -> float:
    engine = make_engine(url)
    init_schema(engine)
    t0 = time.perf_counter()
    rows = ((m, h) for m in range(1, modules + 1) for h in range(hosts))
    insert = "INSERT INTO RouteData (modid,cmdid,serverip,serverport) VALUES "
    batch: list[str] = []
    with engine.begin() as conn:
        for m, h in rows:
            ip = (10 << 24) + (m * hosts + h) % (1 << 24)
            batch.append(f"({m},1,{ip},{8000 + h})")
            if len(batch) == 10_000:
                conn.execute(text(insert + ",".join(batch)))
                batch = []
        if batch:
            conn.execute(text(insert + ",".join(batch)))
    seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds


def client(port: int, seconds: float, modules: int) -> None:
    """Ping-pong GetRouteRequests for `seconds`, subscribed to module 1 on a second
    connection; prints the samples [sent_at, latency] and the push receipt times."""
    ask = socket.create_connection(("127.0.0.1", port))
    sub = socket.create_connection(("127.0.0.1", port))
    sub.sendall(frame(1))
    sub_buf = bytearray()
    read_frame(sub, sub_buf)
    sub.setblocking(False)
    pushes: list[float] = []
    samples: list[tuple[float, float]] = []
    buf = bytearray()
    rng = random.Random(7)
    print(json.dumps({"ready": 1}), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        ask.sendall(frame(rng.randrange(1, modules + 1)))
        read_frame(ask, buf)
        samples.append((t, time.monotonic() - t))
        try:
            if sub.recv(1 << 16):
                pushes.append(time.monotonic())
        except BlockingIOError:
            pass
        time.sleep(0.001)
    print(json.dumps({"samples": samples, "pushes": pushes}), flush=True)


def stats(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2) if values else None,
        "p99_ms": round(percentile(values, 99) * 1000, 2) if values else None,
        "max_ms": round(max(values) * 1000, 2) if values else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--fetch", type=int, default=1000)
    ap.add_argument("--reload-interval", type=float, default=600.0)
    ap.add_argument("--reload-deadline", type=float, default=120.0)
    ap.add_argument("--seconds", type=float, default=90.0, help="the reload client's run")
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client(int(args.client[0]), float(args.client[1]), int(args.client[2]))
        return
    result: dict[str, object] = {"modules": args.modules, "hosts": args.hosts}
    with fresh_mysql_db() as url, tempfile.TemporaryDirectory() as tmp:
        result["fill_s"] = round(fill(url, args.modules, args.hosts), 1)
        ini = Path(tmp) / "dns.conf"
        ini.write_text(
            f"[dns]\nreload_interval = {args.reload_interval}\n"
            f"reload_deadline = {args.reload_deadline}\nsnapshot = off\n"
        )
        load0 = loadavg()
        t0 = time.monotonic()
        dns = DnsProcess(["-c", str(ini), "--db", url, "--ip", "127.0.0.1", "--port", "0",
                          "--metrics", "off"])  # fmt: skip
        result["start_to_listening_s"] = round(time.monotonic() - t0, 1)
        proc: subprocess.Popen[str] | None = None
        engine = make_engine(url)
        try:
            s = proc_sample(dns.proc.pid)
            result["rss_listening_mb"] = round(s.rss_mb, 1)
            result["hwm_listening_mb"] = round(s.hwm_mb, 1)
            result["load_start"] = f"{load0} -> {loadavg()}"
            rng = random.Random(3)
            mods = rng.sample(range(1, args.modules + 1), args.fetch)
            with socket.create_connection(("127.0.0.1", dns.port)) as sock:
                buf = bytearray()
                t1 = time.monotonic()
                sock.sendall(b"".join(frame(m) for m in mods))
                hosts = 0
                for _ in mods:
                    msg = lars_pb2.GetRouteResponse()
                    msg.ParseFromString(read_frame(sock, buf))
                    hosts += len(msg.host)
                result["fetch_pipelined_s"] = round(time.monotonic() - t1, 3)
                result["fetch_hosts"] = hosts
                t1 = time.monotonic()
                for m in mods:
                    sock.sendall(frame(m))
                    read_frame(sock, buf)
                result["fetch_one_at_a_time_s"] = round(time.monotonic() - t1, 3)
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.dns_big_table", "--client",
                 str(dns.port), str(args.seconds), str(args.modules)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert proc.stdout is not None
            json.loads(proc.stdout.readline())
            time.sleep(min(10.0, args.seconds / 6))
            load1 = loadavg()
            c0 = proc_sample(dns.proc.pid)
            RouteAdmin(engine).add_host(1, 1, "192.0.2.1", 9999)
            committed = time.monotonic()
            report = json.loads(proc.stdout.readline())
            proc.wait()
            c1 = proc_sample(dns.proc.pid)
            pushes = [p for p in report["pushes"] if p >= committed]
            pushed = pushes[0] if pushes else None
            samples = report["samples"]
            during = [lat for t, lat in samples if pushed and committed <= t <= pushed]
            before = [lat for t, lat in samples if t < committed]
            after = [lat for t, lat in samples if pushed and t > pushed]
            result.update(
                reload_commit_to_push_s=round(pushed - committed, 2) if pushed else None,
                answers_during_reload=stats(during),
                answers_before_reload=stats(before),
                answers_after_reload=stats(after),
                rss_after_reload_mb=round(c1.rss_mb, 1),
                hwm_after_reload_mb=round(c1.hwm_mb, 1),
                dns_cpu_s_reload_window=round(c1.cpu - c0.cpu, 1),
                load_reload=f"{load1} -> {loadavg()}",
                reload_interval=args.reload_interval,
                reload_deadline=args.reload_deadline,
                machine=machine(),
            )
            print(json.dumps(result), flush=True)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            dns.stop()
            engine.dispose()


if __name__ == "__main__":
    main()
