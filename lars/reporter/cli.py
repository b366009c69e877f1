"""`lars reporter`: run the reporter daemon from a Lars INI file and flags."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from lars.config import IniFile, override
from lars.dbengine import parse_db_url, safe_url
from lars.errors import NetworkError
from lars.obs.listen import MetricsConfig
from lars.reload import ReloadResult, SignalWaiter, reload_log_level, restart_only
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterConfig, ReporterService

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reporter",
        help="store per-host call statistics (TCP 7779)",
        description="Receive ReportStatusRequest over TCP and upsert ServerCallStatus. "
        "Reads a Lars reporter INI file ([reactor], [mysql], [repoter] db_thread_cnt); "
        "flags override it; with neither, SQLite sqlite:///lars.db on port 7779.",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="Lars INI file")
    d = ReporterConfig()  # the help shows the code's own defaults, so it cannot drift
    parser.add_argument("--ip", help=f"listen address (default {d.reactor.ip})")
    parser.add_argument("--port", type=int, help=f"listen port (default {d.reactor.port}; 0 = any)")
    parser.add_argument(
        "--threads", type=int, help=f"reactor worker loops (default {d.reactor.threads})"
    )
    parser.add_argument(
        "--db", metavar="URL", help="database URL (overrides [mysql]; default sqlite:///lars.db)"
    )
    # The old spelling, kept working but no longer shown.
    parser.add_argument("--db-url", dest="db", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--writers", type=int, help=f"writer threads (default {d.writers})")
    parser.add_argument(
        "--batch-rows", type=int, help=f"rows per upsert batch (default {d.batch_rows})"
    )
    parser.add_argument(
        "--batch-ms",
        type=float,
        help=f"max ms to wait to fill a batch (default {d.batch_interval * 1000:g})",
    )
    parser.add_argument(
        "--max-pending", type=int, help=f"pending keys per writer (default {d.max_pending})"
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        help=f"seconds between counter logs (default {d.stats_interval:g}; 0 = never)",
    )
    parser.add_argument(
        "--metrics", metavar="ADDR:PORT|off",
        help="metrics/health listener ([metrics] listen; default 127.0.0.1:7782)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> ReporterConfig:
    config = ReporterConfig.from_ini(IniFile.load(args.config))
    reactor = override(config.reactor, ip=args.ip, port=args.port, threads=args.threads)
    batch_interval = None if args.batch_ms is None else args.batch_ms / 1000
    return override(
        config,
        reactor=reactor,
        db_url=args.db,
        writers=args.writers,
        batch_rows=args.batch_rows,
        batch_interval=batch_interval,
        max_pending=args.max_pending,
        stats_interval=args.stats_interval,
    )


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    parse_db_url(config.db_url)  # a bad URL fails here, before any thread starts
    given = getattr(args, "log_level_given", False)
    ini = IniFile.load(args.config)
    reload_log_level(ini, flag_given=given)
    service = ReporterService(config)
    listen = MetricsConfig.build("reporter", ini, args.metrics, os.environ)

    def reload() -> ReloadResult:
        fresh = IniFile.load(args.config)
        result = service.reload(build_config(args))
        fresh_listen = MetricsConfig.build("reporter", fresh, args.metrics, os.environ)
        result += restart_only("[metrics] listen", listen.url or "off", fresh_listen.url or "off")
        return result + reload_log_level(fresh, flag_given=given)

    metrics = reporter_metrics_server(service, listen)
    try:
        with SignalWaiter("reporter", reload=reload, source=args.config) as waiter:
            service.threads.on_fatal(lambda failure: waiter.fail(failure.describe()))  # exit 1
            if metrics is not None:
                metrics.start()
            try:
                service.start()
            except OSError as exc:
                reactor = config.reactor
                cause = exc.strerror or str(exc)
                raise NetworkError(
                    f"cannot listen on {reactor.ip}:{reactor.port}: {cause}"
                ) from exc
            if metrics is not None:
                log.info("reporter: metrics on %s/metrics", metrics.url)
            # Through logging (not print): under --log-format json every line stays JSON.
            log.info("reporter: database %s", safe_url(config.db_url))
            waiter.wait()
            log.info("reporter: stopping (flushing pending rows)")
    finally:
        service.stop()
        if metrics is not None:
            metrics.stop()
    return 0
