"""Change detection: a poll reloads on a new version OR a new RouteChange row, and the
periodic reload's diff catches the rest; it never reloads in a loop."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.dns.poller import Step
from lars.dns.table import RouteTable
from lars.errors import StoreUnavailable
from tests.unit.dns_fakes import make


def test_same_second_second_edit_is_detected_by_its_change_row() -> None:
    """The measured defect: version = UNIX_TIMESTAMP() twice in one second; the second
    edit waited for the 10 s reload although it had its RouteChange row."""
    store, published, poller = make()
    store.version = 1_700_000_000
    store.add_change(1, 1, store.version)
    poller.load(0.0)
    # second edit in the same second: new host, new change row, the same version
    store.routes = [(1, 1, 10, 80), (1, 1, 11, 80)]
    store.add_change(1, 1, store.version)
    assert poller.check(0.1) is Step.LOAD
    poller.run(Step.LOAD, 0.1)
    table, pushed = published.calls[-1]
    assert table.hosts((1, 1)) == ((10, 80), (11, 80)) and pushed == {(1, 1)}
    assert store.changes == []
    assert poller.check(0.2) is Step.NOTHING  # and then it is quiet


def test_change_row_without_a_version_bump_is_detected() -> None:
    store, published, poller = make()
    poller.load(0.0)
    store.routes = [(1, 1, 10, 80), (2, 1, 20, 80)]
    store.add_change(2, 1, store.version)  # version not bumped
    assert poller.poll(0.1)
    assert published.calls[-1][1] == {(2, 1)}


def test_version_bump_without_a_change_row_is_detected() -> None:
    store, published, poller = make()
    poller.load(0.0)
    store.routes = [(1, 1, 10, 81)]
    store.version = 2
    assert poller.poll(0.1)
    assert published.calls[-1][1] == {(1, 1)}


def test_neither_version_nor_change_row_waits_for_the_periodic_diff() -> None:
    store, published, poller = make(reload_interval=10.0)
    poller.load(0.0)
    store.routes = [(1, 1, 10, 81)]
    assert not poller.poll(5.0)
    assert poller.poll(10.0)
    assert published.calls[-1][1] == {(1, 1)}


def test_a_change_row_from_the_future_is_read_once_not_in_a_loop() -> None:
    """A row whose version is above RouteVersion (inserted before the bump commits) is
    left in place; polls must not reload again and again because of it."""
    store, _published, poller = make()
    poller.load(0.0)
    store.add_change(1, 1, 99)
    assert poller.poll(0.1)
    loads = store.loads
    for i in range(2, 10):
        assert not poller.poll(i / 10)
    assert store.loads == loads and len(store.changes) == 1
    store.version = 99  # the bump arrives: loaded, pushed, deleted
    assert poller.poll(1.0)
    assert store.changes == []


def test_sqlite_rowid_reuse_after_the_delete_is_still_a_change() -> None:
    """SQLite gives max(rowid) + 1: after the poller deletes every row, the next row can
    get an id seen before. The poll compares with what the delete left, not a maximum."""
    store, published, poller = make()
    store.rowid_reuse = True
    first = store.add_change(1, 1, 1)
    poller.load(0.0)
    assert store.changes == []
    store.routes = [(1, 1, 10, 80), (1, 1, 12, 80)]
    assert store.add_change(1, 1, 1) == first  # same id again
    assert poller.poll(0.1)
    assert published.calls[-1][1] == {(1, 1)}


def test_rows_deleted_by_another_route_service_cost_one_reload_at_most() -> None:
    store, _published, poller = make()
    store.add_change(1, 1, 5)  # future row, left by the load
    poller.load(0.0)
    store.changes = []  # another route service loaded version 5 and deleted it
    assert poller.poll(0.1)
    assert not poller.poll(0.2)


def test_a_failed_clean_is_counted_and_the_table_still_served_once() -> None:
    """Cleaning RouteChange is housekeeping (issue 22): a delete that fails neither fails
    the load nor makes the next polls reload (the rows stay, pushed once)."""
    store, published, poller = make()
    poller.load(0.0)
    store.routes = [(1, 1, 10, 80), (1, 1, 11, 80)]
    store.add_change(1, 1, store.version)
    real_delete = store.delete_changes

    def failing(ids: Sequence[int]) -> int:
        raise StoreUnavailable("Lost connection to MySQL server during query")

    store.delete_changes = failing  # type: ignore[method-assign]
    assert poller.poll(0.1)
    assert published.table.hosts((1, 1)) == ((10, 80), (11, 80))
    assert poller.change_delete_failures == 1 and len(store.changes) == 1
    store.delete_changes = real_delete  # type: ignore[method-assign]
    assert poller.check(0.2) is Step.NOTHING
    assert poller.check(0.3) is Step.NOTHING


def test_a_load_that_fails_half_way_is_redone_by_the_next_poll() -> None:
    store, published, poller = make()
    poller.load(0.0)
    store.routes = [(1, 1, 10, 80), (1, 1, 11, 80)]
    store.add_change(1, 1, store.version)
    store.fail = True
    with pytest.raises(StoreUnavailable):
        poller.poll(0.1)
    store.fail = False
    assert poller.check(0.2) is Step.LOAD  # not forgotten
    poller.run(Step.LOAD, 0.2)
    assert store.changes == [] and published.table.hosts((1, 1)) == ((10, 80), (11, 80))
    assert poller.check(0.3) is Step.NOTHING


OPS = st.sampled_from(["bump", "row", "bump+row", "future-row", "bump-only", "poll"])


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=40), st.booleans())
def test_every_announced_edit_is_served_after_one_poll_and_polls_settle(
    ops: list[str], rowid_reuse: bool
) -> None:
    """Any sequence of DBA edits, each announced by a version bump and/or a RouteChange
    row (with the same or a later version), is served after the next poll; a second poll
    with nothing new loads nothing (no reload loop); no periodic reload is needed."""
    store, published, poller = make(reload_interval=1e9)
    store.rowid_reuse = rowid_reuse
    poller.load(0.0)
    host = 100
    now = 0.0
    for op in ops:
        now += 0.1
        if op == "poll":
            poller.poll(now)
            assert published.table.same_routes(RouteTable.from_rows(0, store.routes))
            loads = store.loads
            assert not poller.poll(now + 0.05)
            assert store.loads == loads
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
