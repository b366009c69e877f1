"""The poller with the guard: a held table is not served, and how a hold ends."""

from __future__ import annotations

import logging

import pytest

from lars.dns.guard import GuardPolicy
from lars.dns.poller import Step
from lars.dns.store import ChangeRow
from lars.routes.audit import AuditEntry
from tests.unit.dns_fakes import FakeAudit, make, rows

FLEET = {(m, 1): 2 for m in range(1, 6)}  # 5 modules x 2 hosts


def held_setup(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    store, published, poller = make(audit=True)
    store.routes = rows(FLEET)
    poller.load(0.0)
    store.routes = []  # DELETE FROM RouteData; UPDATE RouteVersion SET version = version + 1
    store.version = 2
    with caplog.at_level(logging.ERROR, logger="lars.dns.poller"):
        assert poller.poll(0.1)
    return store, published, poller


def test_an_emptied_table_is_held_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    _store, published, poller = held_setup(caplog)
    assert len(published.calls) == 1  # only the first load: nothing served or pushed
    assert poller.table is not None and poller.table.host_count == 10
    hold = poller.hold
    assert hold is not None and hold.version == 2 and hold.served_version == 1
    assert (hold.modules_before, hold.modules_after, hold.hosts_before, hold.hosts_after) == (
        5,
        0,
        10,
        0,
    )
    assert hold.reason == "empty" and hold.since == 1_700_000_000.0 and hold.audit_id == 101
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "HOLDING route table version 2" in line and "modules 5->0, hosts 10->0" in line
    assert "lars route release" in line
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    assert audit.rows == [("hold", 2, "modules 5->0, hosts 10->0, max_drop_ratio 0.5")]
    # the periodic reloads of the same held table: no new line, no new row
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="lars.dns.poller"):
        assert poller.poll(10.2) and poller.poll(20.3)
    assert not caplog.records and len(audit.rows) == 1 and poller.holds == 1
    assert len(published.calls) == 1


def test_a_hold_ends_when_the_table_changes_into_one_that_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, published, poller = held_setup(caplog)
    store.routes = rows({**FLEET, (3, 1): 1})  # the DBA restores, minus one host
    store.version = 3
    store.changes = [ChangeRow(1, 3, 1, 3), ChangeRow(2, 4, 1, 3)]
    assert poller.poll(0.2)
    assert poller.hold is None
    table, pushed = published.calls[-1]
    assert table.version == 3 and table.host_count == 9
    assert pushed == {(3, 1), (4, 1)}  # the diff against the served table + change rows
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    assert audit.rows[-1] == ("apply", 3, "table changed")


def test_a_still_failing_change_is_a_new_hold(caplog: pytest.LogCaptureFixture) -> None:
    store, published, poller = held_setup(caplog)
    store.routes = rows({(1, 1): 2})  # still 80 % gone
    store.version = 3
    assert poller.poll(0.2)
    assert poller.hold is not None and poller.hold.version == 3 and poller.hold.reason == "drop"
    assert poller.holds == 2 and len(published.calls) == 1


def test_a_release_row_applies_the_held_table(caplog: pytest.LogCaptureFixture) -> None:
    store, published, poller = held_setup(caplog)
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    store.changes = [ChangeRow(9, 7, 7, 2)]  # a change row read while held, pushed on apply
    poller.poll(0.2)
    assert len(published.calls) == 1
    store.releases.append(50)  # a release older than the hold row: ignored
    assert not poller.poll(0.3)
    audit.release()
    assert poller.poll(0.4)
    table, pushed = published.calls[-1]
    assert table.host_count == 0 and table.version == 2
    assert pushed == {(m, 1) for m in range(1, 6)} | {(7, 7)}
    assert poller.hold is None
    assert audit.rows[-1] == ("apply", 2, "released by cli:alice")
    # the released table now is the good one: reloading it holds nothing
    assert poller.poll(10.5) and poller.hold is None and published.calls[-1][1] == set()


