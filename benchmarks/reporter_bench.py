"""Reporter throughput: agent-like senders -> `ReporterService` -> the real MariaDB.

    python benchmarks/reporter_bench.py [--seconds 60] [--rate 30000] [--senders 4]

Each sender process is one agent (its own caller address) reporting every module of
`--modules` x `--hosts` (one ReportStatusRequest per module, one result per host), paced
so that all senders together offer `--rate` result rows per second (0 = as fast as the
socket takes them). The reporter runs in this process; once a second the script samples
its counters (rows received and written). At the end every sender sends one final round
with a marker ts; the script records when the last of those frames was sent and polls
the table until every key holds its final value: that is the last-report-to-table time.
A fresh database is created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select

from lars.db import server_call_status
from lars.dbengine import scratch_database
from lars.protocol import MsgId, lars_pb2
from lars.reactor import ReactorConfig, encode
from lars.reporter.service import ReporterConfig, ReporterService

FINAL_TS = 4_000_000_000
TICK = 0.01


def sender(index: int, cfg: dict[str, int]) -> None:
    """One agent: connect, wait for 'go' on stdin, send until 'stop', then the final round."""
    caller = (10 << 24) | (index + 1)
    modules, hosts = cfg["modules"], cfg["hosts"]
    msgs_per_s = cfg["rate"] / cfg["senders"] / hosts
    sock = socket.create_connection(("127.0.0.1", cfg["port"]))
    print("ready", flush=True)
    sys.stdin.readline()
    os.set_blocking(sys.stdin.fileno(), False)
    seq = 0
    sent = 0
    module = 0
    start = time.monotonic()

    def frame(m: int, s: int, ts: int) -> bytes:
        msg = lars_pb2.ReportStatusRequest(modid=m + 1, cmdid=1, caller=caller, ts=ts)
        for h in range(hosts):
            msg.results.add(ip=(192 << 24 | h + 1) - (1 << 32), port=9000 + h, succ=s, err=s % 7)
        return encode(MsgId.REPORT_STATUS_REQUEST, msg.SerializeToString())

    while time.monotonic() < start + cfg["deadline"]:
        try:
            if sys.stdin.readline():
                break
        except (BlockingIOError, TypeError):
            pass
        due = (
            int((time.monotonic() - start) * msgs_per_s) - sent if msgs_per_s > 0 else modules // 4
        )
        if due <= 0:
            time.sleep(TICK)
            continue
        frames = []
        for _ in range(min(due, modules)):
            if module == 0:
                seq += 1
            frames.append(frame(module, seq, seq))
            module = (module + 1) % modules
        sock.sendall(b"".join(frames))
        sent += len(frames)
    # Final round, paced like the others: every module once with the marker ts.
    final = seq + 1
    t0, done = time.monotonic(), 0
    while done < modules:
        due = max(1, int((time.monotonic() - t0) * msgs_per_s) - done) if msgs_per_s else modules
        sock.sendall(
            b"".join(frame(m, final, FINAL_TS) for m in range(done, min(modules, done + due)))
        )
        done = min(modules, done + due)
        if done < modules:
            time.sleep(TICK)
    report = {"rows": (sent + modules) * hosts, "last_sent": time.time(), "final": final}
    print(json.dumps(report), flush=True)
    # Then one burst: every module at once, as after a reconnect.
    os.set_blocking(sys.stdin.fileno(), True)
    sys.stdin.readline()
    sock.sendall(b"".join(frame(m, final + 1, FINAL_TS + 1) for m in range(modules)))
    print(json.dumps({"last_sent": time.time()}), flush=True)
    sock.close()


def wait_final(engine: Engine, ts: int, keys: int, last_sent: float) -> float:
    """Seconds from `last_sent` until all `keys` rows carry `ts` (polled every 5 ms)."""
    t = server_call_status
    count = select(func.count()).select_from(t).where(t.c.ts == ts)
    deadline = time.time() + 120
    with engine.connect() as conn:
        while conn.execute(count).scalar() != keys and time.time() < deadline:
            conn.rollback()  # a fresh snapshot for the next poll
            time.sleep(0.005)
    return time.time() - last_sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=30_000, help="offered rows/s (0 = max)")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--batch-ms", type=float, default=50.0)
    parser.add_argument("--threads", type=int, default=0, help="reactor worker loops")
    parser.add_argument("--sender", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        sender(int(args.sender[0]), json.loads(args.sender[1]))
        return 0

    with scratch_database(args.server, "lars_bench") as db_url:
        return bench(args, db_url)


def bench(args: argparse.Namespace, db_url: str) -> int:
    """The run itself, on a database of its own."""
    service = ReporterService(
        ReporterConfig(
            db_url=db_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0, threads=args.threads),
            writers=args.writers,
            batch_rows=args.batch_rows,
            batch_interval=args.batch_ms / 1000,
            stats_interval=0,
        )
    )
    engine = create_engine(db_url)
    procs: list[subprocess.Popen[str]] = []
    try:
        service.start()
        cfg = {
            "port": service.port,
            "modules": args.modules,
            "hosts": args.hosts,
            "rate": args.rate,
            "senders": args.senders,
            "deadline": int(args.seconds) + 60,  # a sender left alone stops by itself
        }
        for i in range(args.senders):
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__)), "--sender", str(i), json.dumps(cfg)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        print(
            f"reporter bench: {args.senders} senders x {args.modules} modules x {args.hosts} "
            f"hosts, offered {args.rate or 'max'} rows/s, {args.seconds:.0f} s, "
            f"{args.writers} writers, batches {args.batch_rows} rows / {args.batch_ms} ms",
            flush=True,
        )
        cpu0 = time.process_time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        recv_rates, write_rates, depths = [], [], []
        last = service.stats()
        t_last = time.monotonic()
        t_end = t_last + args.seconds
        while time.monotonic() < t_end:
            time.sleep(max(0.0, min(1.0, t_end - time.monotonic())))
            now, t_now = service.stats(), time.monotonic()
            dt = t_now - t_last
            recv_rates.append((now.received - last.received) / dt)
            write_rates.append((now.written - last.written) / dt)
            depths.append(sum(now.queue_depth))
            print(
                f"  {len(recv_rates):3d}s received {recv_rates[-1]:9,.0f}/s "
                f"written {write_rates[-1]:9,.0f}/s queue {sum(now.queue_depth):7,}",
                flush=True,
            )
            last, t_last = now, t_now
        cpu = time.process_time() - cpu0
        window_s = args.seconds
        mean_recv, mean_written = last.received / window_s, last.written / window_s
        good = sum(1 for w in write_rates if w >= 0.9 * (args.rate or 1e12))
        results = []
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write("stop\n")
            p.stdin.flush()
            results.append(json.loads(p.stdout.readline()))
        keys = args.senders * args.modules * args.hosts
        latency = wait_final(engine, FINAL_TS, keys, max(r["last_sent"] for r in results))
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("burst\n")
            p.stdin.flush()
        bursts = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
        burst = wait_final(engine, FINAL_TS + 1, keys, max(b["last_sent"] for b in bursts))
        t = server_call_status
        with engine.connect() as conn:
            wrong = conn.execute(
                select(func.count())
                .select_from(t)
                .where((t.c.ts != FINAL_TS + 1) | (t.c.err_cnt != t.c.succ_cnt % 7))
            ).scalar()
        stats = service.stats()
        window = recv_rates[1:] or recv_rates  # the first second ramps up
        wwindow = write_rates[1:] or write_rates
        print(
            f"reporter bench summary: received median {statistics.median(window):,.0f} rows/s "
            f"(min {min(window):,.0f}), written median {statistics.median(wwindow):,.0f} rows/s "
            f"(min {min(wwindow):,.0f}) over {len(recv_rates)} s; mean received "
            f"{mean_recv:,.0f}/s, written {mean_written:,.0f}/s; {good} of "
            f"{len(write_rates)} s written >= 90% of the offered rate; "
            f"sent {sum(r['rows'] for r in results) + keys:,} rows, received {stats.received:,}, "
            f"written {stats.written:,} in {stats.batches:,} batches, coalesced "
            f"{stats.coalesced:,}, dropped {stats.dropped}; max queue {max(depths):,}; "
            f"last report -> table {latency * 1000:.0f} ms (paced final round), "
            f"{burst * 1000:.0f} ms (burst of {keys:,} rows); wrong final rows {wrong}; "
            f"reporter CPU {cpu / args.seconds:.0%} of one core"
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        service.stop()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
