"""Outage detection and recovery of the route service on MariaDB, through a TCP proxy.

    python -m benchmarks.dns_outage [--freeze 30] [--mode freeze|cut] [--poll-interval 0.1]

A DnsService (in this process) reaches a fresh MariaDB database through
tests.proxy.CuttableProxy; one subscriber holds module (1, 1). The proxy freezes the path
(packets stop, nothing closes) or cuts it (connections dropped, new ones refused) for
`--freeze` seconds; an edit is committed during the outage (directly, not through the
proxy) and another right after it ends. Reported: outage start -> the outage log line,
end -> the push of the edit made during it, and the commit -> push latency of the edit
made right after it, plus the recovery line's duration.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import struct
import time

from sqlalchemy.engine import make_url

from benchmarks.dns_common import fresh_mysql_db, machine
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.protocol import lars_pb2
from lars.reactor import ReactorConfig
from lars.routes.admin import RouteAdmin
from tests.proxy import CuttableProxy

HEADER = struct.Struct("<ii")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((time.monotonic(), record.getMessage()))

    def first(self, text: str) -> tuple[float, str] | None:
        return next(((t, m) for t, m in self.seen if text in m), None)


def read_push(sock: socket.socket, timeout: float) -> float:
    """Block until one GetRouteResponse arrives; return its receipt time."""
    sock.settimeout(timeout)
    head = b""
    while len(head) < 8:
        head += sock.recv(8 - len(head))
    _msgid, n = HEADER.unpack(head)
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return time.monotonic()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freeze", type=float, default=30.0)
    ap.add_argument("--mode", choices=("freeze", "cut"), default="freeze")
    ap.add_argument("--poll-interval", type=float, default=0.1)
    args = ap.parse_args()
    lines = Lines()
    logging.getLogger("lars.dns").addHandler(lines)
    before = machine()
    with fresh_mysql_db() as url:
        direct = make_engine(url)
        init_schema(direct)
        admin = RouteAdmin(direct)
        admin.add_host(1, 1, "10.0.0.1", 80)
        target = make_url(url)
        with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
            via = target.set(host="127.0.0.1", port=proxy.port)
            svc = DnsService(
                DnsConfig(
                    db_url=via.render_as_string(hide_password=False),
                    reactor=ReactorConfig(ip="127.0.0.1", port=0),
                    poll_interval=args.poll_interval,
                )
            )
            svc.start()
            sock = socket.create_connection(("127.0.0.1", svc.port))
            try:
                body = lars_pb2.GetRouteRequest(modid=1, cmdid=1).SerializeToString()
                sock.sendall(HEADER.pack(1, len(body)) + body)
                read_push(sock, 10)
                time.sleep(1.0)
                started = time.monotonic()
                proxy.freeze() if args.mode == "freeze" else proxy.cut()
                time.sleep(1.0)
                admin.add_host(1, 1, "10.0.0.2", 81)  # committed during the outage
                time.sleep(max(0.0, args.freeze - (time.monotonic() - started)))
                proxy.thaw() if args.mode == "freeze" else proxy.restore()
                ended = time.monotonic()
                during_pushed = read_push(sock, 60)
                admin.add_host(1, 1, "10.0.0.3", 82)
                committed = time.monotonic()
                after_pushed = read_push(sock, 60)
                time.sleep(0.5)
            finally:
                sock.close()
                svc.stop()
        direct.dispose()
    logged = lines.first("unavailable")
    recovered = lines.first("reachable again")
    print(
        json.dumps(
            {
                "mode": args.mode,
                "outage_s": args.freeze,
                "poll_interval": args.poll_interval,
                "outage_logged_after_s": round(logged[0] - started, 2) if logged else None,
                "outage_line": logged[1] if logged else None,
                "recovery_line": recovered[1] if recovered else None,
                "edit_during_outage_pushed_after_end_s": round(during_pushed - ended, 3),
                "edit_after_end_commit_to_push_ms": round((after_pushed - committed) * 1000, 1),
                "log_lines": len(lines.seen),
                "machine_before": before,
                "machine_after": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
