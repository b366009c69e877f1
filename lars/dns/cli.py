"""`lars dns`: the route service from a shell.

`lars dns -c lars_dns.conf` reads a Lars configuration file unchanged; flags override it;
with neither it serves `sqlite:///lars.db` (creating the tables if missing).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lars.config import DEFAULT_DB_URL, IniFile, override
from lars.dbengine import init_schema, is_sqlite, make_engine, safe_url
from lars.dns.metrics import dns_metrics_server
from lars.dns.processes import (
    ProcessGroup,
    announce_ready,
    die_with_parent,
    group_spec,
    process_of,
)
from lars.dns.service import DEFAULT_SNAPSHOT, DnsConfig, DnsService, snapshot_setting
from lars.errors import NetworkError, StoreUnavailable
from lars.obs.listen import MetricsConfig
from lars.reload import ReloadResult, SignalWaiter, reload_log_level, restart_only

__all__ = ["register"]


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
        "--guard-window",
        type=float,
        metavar="SECONDS",
        help="hold a table that loses more than max_drop_ratio of the hosts each module had "
        f"within this many seconds (default {d.guard_window:g}; 0 = only against the "
        "previous table)",
    )
    p.add_argument(
        "--snapshot",
        metavar="FILE|off",
        help="the guard's local snapshot file ([dns] snapshot; default "
        f"{DEFAULT_SNAPSHOT} in the working directory)",
    )
    p.add_argument(
        "--write-db",
        metavar="URL",
        help="where this route service writes (holds, guard state, audit, registrations; "
        "[dns] write_db; default: --db). Give the primary when --db is a replica or a "
        "SELECT-only user; restart-only",
    )
    p.add_argument(
        "--clean-changes",
        choices=("auto", "on", "off"),
        help="delete the RouteChange rows pushed, as the original lars_dns does ([dns] "
        "clean_changes; default auto: when this service may write)",
    )
    p.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="run N route services sharing the port (SO_REUSEPORT), each pushing to its "
        "share of the agents ([dns] processes; default 1; Linux; restart-only)",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        default=None,
        help="let other processes listen on the same port ([reactor] reuse_port; set by "
        "--processes for its children)",
    )
    p.add_argument(
        "--metrics", metavar="ADDR:PORT|off",
        help="metrics/health listener ([metrics] listen; default 127.0.0.1:7781)",
    )  # fmt: skip
    p.set_defaults(func=run_dns)


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FILE", help="a Lars INI file ([mysql] section)")
    p.add_argument("--db", metavar="URL", help=f"database URL (default {DEFAULT_DB_URL})")


def build_dns_config(args: argparse.Namespace, ini: IniFile) -> DnsConfig:
    """Defaults, then the file, then the flags given: at start and on every SIGHUP."""
    base = DnsConfig.from_ini(ini)
    return override(
        base,
        db_url=args.db,
        poll_interval=args.poll_interval,
        reload_interval=args.reload_interval,
        max_drop_ratio=args.max_drop_ratio,
        guard_window=args.guard_window,
        snapshot=None if args.snapshot is None else snapshot_setting(args.snapshot),
        write_db=args.write_db,
        clean_changes=args.clean_changes,
        processes=args.processes,
        reactor=override(
            base.reactor,
            ip=args.ip,
            port=args.port,
            threads=args.threads,
            reuse_port=args.reuse_port,
        ),
    )


def run_dns(args: argparse.Namespace) -> int:
    ini = IniFile.load(args.config)
    config = build_dns_config(args, ini)
    reload_log_level(ini, flag_given=getattr(args, "log_level_given", False))
    listen = MetricsConfig.build("dns", ini, args.metrics, os.environ)
    if config.processes > 1:
        return run_group(args, config, listen)
    die_with_parent(os.environ)  # a child of `lars dns --processes N`: not outlive it
    service = DnsService(config)
    metrics = dns_metrics_server(service, listen, process=process_of(os.environ))
    if metrics is not None:
        metrics.start()  # before the first load: /readyz says "not loaded yet" meanwhile

    def reload() -> ReloadResult:
        fresh = IniFile.load(args.config)
        result = service.reload(build_dns_config(args, fresh))
        fresh_listen = MetricsConfig.build("dns", fresh, args.metrics, os.environ)
        result += restart_only("[metrics] listen", listen.url or "off", fresh_listen.url or "off")
        return result + reload_log_level(fresh, flag_given=getattr(args, "log_level_given", False))

    waiter = SignalWaiter(
        "dns", reload=reload, on_stop=service.request_stop, source=args.config
    )  # on_stop only sets an event: safe inside a signal handler
    service.threads.on_fatal(lambda failure: waiter.fail(failure.describe()))  # exit 1
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
            writes = f", writes to {safe_url(config.write_db)}" if config.write_db else ""
            print(
                f"lars dns: listening on port {service.port}{url}, "
                f"database {safe_url(config.db_url)}{writes}",
                file=sys.stderr,
                flush=True,
            )
            announce_ready(os.environ)
            waiter.wait()
            return 0
    finally:
        service.stop()
        if metrics is not None:
            metrics.stop()


def _create_embedded_schema(url: str) -> None:
    """An SQLite file gets its tables here once: N children creating them at the same
    moment would race (each logs 'table already exists')."""
    engine = make_engine(url)
    try:
        if is_sqlite(engine):
            init_schema(engine)
    finally:
        engine.dispose()


def run_group(args: argparse.Namespace, config: DnsConfig, listen: MetricsConfig) -> int:
    """`lars dns --processes N`: start N children sharing the port, keep them running
    (lars.dns.processes); SIGHUP reaches every child, SIGTERM stops them all."""
    reactor = config.reactor
    spec = group_spec(args.argv, reactor.ip, reactor.port, listen.listen)
    group = ProcessGroup(spec, config.processes)

    def reload() -> ReloadResult:
        group.reload()  # first: each child applies and logs its own settings (a bad file too)
        fresh = build_dns_config(args, IniFile.load(args.config))
        return restart_only("[dns] processes", config.processes, fresh.processes)

    waiter = SignalWaiter("dns", reload=reload, on_stop=group.request_stop, source=args.config)
    _create_embedded_schema(config.write_db or config.db_url)
    try:
        with waiter:
            try:
                group.start()
            except NetworkError:
                if waiter.stopping.is_set():
                    return 0
                raise
            writes = f", writes to {safe_url(config.write_db)}" if config.write_db else ""
            print(
                f"lars dns: listening on port {spec.port} with {config.processes} processes "
                f"(pids {', '.join(map(str, group.pids))}), database "
                f"{safe_url(config.db_url)}{writes}",
                file=sys.stderr,
                flush=True,
            )
            waiter.wait()
            return 0
    finally:
        group.stop()
