"""Fakes for the guard over time: a clock, a state store that round-trips the bytes, and
a poller built from them (a 'restart' builds a new one from what survives)."""

from __future__ import annotations

from lars.dns.guard import GuardPolicy
from lars.dns.poller import Poller
from lars.routes.guardstate import GuardState, decode, encode
from tests.unit.dns_fakes import FakeAudit, FakeStore, Published


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryState:
    """The database's RouteGuardState row, kept as the encoded bytes (the codec is tested
    on every save); `fail` makes saves fail as a read-only database would."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.saves = 0

    def load(self) -> GuardState | None:
        return None if self.data is None else decode(self.data)

    def save(self, state: GuardState) -> None:
        self.saves += 1
        self.data = encode(state)


class AuditWithIds(FakeAudit):
    """FakeAudit that remembers the id of each hold row."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.hold_ids: list[int] = []

    def record_hold(self, version: int, detail: str) -> int | None:
        hold_id = super().record_hold(version, detail)
        assert hold_id is not None
        self.hold_ids.append(hold_id)
        return hold_id


def poller(
    store: FakeStore,
    audit: FakeAudit | None,
    state: MemoryState | None,
    clock: Clock,
    policy: GuardPolicy | None = None,
) -> tuple[Published, Poller]:
    published = Published()
    p = Poller(
        store,
        published,
        reload_interval=10.0,
        policy=policy,
        audit=audit,
        wall=clock,
        state=state,
    )
    return published, p


def rows(modules: int, hosts: int) -> list[tuple[int, int, int, int]]:
    """`modules` modules (m, 1) of `hosts` hosts each."""
    return [(m, 1, 10_000 * m + h, 80) for m in range(1, modules + 1) for h in range(hosts)]
