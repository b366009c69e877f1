"""Change detection without deleting RouteChange rows (issue 22).

A route service that reads a replica (or a SELECT-only user) cannot delete the rows it
pushed; RouteAdmin trims them an hour later and writing route services may delete them
at any time. Whatever happens to the rows, every announced edit is served after one
poll, each change row's module is pushed once (never again on later loads), and a poll
with nothing new loads nothing."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from lars.dns.poller import Poller, Step
from lars.dns.table import RouteTable
from tests.unit.dns_fakes import FakeStore, Published


@dataclass
class ReadOnly:
    """lars.dns.writeaccess.WriteAccess on a replica."""

    known: bool = False
    writable: bool = False
    probes: int = 0

    def probe(self) -> bool | None:
        self.probes += 1
        self.known = True
        return self.writable


def make(
    clean: str = "auto", access: ReadOnly | None = None
) -> tuple[FakeStore, Published, Poller]:
    store, published = FakeStore(), Published()
    poller = Poller(
        store,
        published,
        reload_interval=1e9,
        wall=lambda: 1_700_000_000.0,
        access=access if access is not None else ReadOnly(),
        clean=clean,
    )
    return store, published, poller


def test_a_read_only_service_keeps_the_rows_and_does_not_reload_for_them() -> None:
    access = ReadOnly()
    store, published, poller = make(access=access)
    poller.load(0.0)
    assert access.probes == 1 and not poller.cleans
    store.routes = [*store.routes, (2, 2, 20, 80)]
    store.add_change(2, 2, store.version)  # same second: no version bump
    assert poller.poll(0.1)
    assert published.calls[-1][1] == {(2, 2)}
    assert store.deleted == [] and len(store.changes) == 1
    # before issue 22 the expected change mark was "what is left after deleting": the
    # row left behind made every poll reload (and push the module again)
    for t in (0.2, 0.3, 0.4):
        assert poller.check(t) is Step.NOTHING
    pushes = len(published.calls)
    poller.load(10.0)  # a periodic reload reads only newer rows: nothing pushed again
    assert len(published.calls) == pushes + 1 and published.calls[-1][1] == set()
    assert access.probes == 1  # asked once


def test_clean_on_auto_off() -> None:
    store, _, poller = make(clean="auto", access=ReadOnly(writable=True))
    poller.load(0.0)
    store.add_change(1, 1, store.version)
    poller.poll(0.1)
    assert poller.cleans and store.changes == []
    store, _, poller = make(clean="off", access=ReadOnly(writable=True))
    poller.load(0.0)
    store.add_change(1, 1, store.version)
    poller.poll(0.1)
    assert not poller.cleans and len(store.changes) == 1
    assert not poller.poll(0.2)


def test_rows_deleted_by_others_cause_one_reload_and_no_push() -> None:
    store, published, poller = make()
    poller.load(0.0)
    for m in (1, 2, 3):
        store.add_change(m, 1, store.version)
    assert poller.poll(0.1) and published.calls[-1][1] == {(1, 1), (2, 1), (3, 1)}
    store.changes = store.changes[-1:]  # RouteAdmin trimmed the oldest: the newest id
    assert not poller.poll(0.2)  # stays, nothing to do
    store.changes = []  # a writing route service deleted what it pushed
    assert poller.poll(0.3)  # the newest id moved: one reload...
    assert published.calls[-1][1] == set()  # ...that pushes nothing again
    assert not poller.poll(0.4)


def test_ids_going_back_are_read_again_never_missed() -> None:
    """SQLite reuses the ids of deleted rows: a row with an id at or below the newest
    one pushed is still seen (its module pushed, maybe with the survivors again)."""
    store, published, poller = make()
    store.rowid_reuse = True
    poller.load(0.0)
    store.add_change(1, 1, store.version)
    store.add_change(2, 1, store.version)
    poller.poll(0.1)
    store.changes = []  # all trimmed
    assert poller.poll(0.2)
    store.add_change(7, 7, store.version)  # reuses id 1
    assert poller.poll(0.3) and (7, 7) in published.calls[-1][1]
    assert not poller.poll(0.4)


OPS = st.sampled_from(
    ["bump", "row", "bump+row", "future-row", "bump-only", "poll", "trim", "trim-all"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_every_edit_served_and_polls_settle_whatever_is_trimmed(ops: list[str]) -> None:
    """Ids are never reused (InnoDB keeps AUTO_INCREMENT; the replicas are MariaDB).
    SQLite reuses the id of a deleted newest row: a service that does not clean may then
    miss a row made without a version bump until its periodic reload (lars edits
    always bump the version)."""
    store, published, poller = make()
    poller.load(0.0)
    host = 100
    now = 0.0
    seen: set[int] = set()  # row ids present at a poll: the only ones ever trimmed
    for op in ops:
        now += 0.1
        if op == "poll":
            poller.poll(now)
            seen = {c.id for c in store.changes}
            assert published.table.same_routes(RouteTable.from_rows(0, store.routes))
            loads = store.loads
            assert not poller.poll(now + 0.05)
            assert store.loads == loads
            continue
        if op == "trim":  # the oldest half of the rows pushed goes (RouteAdmin's retention)
            old = sorted(i for i in seen if any(c.id == i for c in store.changes))
            gone = set(old[: len(old) // 2 + 1])
            store.changes = [c for c in store.changes if c.id not in gone]
            seen -= gone
            continue
        if op == "trim-all":  # a writing route service deleted what it pushed
            store.changes = [c for c in store.changes if c.id not in seen]
            seen = set()
            continue
        if op != "bump-only" and op != "future-row":
            host += 1
            store.routes = [*store.routes, (host % 3 + 1, 1, host, 80)]
        if op in ("bump", "bump+row", "bump-only"):
            store.version += 1
        if op in ("row", "bump+row"):
            store.add_change(host % 3 + 1, 1, store.version)  # same second: same version
        if op == "future-row":
            store.add_change(9, 9, store.version + 1)
    poller.poll(now + 1)
    assert published.table.same_routes(RouteTable.from_rows(0, store.routes))
    assert store.deleted == []  # a read-only service never deletes
    assert not poller.poll(now + 2)
