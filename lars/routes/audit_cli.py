"""`lars route history`, `release`, `restore` and `status`: the audit log and holds from a shell.

History reads RouteAudit newest first. Release writes the operator's 'release' row (actor
`cli:<os user>`) that a route service holding a table waits for (lars/routes/audit.py); it
refuses when nothing is held, so a stray release cannot pre-approve a future hold, unless
--force. Restore goes the other way: it writes the table the route services serve back
into RouteData and RouteHostMeta (lars/routes/restore.py), also refused with nothing held
unless --force. Status shows the truth the route services saved (RouteGuardState): what
they serve, what they hold, since when.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy

from lars.errors import ValidationError
from lars.routes.admin import RouteAdmin, validate_ids
from lars.routes.audit import (
    EDIT_ACTIONS,
    MAX_ENTRY_ID,
    AuditEntry,
    HoldState,
    NothingHeld,
    cli_actor,
)
from lars.routes.guardstate import GuardState, read_state

__all__ = ["format_entry", "register"]

EngineOf = Callable[[argparse.Namespace], AbstractContextManager[sqlalchemy.Engine]]
MAX_LIMIT = 100_000


def register(
    sub: Any, db_args: Callable[[argparse.ArgumentParser], None], engine_of: EngineOf
) -> None:
    """Add the subcommands to `lars route` (`sub`); `engine_of(args)` opens the database."""
    p = sub.add_parser("history", help="who changed which route and when (newest first)")
    db_args(p)
    p.add_argument("modid", metavar="MODID", type=int, nargs="?", help="only this modid")
    p.add_argument("cmdid", metavar="CMDID", type=int, nargs="?", help="only this module")
    p.add_argument("--limit", type=int, default=50, help="at most this many entries (50)")
    p.add_argument("--before", type=int, metavar="ID", help="only entries older than this id")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=lambda args: run_history(args, engine_of))
    p = sub.add_parser("release", help="let the route services apply a held route table")
    db_args(p)
    p.add_argument("--force", action="store_true", help="write a release even if none is held")
    p.set_defaults(func=lambda args: run_release(args, engine_of))
    p = sub.add_parser(
        "restore", help="write the table the route services serve back over a held one"
    )
    db_args(p)
    p.add_argument("--force", action="store_true", help="restore even if nothing is held")
    p.set_defaults(func=lambda args: run_restore(args, engine_of))
    p = sub.add_parser("status", help="route version, pending changes and any held table")
    db_args(p)
    p.set_defaults(func=lambda args: run_status(args, engine_of))


def utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def format_entry(e: AuditEntry) -> str:
    host = f"{e.ip}:{e.port}" if e.port else "-"
    return "\t".join(
        (
            str(e.id),
            utc(e.ts),
            e.actor,
            e.action,
            f"{e.modid}:{e.cmdid}",
            host,
            str(e.version),
            e.detail,
        )
    )


def entry_json(e: AuditEntry) -> dict[str, object]:
    """One entry as `lars route history --json` prints it: every AuditEntry field."""
    return dataclasses.asdict(e)


def run_history(args: argparse.Namespace, engine_of: EngineOf) -> int:
    if args.modid is not None:
        validate_ids(args.modid, args.cmdid if args.cmdid is not None else 0)
    if not 1 <= args.limit <= MAX_LIMIT:
        raise ValidationError(f"--limit must be in 1..{MAX_LIMIT}, got {args.limit}")
    if args.before is not None and not 1 <= args.before <= MAX_ENTRY_ID:
        raise ValidationError(f"--before must be an entry id in 1..{MAX_ENTRY_ID}")
    with engine_of(args) as engine:
        audit = RouteAdmin(engine).audit
        if not audit.available():
            print(
                "no RouteAudit table: nothing is audited here (`lars initdb` creates it)",
                file=sys.stderr,
            )
            return 0
        actions = EDIT_ACTIONS if args.modid is not None else None  # holds are table-wide
        entries = audit.history(
            args.modid, args.cmdid, limit=args.limit, actions=actions, before_id=args.before
        )
    for e in entries:
        print(json.dumps(entry_json(e)) if args.json else format_entry(e))
    if not args.json:
        print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", file=sys.stderr)
    return 0


def describe_hold(held: HoldState) -> str:
    text = f"route table held since {utc(held.hold.ts)} at version {held.hold.version}: "
    text += held.hold.detail or "(no detail)"
    if held.release is not None:
        text += (
            f"\nrelease #{held.release.id} asked by {held.release.actor} at "
            f"{utc(held.release.ts)}, not applied yet"
        )
    return text


def run_release(args: argparse.Namespace, engine_of: EngineOf) -> int:
    with engine_of(args) as engine:
        try:
            done = RouteAdmin(engine, actor=cli_actor()).release_hold(force=args.force)
        except NothingHeld as exc:
            raise NothingHeld(f"{exc} (--force writes a release row anyway)") from exc
    r = done.entry
    if done.repeated and done.held is not None:  # idempotent: one release row per hold
        print(
            f"lars route release: hold #{done.held.hold.id} was already released: release "
            f"#{r.id} by {r.actor} at {utc(r.ts)} (version {r.version}); nothing written"
        )
        return 0
    if done.held is not None:
        print(describe_hold(done.held))
    print(
        f"lars route release: release #{r.id} written by {r.actor} at version {r.version}; "
        "a route service holding the table applies it within a poll interval"
    )
    return 0


def run_restore(args: argparse.Namespace, engine_of: EngineOf) -> int:
    with engine_of(args) as engine:
        try:
            done = RouteAdmin(engine, actor=cli_actor()).restore_served(force=args.force)
        except NothingHeld as exc:
            raise NothingHeld(f"{exc} (--force restores the served table anyway)") from exc
    undid = (
        f"; undid the hold of version {done.held_version}"
        if done.held_version is not None
        else "; nothing was held (--force)"
    )
    print(
        f"lars route restore: route version {done.version}: {done.modules} modules, "
        f"{done.hosts} hosts (the served table of version {done.served_version}"
        f"{f', {done.drained} drained' if done.drained else ''}){undid}; {done.added} rows "
        f"added, {done.removed} removed, {done.settings} host settings reset in "
        f"{done.changed_modules} modules; the route services load it within a poll interval"
    )
    return 0


def describe_served(state: GuardState) -> list[str]:
    """What the route services saved: served table, and the held one."""
    lines = [
        f"served: version {state.version}, {state.modules} modules, {state.hosts} hosts, "
        f"since {utc(int(state.since))} (saved {utc(int(state.saved_at))} by {state.writer})"
    ]
    held = state.held
    if held is not None:
        lines.append(
            f"held: version {held.version}, {held.modules} modules, {held.hosts} hosts, "
            f"since {utc(int(held.since))}: {held.detail or held.reason}"
        )
    return lines


def run_status(args: argparse.Namespace, engine_of: EngineOf) -> int:
    with engine_of(args) as engine:
        admin = RouteAdmin(engine)
        version, pending = admin.current_version(), admin.pending_changes()
        audited = admin.audit.available()
        held = admin.audit.hold_state() if audited else None
        try:
            state = read_state(engine)
        except ValueError:
            state = None
    print(f"version {version}")
    print(f"pending changes: {len(pending)}")
    if state is not None:
        for line in describe_served(state):
            print(line)
    else:
        print("served: not recorded (no route service has saved its guard state here)")
    if not audited:
        print("audit: no RouteAudit table (an original Lars database); holds not recorded")
    elif held is None and (state is None or state.held is None):
        print("hold: none (the route services serve the current table)")
    elif held is not None:
        print(f"hold: {describe_hold(held)}")
    else:
        print("hold: the route services hold a table (see held:)")
    return 0
