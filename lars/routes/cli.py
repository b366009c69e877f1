"""`lars initdb` and `lars route ...`: the route table from a shell.

Route edits go through RouteAdmin, one transaction each, so running route services push
them. With no `--db` and no `-c FILE` they use `sqlite:///lars.db`, creating the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import insert, select

from lars.config import DEFAULT_DB_URL, IniFile, db_url_from_ini
from lars.db import route_version
from lars.dbengine import ensure_database, init_schema, is_sqlite, make_engine, safe_url
from lars.dbselect import select_admin_db
from lars.errors import StoreUnavailable
from lars.jsonout import add_json_flag, print_json
from lars.routes import audit_cli, changegc, hosts_cli
from lars.routes.admin import RouteAdmin
from lars.routes.changegc import DEFAULT_RETENTION, MAX_RETENTION, check_retention
from lars.routes.demo import DEMO_ROUTES

__all__ = ["register"]

def register(subparsers: Any) -> None:
    p = subparsers.add_parser("initdb", help="create the lars_dns tables if missing")
    _db_args(p, default=DEFAULT_DB_URL)
    p.add_argument("--demo", action="store_true", help="also add the demo routes")
    p.set_defaults(func=run_initdb)

    route = subparsers.add_parser("route", help="list and edit the route table")
    sub = route.add_subparsers(dest="route_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list hosts, optionally of one module")
    _db_args(p)
    p.add_argument("--modid", type=int)
    p.add_argument("--cmdid", type=int)
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=run_route_list)
    p = sub.add_parser("add", help="add a host to a module")
    _db_args(p)
    _host_args(p)
    p.set_defaults(func=run_route_edit, action="add")
    p = sub.add_parser("del", help="remove a host from a module")
    _db_args(p)
    _host_args(p)
    p.set_defaults(func=run_route_edit, action="del")
    p = sub.add_parser("replace", help="replace a host of a module by another")
    _db_args(p)
    _host_args(p)
    p.add_argument("new_ip", metavar="NEW_IP")
    p.add_argument("new_port", metavar="NEW_PORT", type=int)
    p.set_defaults(func=run_route_edit, action="replace")
    p = sub.add_parser("del-module", help="remove every host of a module")
    _db_args(p)
    p.add_argument("modid", metavar="MODID", type=int)
    p.add_argument("cmdid", metavar="CMDID", type=int)
    p.set_defaults(func=run_route_edit, action="del-module")
    p = sub.add_parser("version", help="show the route version and pending change rows")
    _db_args(p)
    add_json_flag(p)
    p.set_defaults(func=run_route_version)
    p = sub.add_parser(
        "gc",
        help="delete RouteChange rows older than a retention (every edit also does)",
    )
    _db_args(p)
    p.add_argument(
        "--retention",
        type=int,
        default=DEFAULT_RETENTION,
        metavar="SECONDS",
        help=f"keep rows this much older than the route version (0..{MAX_RETENTION}; "
        f"default {DEFAULT_RETENTION})",
    )
    p.set_defaults(func=run_route_gc)
    audit_cli.register(sub, _db_args, _engine)  # history, release, status
    hosts_cli.register(sub, _db_args, _host_args, _engine)  # drain, undrain, weight


def _db_args(p: argparse.ArgumentParser, *, default: str | None = None) -> None:
    p.add_argument("-c", "--config", metavar="FILE", help="a Lars INI file ([mysql] section)")
    where = (
        f"default {default}"
        if default
        else "else -c FILE's [mysql], $LARS_DB, /etc/lars/lars.conf, an existing ./lars.db"
    )
    p.add_argument("--db", metavar="URL", help=f"database URL ({where})")


def _host_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("modid", metavar="MODID", type=int)
    p.add_argument("cmdid", metavar="CMDID", type=int)
    p.add_argument("ip", metavar="IP", help="dotted IPv4 address")
    p.add_argument("port", metavar="PORT", type=int)


def _db_url(args: argparse.Namespace) -> str:
    return str(args.db or db_url_from_ini(IniFile.load(args.config)))


def _admin_db_url(args: argparse.Namespace) -> str:
    """`lars route ...` never guesses a database (lars/dbselect.py); it says which it uses
    when it falls back to an existing ./lars.db."""
    selection = select_admin_db(args.db, args.config, os.environ, Path.cwd())
    if selection.announce:
        print(f"lars route: using {selection.source}", file=sys.stderr)
    return selection.url


@contextmanager
def _engine(args: argparse.Namespace, *, admin: bool = True) -> Iterator[sqlalchemy.Engine]:
    engine = make_engine(_admin_db_url(args) if admin else _db_url(args))
    try:
        if is_sqlite(engine):
            init_schema(engine)  # the embedded default works from an empty directory
        yield engine
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"route database unavailable: {exc}") from exc
    finally:
        engine.dispose()


def run_initdb(args: argparse.Namespace) -> int:
    if ensure_database(_db_url(args)):
        print(f"lars initdb: database created at {safe_url(_db_url(args))}")
    with _engine(args, admin=False) as engine:
        init_schema(engine)
        with engine.begin() as conn:
            if conn.execute(select(route_version.c.id).where(route_version.c.id == 1)).first():
                pass
            else:
                conn.execute(insert(route_version).values(id=1, version=0))
        if args.demo:
            admin = RouteAdmin(engine)
            existing = {(e.modid, e.cmdid, e.ip, e.port) for e in admin.list_routes()}
            for row in DEMO_ROUTES:
                if row not in existing:
                    admin.add_host(*row)
    print(f"lars initdb: schema ready at {safe_url(_db_url(args))}")
    return 0


def run_route_list(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        entries = RouteAdmin(engine).list_routes(args.modid, args.cmdid, registered=True)
    for e in entries:
        if args.json:
            print(json.dumps(hosts_cli.entry_fields(e)))
        else:
            print(hosts_cli.entry_line(e))
    if not args.json:
        print(f"{len(entries)} host(s)", file=sys.stderr)
    return 0


def run_route_edit(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        admin = RouteAdmin(engine)
        if args.action == "add":
            version = admin.add_host(args.modid, args.cmdid, args.ip, args.port)
        elif args.action == "del":
            version = admin.del_host(args.modid, args.cmdid, args.ip, args.port)
        elif args.action == "replace":
            version = admin.replace_host(
                args.modid, args.cmdid, args.ip, args.port, args.new_ip, args.new_port
            )
        else:
            version = admin.del_module(args.modid, args.cmdid)
    print(f"lars route {args.action}: done, route version {version}")
    return 0


def run_route_version(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        admin = RouteAdmin(engine)
        version, pending = admin.current_version(), admin.pending_changes()
    if args.json:
        changes = [{"modid": m, "cmdid": c, "version": v} for m, c, v in pending]
        print_json({"version": version, "pending": changes})
        return 0
    print(f"version {version}")
    for modid, cmdid, v in pending:
        print(f"pending change: module {modid}:{cmdid} at version {v}")
    return 0


def run_route_gc(args: argparse.Namespace) -> int:
    """Trim RouteChange by hand (lars/routes/changegc.py); prints the rows deleted."""
    check_retention(args.retention)  # before touching the database: exit 2
    with _engine(args) as engine:
        deleted = changegc.gc(engine, args.retention)
    print(f"lars route gc: {deleted} RouteChange row(s) deleted (retention {args.retention} s)")
    return 0
