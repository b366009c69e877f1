"""`lars dns`, `lars initdb` and `lars route ...`: the route service and its table from a shell.

`lars dns -c lars_dns.conf` reads a Lars configuration file unchanged; flags override it;
with neither it serves `sqlite:///lars.db` (creating the tables if missing). Route edits go
through RouteAdmin, one transaction each, so running route services push them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import insert, select

from lars.config import DEFAULT_DB_URL, IniFile, db_url_from_ini, override
from lars.db import route_version
from lars.dbengine import ensure_database, init_schema, is_sqlite, make_engine, safe_url
from lars.dns import audit_cli, hosts_cli
from lars.dns.admin import RouteAdmin
from lars.dns.service import DnsConfig, DnsService
from lars.errors import NetworkError, StoreUnavailable
from lars.jsonout import add_json_flag, print_json
from lars.obs.dns import dns_metrics_server
from lars.obs.listen import MetricsConfig
from lars.reload import ReloadResult, SignalWaiter, reload_log_level

__all__ = ["DEMO_ROUTES", "register"]

# The rows of lars/sql/demo_routes.sql (`lars sql demo`): (modid, cmdid, ip, port).
DEMO_ROUTES: tuple[tuple[int, int, str, int], ...] = (
    (1, 1, "127.0.0.1", 9101),
    (1, 1, "127.0.0.1", 9102),
    (1, 1, "127.0.0.1", 9103),
    (1, 2, "192.168.1.177", 9000),
    (1, 2, "192.168.1.178", 9000),
    (2, 1, "10.0.0.1", 8080),
)


def register(subparsers: Any) -> None:
    d = DnsConfig()  # the help shows the code's own defaults, so it cannot drift
    p = subparsers.add_parser("dns", help=f"run the route service (TCP {d.reactor.port})")
    _db_args(p)
    p.add_argument("--ip", help=f"listen address ([reactor] ip; default {d.reactor.ip})")
    p.add_argument(
        "--port", type=int, help=f"listen port ([reactor] port; default {d.reactor.port})"
    )
    p.add_argument(
        "--threads",
        type=int,
        help=f"worker loops ([reactor] threadNum; default {d.reactor.threads})",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        help=f"seconds between version polls (default {d.poll_interval:g})",
    )
    p.add_argument(
        "--reload-interval",
        type=float,
        help=f"reload anyway after this many seconds (default {d.reload_interval:g})",
    )
    p.add_argument(
        "--max-drop-ratio",
        type=float,
        help="hold a table that removes more than this share of all hosts "
        f"(default {d.max_drop_ratio:g}; 1 = off)",
    )
    p.add_argument(
        "--metrics", metavar="ADDR:PORT|off",
        help="metrics/health listener ([metrics] listen; default 127.0.0.1:7781)",
    )  # fmt: skip
    p.set_defaults(func=run_dns)

    p = subparsers.add_parser("initdb", help="create the lars_dns tables if missing")
    _db_args(p)
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
    audit_cli.register(sub, _db_args, _engine)  # history, release, status
    hosts_cli.register(sub, _db_args, _host_args, _engine)  # drain, undrain, weight


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FILE", help="a Lars INI file ([mysql] section)")
    p.add_argument("--db", metavar="URL", help=f"database URL (default {DEFAULT_DB_URL})")


def _host_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("modid", metavar="MODID", type=int)
    p.add_argument("cmdid", metavar="CMDID", type=int)
    p.add_argument("ip", metavar="IP", help="dotted IPv4 address")
    p.add_argument("port", metavar="PORT", type=int)


def _db_url(args: argparse.Namespace) -> str:
    return str(args.db or db_url_from_ini(IniFile.load(args.config)))


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[sqlalchemy.Engine]:
    engine = make_engine(_db_url(args))
    try:
        if is_sqlite(engine):
            init_schema(engine)  # the embedded default works from an empty directory
        yield engine
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"route database unavailable: {exc}") from exc
    finally:
        engine.dispose()


def build_dns_config(args: argparse.Namespace, ini: IniFile) -> DnsConfig:
    """Defaults, then the file, then the flags given: at start and on every SIGHUP."""
    base = DnsConfig.from_ini(ini)
    return override(
        base,
        db_url=args.db,
        poll_interval=args.poll_interval,
        reload_interval=args.reload_interval,
        max_drop_ratio=args.max_drop_ratio,
        reactor=override(base.reactor, ip=args.ip, port=args.port, threads=args.threads),
    )


def run_dns(args: argparse.Namespace) -> int:
    ini = IniFile.load(args.config)
    config = build_dns_config(args, ini)
    reload_log_level(ini, flag_given=getattr(args, "log_level_given", False))
    service = DnsService(config)
    listen = MetricsConfig.build("dns", ini, args.metrics, os.environ)
    metrics = dns_metrics_server(service, listen)
    if metrics is not None:
        metrics.start()  # before the first load: /readyz says "not loaded yet" meanwhile

    def reload() -> ReloadResult:
        fresh = IniFile.load(args.config)
        result = service.reload(build_dns_config(args, fresh))
        return result + reload_log_level(fresh, flag_given=getattr(args, "log_level_given", False))

    waiter = SignalWaiter(
        "dns", reload=reload, on_stop=service.request_stop, source=args.config
    )  # on_stop only sets an event: safe inside a signal handler
    try:
        with waiter:
            try:
                service.start()
            except StoreUnavailable:
                if waiter.stopping.is_set():
                    return 0
                raise
            except OSError as exc:
                reactor = config.reactor
                cause = exc.strerror or str(exc)
                raise NetworkError(
                    f"cannot listen on {reactor.ip}:{reactor.port}: {cause}"
                ) from exc
            url = f", metrics {metrics.url}/metrics" if metrics is not None else ""
            print(f"lars dns: listening on port {service.port}{url}", file=sys.stderr, flush=True)
            waiter.wait()
            return 0
    finally:
        service.stop()
        if metrics is not None:
            metrics.stop()


def run_initdb(args: argparse.Namespace) -> int:
    if ensure_database(_db_url(args)):
        print(f"lars initdb: database created at {safe_url(_db_url(args))}")
    with _engine(args) as engine:
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
        entries = RouteAdmin(engine).list_routes(args.modid, args.cmdid)
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
        print(f"pending change: module {modid}/{cmdid} at version {v}")
    return 0
