"""The demo routes point at ports nothing in `lars up` listens on.

They were 127.0.0.1:7777-7779: the route service's and reporter's own ports, so a demo
call "to a host" reached a Lars daemon.
"""

from __future__ import annotations

import re
from pathlib import Path

from lars.agent.config import DEFAULT_BASE_PORT
from lars.console.config import DEFAULT_PORT as CONSOLE_PORT
from lars.dns.service import DEFAULT_PORT as DNS_PORT
from lars.reporter.config import DEFAULT_PORT as REPORTER_PORT
from lars.routes.demo import DEMO_ROUTES

ROOT = Path(__file__).resolve().parents[2]
# Every port `lars up` and the daemons use by default, the metrics listeners included.
LARS_PORTS = {DNS_PORT, REPORTER_PORT, CONSOLE_PORT, *range(7781, 7787),
              *range(DEFAULT_BASE_PORT, DEFAULT_BASE_PORT + 3)}  # fmt: skip


def demo_sql() -> str:
    (path,) = [p for p in (ROOT / "sql", ROOT / "lars" / "sql") if (p / "demo_routes.sql").exists()]
    return (path / "demo_routes.sql").read_text()


def test_demo_hosts_are_not_lars_ports() -> None:
    local = [port for _, _, ip, port in DEMO_ROUTES if ip.startswith("127.")]
    assert len(local) == 3
    assert [port for port in local if port in LARS_PORTS or port == 7777] == []


def test_the_sql_file_has_the_same_rows() -> None:
    rows = re.findall(r"\((\d+), (\d+), INET_ATON\('([\d.]+)'\), (\d+)\)", demo_sql())
    assert [(int(m), int(c), ip, int(p)) for m, c, ip, p in rows] == list(DEMO_ROUTES)