def test_without_route_audit_a_hold_lasts_until_the_table_changes() -> None:
    store, published, poller = make(audit=False)
    store.routes = rows(FLEET)
    poller.load(0.0)
    store.routes, store.version = [], 2
    poller.poll(0.1)
    assert poller.hold is not None and poller.hold.audit_id is None
    store.releases.append(1)  # never asked for: no hold row to compare with
    assert not poller.poll(0.2)
    store.routes, store.version = rows(FLEET), 3
    poller.poll(0.3)
    assert poller.hold is None and published.table.version == 3


def test_one_module_emptied_is_applied_and_pushed() -> None:
    store, published, poller = make(audit=True)
    store.routes = rows(FLEET)
    poller.load(0.0)
    store.routes = rows({k: n for k, n in FLEET.items() if k != (2, 1)})
    store.version = 2
    assert poller.poll(0.1)
    assert poller.hold is None
    assert published.calls[-1][1] == {(2, 1)}


def test_guard_off_applies_an_empty_table() -> None:
    store, published, poller = make(policy=GuardPolicy(max_drop_ratio=1.0))
    store.routes = rows(FLEET)
    poller.load(0.0)
    store.routes, store.version = [], 2
    assert poller.poll(0.1)
    assert poller.hold is None and published.table.host_count == 0


def test_sql_edits_are_diffed_against_the_last_loaded_table(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _published, poller = held_setup(caplog)
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    # the mass delete itself is audited even though it is held
    assert audit.sql == [(1, 2, set(FLEET))]
    store.routes, store.version = rows({(1, 1): 2}), 3
    poller.poll(0.2)
    assert audit.sql[-1] == (2, 3, {(1, 1)})


def test_a_service_started_while_a_table_is_held_serves_nothing_until_release(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restart during a push-empty incident must not serve the emptied table."""
    store, published, poller = make(audit=True)
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    store.routes, store.version = [], 7
    audit.active = AuditEntry(
        42, 1_699_999_000, "dns", "hold", 0, 0, "0.0.0.0", 0, 7, "modules 5->0, hosts 10->0, x"
    )
    with caplog.at_level(logging.ERROR, logger="lars.dns.poller"):
        poller.load(0.0)
        assert poller.check(0.1) is Step.NOTHING
        assert poller.poll(10.0)  # the periodic reload: still held, not logged again
    assert poller.table is None and not published.calls
    hold = poller.hold
    assert hold is not None and hold.audit_id == 42 and hold.served_version == 0
    assert (hold.modules_before, hold.hosts_before, hold.hosts_after) == (5, 10, 0)
    assert len([r for r in caplog.records if "HELD" in r.getMessage()]) == 1
    store.releases.append(43)
    assert poller.check(10.1) is Step.RELEASE
    poller.run(Step.RELEASE, 10.1)
    assert poller.table is not None and poller.table.version == 7 and poller.hold is None
    assert published.calls == [(poller.table, set())]
    assert audit.rows[-1] == ("apply", 7, "released by cli:alice")


def test_a_service_started_while_held_applies_a_changed_table() -> None:
    store, _published, poller = make(audit=True)
    audit = poller._audit
    assert isinstance(audit, FakeAudit)
    store.routes, store.version = [], 7
    audit.active = AuditEntry(42, 0, "dns", "hold", 0, 0, "0.0.0.0", 0, 7, "?")
    poller.load(0.0)
    assert poller.table is None and poller.hold is not None
    assert poller.hold.hosts_before == 0  # no numbers in the detail: unknown
    store.routes, store.version = rows(FLEET), 8  # the DBA restored the rows
    assert poller.poll(0.1)
    assert poller.table is not None and poller.table.host_count == 10
    assert poller.hold is None and audit.rows[-1] == ("apply", 8, "table changed")
    # an old hold row for another version does not stop a start
    store2, _published2, poller2 = make(audit=True)
    audit2 = poller2._audit
    assert isinstance(audit2, FakeAudit)
    audit2.active = AuditEntry(42, 0, "dns", "hold", 0, 0, "0.0.0.0", 0, 3, "?")
    poller2.load(0.0)
    assert poller2.table is not None and poller2.hold is None and store2.loads == 1
