"""Initial load of a large route table from MariaDB: time to listening and process RSS.

    python -m benchmarks.dns_initial_load [--rows 100000] [--hosts-per-module 10]

Fills a fresh MariaDB database with `--rows` RouteData rows (modules of
`--hosts-per-module` hosts, addresses spread over the whole IPv4 range), then runs
`DnsService.start()` in a fresh child process and reports the seconds from start() to
listening and the child's peak RSS (VmHWM) with the table loaded, next to the RSS of
the same child before start() (imports only). Targets: < 3 s and < 150 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from sqlalchemy import insert

from benchmarks.dns_common import fresh_mysql_db, machine
from lars.db import route_data, route_version
from lars.dbengine import init_schema, make_engine


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process (ru_maxrss would include the parent's, kept over exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def child(url: str) -> None:
    from lars.dns.service import DnsConfig, DnsService
    from lars.reactor import ReactorConfig

    base_rss = _status_mb("VmRSS")
    config = DnsConfig(db_url=url, reactor=ReactorConfig(ip="127.0.0.1", port=0))
    service = DnsService(config)
    t0 = time.perf_counter()
    service.start()
    seconds = time.perf_counter() - t0
    stats = service.stats()
    # encode every reply once, as serving every module once would
    t1 = time.perf_counter()
    table = service.table
    for key in table:
        table.response(*key)
    encode_all = time.perf_counter() - t1
    rss = _status_mb("VmHWM")
    service.stop()
    print(
        json.dumps(
            {
                "start_to_listen_s": round(seconds, 3),
                "modules": stats.modules,
                "hosts": stats.hosts,
                "encode_all_replies_s": round(encode_all, 3),
                "rss_before_mb": round(base_rss, 1),
                "peak_rss_mb": round(rss, 1),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--hosts-per-module", type=int, default=10)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    before = machine()
    with fresh_mysql_db() as url:
        engine = make_engine(url)
        init_schema(engine)
        rows = [
            {
                "modid": i // args.hosts_per_module + 1,
                "cmdid": 1,
                "serverip": (i * 2654435761) & 0xFFFFFFFF,
                "serverport": 1024 + i % 60000,
            }
            for i in range(args.rows)
        ]
        with engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                conn.execute(insert(route_data), rows[start : start + 10_000])
            conn.execute(insert(route_version).values(id=1, version=int(time.time())))
        engine.dispose()
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.dns_initial_load", "--child", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result.update(rows=args.rows, machine_before=before, machine_after=machine())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
