"""The SQL files shipped inside the package, and `lars sql` to print them.

`lars_dns.sql` is the schema of spec section 5 plus lars's own tables (the same that
lars/db.py creates; tests/mysql/test_dns_mysql.py checks that they agree), and
`demo_routes.sql` the demo routes as a DBA would add them. Shipping them in the wheel
lets a DBA run `lars sql schema | mysql -uroot` without a checkout. Nothing here needs
SQLAlchemy.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_DATABASE", "demo_sql", "register", "schema_sql"]

SCHEMA_DATABASE = "lars_dns"  # the database name the shipped files use
_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def schema_sql(database: str = SCHEMA_DATABASE) -> str:
    """The schema script; `database` replaces lars_dns in its CREATE DATABASE and USE."""
    text = _read("lars_dns.sql")
    if database != SCHEMA_DATABASE:
        _check_name(database)
        text = text.replace(
            f"CREATE DATABASE IF NOT EXISTS {SCHEMA_DATABASE} ",
            f"CREATE DATABASE IF NOT EXISTS `{database}` ",
        ).replace(f"USE {SCHEMA_DATABASE};", f"USE `{database}`;")
    return text


def demo_sql() -> str:
    """The demo routes script (run it in the lars database)."""
    return _read("demo_routes.sql")


def _check_name(database: str) -> None:
    from lars.errors import ValidationError

    if not _NAME.fullmatch(database):
        raise ValidationError(f"database name {database!r}: letters, digits, _ and $ only")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sql",
        help="print the SQL files shipped with lars (schema, demo routes)",
        description="Print a shipped SQL script, e.g. `lars sql schema | mysql -uroot`.",
    )
    sub = p.add_subparsers(dest="sql_command", metavar="FILE", required=True)
    s = sub.add_parser("schema", help="the lars_dns schema (CREATE DATABASE, tables)")
    s.add_argument(
        "--database",
        default=SCHEMA_DATABASE,
        metavar="NAME",
        help="database name in CREATE DATABASE / USE (default %(default)s)",
    )
    s.set_defaults(func=_print_schema)
    d = sub.add_parser("demo", help="the demo routes (RouteData, RouteChange, RouteVersion)")
    d.set_defaults(func=_print_demo)


def _print_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_sql(args.database))
    return 0


def _print_demo(_args: argparse.Namespace) -> int:
    sys.stdout.write(demo_sql())
    return 0
