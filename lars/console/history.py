"""The console's view of RouteAudit: route history, the held table, its release and restore.

Both faces (pages and JSON API) go through `RouteHistory`, so the banner, the history
pages and /api/history cannot disagree. A release is written with the acting admin's name
as actor (an account, a token, or the bootstrap [console] user, default "console"); a
route service holding the table applies it
(the protocol is in lars/routes/audit.py). A restore writes the table the route services
serve back into the database (lars/routes/restore.py). What they serve and hold, and
since when, comes from the guard state they save (RouteGuardState,
lars/routes/guardstate.py): the console never imports lars.dns.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Protocol

from pydantic import BaseModel

from lars.routes.audit import EDIT_ACTIONS, AuditEntry, AuditLog, HoldState, Release
from lars.routes.guardstate import GuardState
from lars.routes.restore import Restored

__all__ = [
    "HISTORY_PAGE",
    "HistoryEntryOut",
    "HoldOut",
    "ReleaseOut",
    "RestoreOut",
    "RouteHistory",
]

HISTORY_PAGE = 50  # entries per page of /history
MODULE_HISTORY = 20  # entries on a module page
MAX_LIMIT = 1000


class Releaser(Protocol):
    """The part of RouteAdmin a release or restore needs, and the saved guard state."""

    def release_hold(self, *, actor: str | None = None, force: bool = False) -> Release: ...
    def restore_served(self, *, actor: str | None = None, force: bool = False) -> Restored: ...
    def guard_state(self) -> GuardState | None: ...


class RouteHistory:
    def __init__(self, audit: AuditLog, releaser: Releaser, user: str) -> None:
        self.audit = audit
        self._releaser = releaser
        self.user = user

    def entries(
        self,
        modid: int | None = None,
        cmdid: int | None = None,
        limit: int = HISTORY_PAGE,
        before: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first; a module's (or modid's) history has its edits only, not the
        table-wide hold/release/apply rows (which carry modid 0 and cmdid 0)."""
        actions = EDIT_ACTIONS if modid is not None or cmdid is not None else None
        return self.audit.history(modid, cmdid, limit=limit, actions=actions, before_id=before)

    def hold(self) -> HoldState | None:
        return self.audit.hold_state()

    def release(self, actor: str | None = None) -> Release:
        """`actor`'s release of the held table (default: the bootstrap admin's name);
        NothingHeld (409) when none is."""
        return self._releaser.release_hold(actor=actor or self.user)

    def restore(self, actor: str | None = None) -> Restored:
        """`actor`'s restore of the served table over the held one; NothingHeld (409)
        when none is held, NoServedTable (409) when no route service saved one."""
        return self._releaser.restore_served(actor=actor or self.user)

    def served(self) -> GuardState | None:
        """What the route services saved: the served table and any held one."""
        return self._releaser.guard_state()


class HistoryEntryOut(BaseModel):
    id: int
    ts: int
    actor: str
    action: str
    modid: int
    cmdid: int
    ip: str
    port: int
    version: int
    detail: str

    @classmethod
    def of(cls, e: AuditEntry) -> HistoryEntryOut:
        return cls(**asdict(e))  # the same fields, by name


class ServedOut(BaseModel):
    """The table the route services serve (the last good one while a table is held)."""

    version: int
    modules: int
    hosts: int
    since: int  # unix seconds it began being served
    saved_at: int  # when a route service last saved it
    writer: str  # which route service


class HeldTableOut(BaseModel):
    """The table the route services hold back (not served)."""

    version: int
    modules: int
    hosts: int
    since: int
    reason: str
    detail: str


class HoldOut(BaseModel):
    """held: the route services keep serving the previous table; `hold` says why.
    `release` is an operator's release written after the hold, not applied yet.
    `served` and `held_table` are what the route services saved (None where none did)."""

    held: bool
    hold: HistoryEntryOut | None
    release: HistoryEntryOut | None
    served: ServedOut | None = None
    held_table: HeldTableOut | None = None

    @classmethod
    def of(cls, state: HoldState | None, guard: GuardState | None = None) -> HoldOut:
        served = held_table = None
        if guard is not None:
            served = ServedOut(
                version=guard.version,
                modules=guard.modules,
                hosts=guard.hosts,
                since=int(guard.since),
                saved_at=int(guard.saved_at),
                writer=guard.writer,
            )
            if guard.held is not None:
                h = guard.held
                held_table = HeldTableOut(
                    version=h.version,
                    modules=h.modules,
                    hosts=h.hosts,
                    since=int(h.since),
                    reason=h.reason,
                    detail=h.detail,
                )
        hold = HistoryEntryOut.of(state.hold) if state is not None else None
        release = HistoryEntryOut.of(state.release) if state and state.release else None
        held = state is not None or held_table is not None
        return cls(held=held, hold=hold, release=release, served=served, held_table=held_table)


class RestoreOut(BaseModel):
    """What a restore wrote (lars/routes/restore.py)."""

    version: int
    served_version: int
    modules: int
    hosts: int
    drained: int
    added: int
    removed: int
    settings: int
    changed_modules: int
    held_version: int | None

    @classmethod
    def of(cls, done: Restored) -> RestoreOut:
        return cls(**asdict(done))


class ReleaseOut(BaseModel):
    release: HistoryEntryOut
    hold: HistoryEntryOut | None

    @classmethod
    def of(cls, done: Release) -> ReleaseOut:
        hold = HistoryEntryOut.of(done.held.hold) if done.held else None
        return cls(release=HistoryEntryOut.of(done.entry), hold=hold)
