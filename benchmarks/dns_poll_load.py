"""Database load added by the route service's polling, when no route changes.

    python -m benchmarks.dns_poll_load [--seconds 10] [--poll-interval 0.1] [--rounds 3]

A DnsService (in this process) polls a fresh MariaDB database with 100 modules and no
edits. Two counts:
- exact: every command PyMySQL sends (COM_QUERY, COM_PING, ...) during the window,
  counted by wrapping `pymysql.connections.Connection._execute_command`;
- server-side: the delta of MariaDB's global `Questions` and `Com_select` over windows
  with the service polling, minus windows of the same length without it (the server is
  shared, so this one is noisy; the median of `--rounds` pairs is reported).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from typing import Any

import pymysql.connections
from sqlalchemy import create_engine, text

from benchmarks.dns_common import DEFAULT_SERVER, fresh_mysql_db, machine
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.reactor import ReactorConfig
from lars.routes.admin import RouteAdmin

MODULES = 100
COMMANDS = {3: "COM_QUERY", 14: "COM_PING", 1: "COM_QUIT", 2: "COM_INIT_DB"}


class CommandCounter:
    """Counts PyMySQL commands while `active` (all threads of this process)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.queries: collections.Counter[str] = collections.Counter()
        self.active = False
        self._real = pymysql.connections.Connection._execute_command

    def install(self) -> None:
        counter, real = self, self._real

        def counted(conn: Any, command: int, sql: Any) -> Any:
            q = sql.decode() if isinstance(sql, bytes) else str(sql)
            if counter.active and not getattr(conn, "lars_bench_status", False):
                counter.counts[COMMANDS.get(command, str(command))] += 1
                if command == 3:
                    counter.queries[" ".join(q.split())[:90]] += 1
            return real(conn, command, sql)

        pymysql.connections.Connection._execute_command = counted  # type: ignore[method-assign]

    def uninstall(self) -> None:
        pymysql.connections.Connection._execute_command = self._real  # type: ignore[method-assign]


def server_status(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        conn.connection.dbapi_connection.lars_bench_status = True  # not counted
        rows = conn.execute(
            text("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_select')")
        ).all()
    return {str(k): int(v) for k, v in rows}


def window(status_engine: Any, seconds: float) -> dict[str, float]:
    before = server_status(status_engine)
    time.sleep(seconds)
    after = server_status(status_engine)
    # minus the SHOW itself (1 question) counted in `after`
    return {k: (after[k] - before[k] - (1 if k == "Questions" else 0)) / seconds for k in after}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    before_machine = machine()
    status_engine = create_engine(DEFAULT_SERVER, pool_size=1)
    counter = CommandCounter()
    with fresh_mysql_db() as url:
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for m in range(1, MODULES + 1):
            admin.add_host(m, 1, "10.0.0.1", 80)
        engine.dispose()
        idle, polling = [], []
        exact: list[float] = []
        counter.install()
        try:
            for _ in range(args.rounds):
                idle.append(window(status_engine, args.seconds))
                svc = DnsService(
                    DnsConfig(
                        db_url=url,
                        reactor=ReactorConfig(ip="127.0.0.1", port=0),
                        poll_interval=args.poll_interval,
                    )
                )
                svc.start()
                try:
                    time.sleep(1.0)  # past the first load and its connection set-up
                    polls_before = svc.stats().poller.polls
                    counter.counts.clear()
                    counter.queries.clear()
                    counter.active = True
                    polling.append(window(status_engine, args.seconds))
                    counter.active = False
                    polls = svc.stats().poller.polls - polls_before
                    exact.append(sum(counter.counts.values()) / args.seconds)
                finally:
                    svc.stop()
        finally:
            counter.uninstall()
    status_engine.dispose()

    def added(key: str) -> float:
        return round(
            statistics.median(p[key] - i[key] for p, i in zip(polling, idle, strict=True)), 1
        )

    print(
        json.dumps(
            {
                "poll_interval": args.poll_interval,
                "seconds": args.seconds,
                "rounds": args.rounds,
                "polls_per_s_last_round": round(polls / args.seconds, 1),
                "client_commands_per_s": [round(x, 1) for x in exact],
                "client_commands_last_round": dict(counter.counts),
                "client_queries_last_round": dict(counter.queries.most_common(5)),
                "server_questions_per_s_added_median": added("Questions"),
                "server_com_select_per_s_added_median": added("Com_select"),
                "server_questions_per_s_idle": [round(i["Questions"], 1) for i in idle],
                "server_questions_per_s_polling": [round(p["Questions"], 1) for p in polling],
                "machine_before": before_machine,
                "machine_after": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
