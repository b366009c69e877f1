"""The console's view of RouteAudit: route history, the held table, and its release.

Both faces (pages and JSON API) go through `RouteHistory`, so the banner, the history
pages and /api/history cannot disagree. A release is written with the console user as
actor ([console] user, default "console"); a route service holding the table applies it
(the protocol is in lars/routes/audit.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Protocol

from pydantic import BaseModel

from lars.routes.audit import EDIT_ACTIONS, AuditEntry, AuditLog, HoldState, Release

__all__ = [
    "HISTORY_PAGE",
    "HistoryEntryOut",
    "HoldOut",
    "ReleaseOut",
    "RouteHistory",
]

HISTORY_PAGE = 50  # entries per page of /history
MODULE_HISTORY = 20  # entries on a module page
MAX_LIMIT = 1000


class Releaser(Protocol):
    """The part of RouteAdmin a release needs (current version, the 'release' row)."""

    def release_hold(self, *, actor: str | None = None, force: bool = False) -> Release: ...


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


class HoldOut(BaseModel):
    """held: the route services keep serving the previous table; `hold` says why.
    `release` is an operator's release written after the hold, not applied yet."""

    held: bool
    hold: HistoryEntryOut | None
    release: HistoryEntryOut | None

    @classmethod
    def of(cls, state: HoldState | None) -> HoldOut:
        if state is None:
            return cls(held=False, hold=None, release=None)
        release = HistoryEntryOut.of(state.release) if state.release else None
        return cls(held=True, hold=HistoryEntryOut.of(state.hold), release=release)


class ReleaseOut(BaseModel):
    release: HistoryEntryOut
    hold: HistoryEntryOut | None

    @classmethod
    def of(cls, done: Release) -> ReleaseOut:
        hold = HistoryEntryOut.of(done.held.hold) if done.held else None
        return cls(release=HistoryEntryOut.of(done.entry), hold=hold)
