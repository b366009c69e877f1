"""`lars console`: the admin console on its own (it is also part of `lars up`).

The bootstrap admin's password comes from LARS_CONSOLE_PASSWORD or `[console] password` in
the -c file, never from a flag (flags show up in `ps`); without one the console starts only
when the database holds an admin account (`lars console user add NAME --role admin`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lars.config import IniFile, override
from lars.console import accounts_cli
from lars.console.app import build_console
from lars.console.config import PASSWORD_ENV, ConsoleConfig, check_password
from lars.console.server import ConsoleServer
from lars.dbengine import init_schema, is_sqlite, make_engine, safe_url
from lars.reload import ReloadResult, SignalWaiter, diff, reload_log_level, split

__all__ = ["register", "run_console"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "console",
        help="run the admin console (HTTP 7780)",
        description=f"Route administration and host health in a browser. The bootstrap "
        f"admin's password comes from ${PASSWORD_ENV} or [console] password in the config "
        "file; accounts and API tokens: `lars console user|token --help`.",
    )
    p.add_argument("-c", "--config", metavar="FILE", help="a Lars INI file ([console], [mysql])")
    p.add_argument("--db", metavar="URL", help="database URL (default sqlite:///lars.db)")
    p.add_argument("--ip", help="listen address ([console] ip; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port ([console] port; default 7780)")
    p.add_argument("--stale-after", type=float, help="seconds before a report is stale (60)")
    p.set_defaults(func=run_console)
    accounts_cli.register(p)  # `lars console user|token ...`; no subcommand: the server


def _console_config(args: argparse.Namespace, ini: IniFile) -> ConsoleConfig:
    return override(
        ConsoleConfig.from_ini(ini, os.environ),
        db_url=args.db,
        ip=args.ip,
        port=args.port,
        stale_after=args.stale_after,
    )


def run_console(args: argparse.Namespace) -> int:
    config = _console_config(args, IniFile.load(args.config))
    if config.password:  # none: build_console accepts it once an admin account exists
        check_password(config.password)
    engine = make_engine(config.db_url)
    server: ConsoleServer | None = None
    given = getattr(args, "log_level_given", False)
    reload_log_level(IniFile.load(args.config), flag_given=given)

    def reload() -> ReloadResult:  # SIGHUP: the log level; the rest needs a restart
        fresh = IniFile.load(args.config)
        changed = diff(config, _console_config(args, fresh))
        return split(changed, lambda _: False) + reload_log_level(fresh, flag_given=given)

    waiter = SignalWaiter("console", reload=reload, source=args.config)
    try:
        waiter.install()
        if is_sqlite(engine):
            init_schema(engine)  # the embedded default works from an empty directory
        app = build_console(
            engine,
            config.password,
            stale_after=config.stale_after,
            refresh_interval=config.refresh_interval,
            session_ttl=config.session_ttl,
            secure_cookie=config.secure_cookie,
            user=config.user,
        )
        server = ConsoleServer(app, config.ip, config.port)
        server.threads.on_fatal(lambda failure: waiter.fail(failure.describe()))  # exit 1
        server.start()
        print(
            f"lars console: listening on {server.url}, database {safe_url(config.db_url)}",
            file=sys.stderr,
            flush=True,
        )
        if not config.password:
            print(
                f"lars console: no bootstrap password ({PASSWORD_ENV}): log in with an "
                "admin account",
                file=sys.stderr,
                flush=True,
            )
        waiter.wait()
        return 0
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        waiter.restore()
