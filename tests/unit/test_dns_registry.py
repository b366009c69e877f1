"""Registry.flush with a fake store and a fake clock (no thread, no database): what is
written when, what a failure keeps, the capability rule, and the poller nudge."""

from __future__ import annotations

from lars.dns.instances import Instance
from lars.dns.leases import Batch
from lars.dns.registry import Registry
from lars.dns.regstore import WriteResult
from lars.errors import StoreUnavailable

A = [Instance(1, 1, 10, 80)]


class FakeStore:
    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.batches: list[Batch] = []
        self.fail = False
        self.renewed = 0

    def available(self) -> bool:
        return self.present

    def write(self, batch: Batch, now: int, lease: float) -> WriteResult:
        if self.fail:
            raise StoreUnavailable("OperationalError: gone")
        self.batches.append(batch)
        return WriteResult(registered=sum(len(s) for s in batch.changes.values()),
                           renewed=self.renewed)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def registry(store: FakeStore, **kw: object) -> tuple[Registry, Clock, list[int]]:
    clock = Clock()
    nudges: list[int] = []
    reg = Registry(store, lease=10.0, clock=clock, wall=clock,  # type: ignore[arg-type]
                   on_change=lambda: nudges.append(1), **kw)  # type: ignore[arg-type]  # fmt: skip
    reg.check_presence()
    return reg, clock, nudges


def test_a_change_is_written_at_once_and_nudges_the_poller() -> None:
    store = FakeStore()
    reg, _clock, nudges = registry(store)
    assert reg.accepting()
    reg.submit("a", A)
    result = reg.flush()
    assert result is not None and result.registered == 1 and nudges == [1]
    assert store.batches[0].changes == {"a": frozenset(A)}


def test_renewals_are_written_at_most_once_a_second() -> None:
    store = FakeStore()
    reg, clock, nudges = registry(store)
    reg.submit("a", A)
    reg.flush()
    store.renewed = 1
    writes = len(store.batches)
    for _ in range(25):  # 2.5 s of syncs every 0.1 s
        clock.now += 0.1
        reg.submit("a", A)
        reg.flush()
    renewals = [b for b in store.batches[writes:] if b.renewals]
    assert 2 <= len(renewals) <= 3 and nudges == [1]  # renewals move no mark


def test_a_failed_write_keeps_the_sync_for_the_next_attempt() -> None:
    store = FakeStore()
    reg, clock, _ = registry(store)
    store.fail = True
    reg.submit("a", A)
    assert reg.flush() is None and reg.stats().write_failures == 1
    store.fail = False
    clock.now += 0.5
    result = reg.flush()
    assert result is not None and result.registered == 1


def test_a_service_that_cannot_write_does_not_advertise() -> None:
    reg, _, _ = registry(FakeStore(), writable=False)
    assert not reg.accepting()
    reg2, _, _ = registry(FakeStore(present=False))
    assert not reg2.accepting()  # no RouteInstance table: nothing can be written
    reg2.submit("a", A)
    assert reg2.flush() is None


def test_a_read_only_database_without_write_db_is_not_written() -> None:
    """Issue 22: `may_write` (lars.dns.writeaccess) False: not advertised, not accepted,
    nothing written, the tables not even asked about; True again: written."""
    allowed = [False]
    store = FakeStore()
    reg, _, _ = registry(store, may_write=lambda: allowed[0])
    assert not reg.writable and not reg.accepting()
    reg.submit("a", A)
    assert reg.flush() is None
    allowed[0] = True
    assert reg.writable and reg.check_presence() and reg.accepting()
    assert reg.flush() is not None
