"""The replica lag the push path adds (issue 22 item 3): an edit committed on the primary
-> its push by a route service that reads a replica, against one that reads the primary,
in one run.

    python -m benchmarks.replica_push_lag [--edits 50] [--modules 100] [--gap 0.2]
                                          [--poll-interval 0.1]

Starts a private MariaDB primary and GTID replica (tests/mysql/replica.py: temp datadirs,
free ports; never the machine's own server), a table of `--modules` modules of one host,
and two `lars dns` processes: A reads the primary (and writes it: it cleans RouteChange),
B reads the replica as the SELECT-only `reader` (writes nothing). One subscriber
connection to each subscribes to every module. Then `--edits` edits are made through
RouteAdmin on the primary, one module each, `--gap` seconds apart with jitter. For each
edit: the time from the commit to the push received from A, from B, and B - A (the lag
the replica adds, the same edit, the same moment). Figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.dns_common import DnsProcess, free_port, machine, percentile
from lars.dbengine import init_schema, make_engine
from lars.protocol import lars_pb2
from lars.routes.admin import RouteAdmin
from tests.mysql.replica import MariaPair

HEADER = struct.Struct("<ii")
DB = "lars_lag"


class Subscriber:
    """One blocking connection subscribed to every module; a thread records, per
    (module, host count), when the first answer with that many hosts arrived."""

    def __init__(self, port: int, modules: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.seen: dict[tuple[int, int], float] = {}
        self._stop = False
        for m in range(1, modules + 1):
            body = lars_pb2.GetRouteRequest(modid=m, cmdid=1).SerializeToString()
            self.sock.sendall(HEADER.pack(1, len(body)) + body)
        self.thread = threading.Thread(target=self._run, name="lag-subscriber", daemon=True)
        self.thread.start()

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _run(self) -> None:
        self.sock.settimeout(0.5)
        while not self._stop:
            try:
                _msgid, n = HEADER.unpack(self._exact(8))
                msg = lars_pb2.GetRouteResponse.FromString(self._exact(n) if n else b"")
            except TimeoutError:
                continue
            except (ConnectionError, OSError):
                return
            self.seen.setdefault((msg.modid, len(msg.host)), time.monotonic())

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=50)
    ap.add_argument("--modules", type=int, default=100)
    ap.add_argument("--gap", type=float, default=0.2)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MariaPair.start(Path(tmp)) as pair:
        pair.primary.execute(f"CREATE DATABASE {DB}")
        engine = make_engine(pair.primary_url(DB))
        init_schema(engine)
        admin = RouteAdmin(engine, actor="bench")
        for m in range(1, args.modules + 1):
            admin.add_host(m, 1, "10.0.0.1", 9000)
        pair.sync()
        common = ["--ip", "127.0.0.1", "--snapshot", "off", "--metrics", "off",
                  "--poll-interval", str(args.poll_interval)]  # fmt: skip
        a = DnsProcess(["--db", pair.primary_url(DB), "--port", str(free_port()), *common])
        b = DnsProcess(["--db", pair.replica_url(DB), "--port", str(free_port()), *common])
        subs = [Subscriber(a.port, args.modules), Subscriber(b.port, args.modules)]
        try:
            time.sleep(1.0)  # the first answers
            rng = random.Random(1)
            hosts = dict.fromkeys(range(1, args.modules + 1), 1)
            commits: list[tuple[int, int, float]] = []
            for i in range(args.edits):
                m = rng.randint(1, args.modules)
                admin.add_host(m, 1, f"10.1.{i // 250}.{i % 250 + 1}", 9000)
                commits.append((m, hosts[m] + 1, time.monotonic()))
                hosts[m] += 1
                time.sleep(args.gap * rng.uniform(0.5, 1.5))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(
                (m, n) in s.seen for s in subs for m, n, _ in commits
            ):
                time.sleep(0.05)
        finally:
            for s in subs:
                s.close()
            a.stop()
            b.stop()
            engine.dispose()
    via_primary: list[float] = []
    via_replica: list[float] = []
    added: list[float] = []
    missing = 0
    for m, n, t in commits:
        ta, tb = subs[0].seen.get((m, n)), subs[1].seen.get((m, n))
        if ta is None or tb is None:
            missing += 1
            continue
        via_primary.append((ta - t) * 1000)
        via_replica.append((tb - t) * 1000)
        added.append((tb - ta) * 1000)
    print(machine())
    print(f"edits {args.edits}, modules {args.modules}, poll {args.poll_interval} s, "
          f"missing {missing}")  # fmt: skip
    for name, values in (("reads the primary", via_primary), ("reads the replica", via_replica),
                         ("replica - primary (same edit)", added)):  # fmt: skip
        print(
            f"{name}: p50 {percentile(values, 50):.1f} p90 {percentile(values, 90):.1f} "
            f"p99 {percentile(values, 99):.1f} max {max(values, default=float('nan')):.1f} "
            f"mean {sum(values) / max(1, len(values)):.1f} ms"
        )


if __name__ == "__main__":
    main()
