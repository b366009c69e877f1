"""The SQL files shipped in lars/sql agree with the code (the schema's agreement with
lars/db.py is checked on MariaDB in tests/mysql/test_dns_mysql.py)."""

from __future__ import annotations

import re

from lars.routes.demo import DEMO_ROUTES
from lars.sql import demo_sql, schema_sql


def test_the_demo_script_adds_exactly_the_demo_routes() -> None:
    rows = re.findall(r"\((\d+), (\d+), INET_ATON\('([\d.]+)'\), (\d+)\)", demo_sql())
    assert [(int(m), int(c), ip, int(p)) for m, c, ip, p in rows] == list(DEMO_ROUTES)


def test_the_schema_names_its_database_once_each_way() -> None:
    text = schema_sql()
    assert text.count("CREATE DATABASE IF NOT EXISTS lars_dns ") == 1
    assert text.count("USE lars_dns;") == 1
    other = schema_sql("routes")
    assert "lars_dns" not in other.replace("lars_dns schema", "")
