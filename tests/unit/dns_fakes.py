"""Fakes for the poller's collaborators: a store and a RouteAudit in memory."""

from __future__ import annotations

from collections.abc import Sequence

from lars.dns.guard import GuardPolicy
from lars.dns.poller import Poller
from lars.dns.store import ChangeRow, PollMark, Snapshot
from lars.dns.table import Key, RouteTable, changed_modules
from lars.errors import StoreUnavailable
from lars.routes.audit import AuditEntry


class FakeStore:
    """RouteVersion, RouteData and RouteChange; `rowid_reuse` mimics SQLite's ids."""

    def __init__(self) -> None:
        self.version = 1
        self.routes: list[tuple[int, int, int, int]] = [(1, 1, 10, 80)]
        self.changes: list[ChangeRow] = []
        self.deleted: list[int] = []
        self.releases: list[int] = []  # ids of 'release' audit rows
        self.loads = 0
        self.polls = 0
        self.fail = False
        self._next_id = 1
        self.rowid_reuse = False

    def add_change(self, modid: int, cmdid: int, version: int) -> int:
        """A RouteChange row as a DBA inserts it (auto-increment id)."""
        if self.rowid_reuse:  # SQLite without AUTOINCREMENT: max(rowid) + 1
            new_id = max((c.id for c in self.changes), default=0) + 1
        else:
            new_id, self._next_id = self._next_id, self._next_id + 1
        self.changes.append(ChangeRow(new_id, modid, cmdid, version))
        return new_id

    def poll(self, release_after: int | None = None) -> PollMark:
        if self.fail:
            raise StoreUnavailable("OperationalError: connection refused")
        self.polls += 1
        release = None
        if release_after is not None:
            release = max((i for i in self.releases if i > release_after), default=None)
        return PollMark(self.version, max((c.id for c in self.changes), default=None), release)

    def load(self, after: int | None = None) -> Snapshot:
        if self.fail:
            raise StoreUnavailable("OperationalError: connection refused")
        self.loads += 1
        floor = -1 if after is None else after
        read = [c for c in self.changes if c.version <= self.version and c.id > floor]
        return Snapshot(
            self.version,
            list(self.routes),
            read,
            max((c.id for c in self.changes if c not in read), default=None),
            change_max=max((c.id for c in self.changes), default=None),
        )

    def delete_changes(self, ids: Sequence[int]) -> int:
        self.deleted.extend(ids)
        self.changes = [c for c in self.changes if c.id not in ids]
        return len(ids)


class FakeAudit:
    """The route service's RouteAudit calls, recorded; ids shared with FakeStore.releases."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.rows: list[tuple[str, int, str]] = []  # (action, version, detail)
        self.sql: list[tuple[int, int, set[Key]]] = []  # (old version, new version, modules)
        self.next_id = 100
        self.release_actor = "cli:alice"
        self.active: AuditEntry | None = None  # a hold in force when the service starts

    def active_hold(self) -> AuditEntry | None:
        return self.active

    def record_hold(self, version: int, detail: str) -> int | None:
        self.rows.append(("hold", version, detail))
        self.next_id += 1
        return self.next_id

    def release(self) -> int:
        """An operator's `lars route release`."""
        self.next_id += 1
        self.store.releases.append(self.next_id)
        return self.next_id

    def release_after(self, hold_id: int) -> AuditEntry | None:
        ids = [i for i in self.store.releases if i > hold_id]
        if not ids:
            return None
        return AuditEntry(max(ids), 0, self.release_actor, "release", 0, 0, "0.0.0.0", 0, 0, "")

    def record_apply(self, version: int, detail: str) -> None:
        self.rows.append(("apply", version, detail))

    def record_sql_edits(self, old: RouteTable, new: RouteTable, changed: set[Key]) -> int:
        assert changed == changed_modules(old, new)
        if changed:
            self.sql.append((old.version, new.version, set(changed)))
        return len(changed)


class Published:
    def __init__(self) -> None:
        self.calls: list[tuple[RouteTable, set[Key]]] = []

    def __call__(self, table: RouteTable, changed: set[Key]) -> None:
        self.calls.append((table, set(changed)))

    @property
    def table(self) -> RouteTable:
        return self.calls[-1][0]


def make(
    reload_interval: float = 10.0, policy: GuardPolicy | None = None, audit: bool = False
) -> tuple[FakeStore, Published, Poller]:
    store, published = FakeStore(), Published()
    poller = Poller(
        store,
        published,
        reload_interval=reload_interval,
        policy=policy,
        audit=FakeAudit(store) if audit else None,
        wall=lambda: 1_700_000_000.0,
    )
    return store, published, poller


def rows(spec: dict[Key, int], base_ip: int = 1000) -> list[tuple[int, int, int, int]]:
    """RouteData rows: `n` hosts for each module of `spec`."""
    return [(m, c, base_ip + i, 80) for (m, c), n in spec.items() for i in range(n)]
