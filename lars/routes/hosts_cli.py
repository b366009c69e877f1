"""`lars route drain|undrain|weight`: per-host settings (RouteHostMeta) from a shell.

Each is one RouteAdmin edit (one transaction with a version bump, a RouteChange row and
an audit row by `cli:<os user>`), so running route services push it within a poll:
a drained host leaves every agent's answers, original agents included; a weight reaches
lars agents (original ones ignore it). `lars route list` shows weight, state and note
of the hosts that have any.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy

from lars.protocol.weight import MAX_WEIGHT
from lars.routes.admin import RouteAdmin, RouteEntry

__all__ = ["entry_fields", "entry_line", "register"]

DbArgs = Callable[[argparse.ArgumentParser], None]
Engine = Callable[[argparse.Namespace], AbstractContextManager[sqlalchemy.Engine]]


def register(sub: Any, db_args: DbArgs, host_args: DbArgs, engine: Engine) -> None:
    """Add the three actions to `lars route`'s subparsers."""

    def run(args: argparse.Namespace) -> int:
        with engine(args) as eng:
            admin = RouteAdmin(eng)
            host = (args.modid, args.cmdid, args.ip, args.port)
            if args.action == "drain":
                version = admin.drain(*host, note=args.note, force=args.force)
            elif args.action == "undrain":
                version = admin.undrain(*host, note=args.note)
            else:
                version = admin.set_weight(*host, args.weight, note=args.note)
        print(f"lars route {args.action}: done, route version {version}")
        return 0

    p = sub.add_parser(
        "drain",
        help="stop serving a host without deleting it (every agent, within one push)",
        description="Leave the host out of every route reply and push (RouteData keeps its "
        "row). Draining the last enabled host of a module is refused without --force.",
    )
    db_args(p)
    host_args(p)
    p.add_argument("--note", help="why (shown by `lars route list` and the console)")
    p.add_argument("--force", action="store_true", help="drain even the module's last enabled host")
    p.set_defaults(func=run, action="drain")
    p = sub.add_parser("undrain", help="serve a drained host again (fresh state at the agents)")
    db_args(p)
    host_args(p)
    p.add_argument("--note", help="replace the host's note")
    p.set_defaults(func=run, action="undrain", force=False)
    p = sub.add_parser(
        "weight",
        help=f"set a host's weight, 1..{MAX_WEIGHT} (default 1; lars agents only)",
        description=f"The host gets WEIGHT / (sum of the module's idle weights) of a lars "
        f"agent's answers. 1..{MAX_WEIGHT}; 0 is refused: drain the host instead.",
    )
    db_args(p)
    host_args(p)
    p.add_argument("weight", metavar="WEIGHT", type=int)
    p.add_argument("--note", help="why")
    p.set_defaults(func=run, action="weight", force=False)


def entry_fields(e: RouteEntry) -> dict[str, object]:
    """One host as `lars route list --json` prints it: every RouteEntry field."""
    return dataclasses.asdict(e)


def entry_line(e: RouteEntry) -> str:
    """One host as `lars route list` prints it: the four original columns (a static host
    with the default settings prints exactly as before), then, for a registered host (or
    a static one an agent registered too), `registered by AGENT CHECK STATE since WHEN`,
    and for a weighted, drained or annotated host, its weight, state and note."""
    line = f"{e.modid}\t{e.cmdid}\t{e.ip}\t{e.port}"
    if e.agent:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.since))
        line += f"\t{e.source}, registered by {e.agent} check {e.check} {e.state.upper()}"
        line += f" since {when} UTC"
    if e.weight == 1 and e.enabled and not e.note:
        return line
    state = "enabled"
    if not e.enabled:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.updated_at))
        state = f"DRAINED by {e.updated_by or '?'} at {when} UTC"
    note = f"\t{e.note}" if e.note else ""
    return f"{line}\tweight {e.weight}\t{state}{note}"
