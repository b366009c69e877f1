"""The guard over time (issue 18): the window baseline, purges spread over polls, and a
hold that survives restarts through the saved guard state. Sans-I/O: fake store, audit,
clock and state."""

from __future__ import annotations

import pytest

from lars.dns.baseline import Baseline
from lars.dns.guard import GuardPolicy
from lars.dns.poller import Poller, Step
from lars.errors import ConfigError
from lars.routes.guardstate import decode, encode
from tests.unit.dns_fakes import FakeStore
from tests.unit.guard_fakes import AuditWithIds, Clock, MemoryState, poller, rows

GAPS = [0.0, 0.05, 0.15, 0.3, 2.0, 60.0]


def fleet() -> tuple[FakeStore, AuditWithIds, MemoryState, Clock]:
    store = FakeStore()
    store.routes = rows(10, 3)  # 10 modules of 3 hosts
    return store, AuditWithIds(store), MemoryState(), Clock()


def served_hosts(p: Poller) -> int:
    assert p.table is not None
    return p.table.host_count


def edit(store: FakeStore, clock: Clock, p: Poller, gap: float) -> None:
    store.version += 1
    clock.advance(gap)
    p.poll(clock.now)


# --- the baseline alone ---


def test_the_baseline_is_each_modules_peak_within_the_window() -> None:
    b = Baseline({(1, 1): 3, (2, 1): 3})
    b.serve({(1, 1): 1, (2, 1): 3}, 100.0)  # module 1 dropped to 1 at t=100
    assert b.peaks(100.0, 600.0) == {(1, 1): 3, (2, 1): 3}
    assert b.peaks(699.0, 600.0) == {(1, 1): 3, (2, 1): 3}
    assert b.peaks(701.0, 600.0) == {(1, 1): 1, (2, 1): 3}  # aged out
    b.serve({(2, 1): 3}, 800.0)  # module 1 gone
    assert b.peaks(800.0, 600.0) == {(1, 1): 1, (2, 1): 3}
    assert b.peaks(1401.0, 600.0) == {(2, 1): 3}


def test_a_higher_later_peak_replaces_the_earlier_ones() -> None:
    b = Baseline({(1, 1): 5})
    b.serve({(1, 1): 2}, 10.0)
    b.serve({(1, 1): 7}, 20.0)
    b.serve({(1, 1): 1}, 30.0)
    assert b.past() == {(1, 1): [(30.0, 7)]}
    assert b.peaks(31.0, 600.0) == {(1, 1): 7}


def test_judge_counts_the_loss_against_the_baseline() -> None:
    b = Baseline({(m, 1): 3 for m in range(1, 11)})
    keep = {(m, 1): 3 for m in range(1, 6)}  # 5 of 10 modules left: 15 lost of 30
    found = b.judge(keep, 0.0, 600.0, 0.5, 3)
    assert (found.baseline, found.loss, found.hold) == (30, 15, False)
    fewer = {(m, 1): 3 for m in range(1, 5)}  # 18 lost
    assert b.judge(fewer, 0.0, 600.0, 0.5, 3).hold
    assert not b.judge(fewer, 0.0, 600.0, 0.5, 19).hold  # under min_drop_hosts


@pytest.mark.parametrize("window", [-1.0, float("nan"), 7 * 86400.0 + 1])
def test_a_bad_window_is_a_config_error(window: float) -> None:
    with pytest.raises(ConfigError, match="guard_window"):
        GuardPolicy(window=window)


# --- purges spread over polls (the repros of the issue) ---


@pytest.mark.parametrize("gap", GAPS)
def test_a_module_by_module_purge_stops_with_half_the_hosts(gap: float) -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    for m in range(1, 11):
        store.routes = [r for r in store.routes if r[0] != m]
        edit(store, clock, p, gap)
    assert served_hosts(p) >= 15 and p.hold is not None
    first_hold = next(r for r in audit.rows if r[0] == "hold")
    assert first_hold[2].endswith("18 of 30 hosts of the window lost")  # the sixth delete


@pytest.mark.parametrize("gap", GAPS)
def test_a_batched_purge_stops_with_half_the_hosts(gap: float) -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    while store.routes:
        store.routes = store.routes[: len(store.routes) - max(1, len(store.routes) * 4 // 10)]
        edit(store, clock, p, gap)
    assert served_hosts(p) >= 15 and p.hold is not None


@pytest.mark.parametrize("gap", GAPS)
def test_a_host_by_host_purge_stops_with_half_the_hosts(gap: float) -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    while store.routes:
        store.routes = store.routes[:-1]
        edit(store, clock, p, gap)
    if gap * 30 < 600:  # the whole purge inside the window
        assert served_hosts(p) == 15 and p.hold is not None
    else:  # slower than the window: the peaks age out, the last deletes are held
        assert 0 < served_hosts(p) < 15 and p.hold is not None


def test_without_the_window_a_slow_purge_passes_as_before() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock, GuardPolicy(window=0.0))
    p.load(clock.now)
    for m in range(1, 11):
        store.routes = [r for r in store.routes if r[0] != m]
        edit(store, clock, p, 0.15)
    assert served_hosts(p) == 0 and p.hold is None


def test_a_purge_slower_than_the_window_passes() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock, GuardPolicy(window=60.0))
    p.load(clock.now)
    for m in range(1, 11):
        store.routes = [r for r in store.routes if r[0] != m]
        edit(store, clock, p, 61.0)
    # each delete passes once the peaks before it aged out, but the very last one would
    # empty the whole table: 3 of the 3 hosts the window has seen (>= min_drop_hosts)
    assert served_hosts(p) == 3 and p.hold is not None


def test_a_held_purge_never_applies_itself_when_the_window_passes() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock, GuardPolicy(window=60.0))
    p.load(clock.now)
    for m in range(1, 7):  # the sixth delete is held
        store.routes = [r for r in store.routes if r[0] != m]
        edit(store, clock, p, 0.3)
    assert p.hold is not None and served_hosts(p) == 15
    for _ in range(5):  # time passes, periodic reloads, version-only bumps
        edit(store, clock, p, 100.0)
    assert p.hold is not None and served_hosts(p) == 15
    store.routes = [r for r in store.routes if r[0] != 7]  # and the purge goes on
    edit(store, clock, p, 100.0)
    assert p.hold is not None and served_hosts(p) == 15


def test_rolling_replacements_and_additions_are_never_held() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    for i, row in enumerate(list(store.routes)):  # replace every host, one at a time
        store.routes = [r for r in store.routes if r != row] + [(row[0], row[1], 900 + i, 81)]
        edit(store, clock, p, 0.15)
        assert p.hold is None
    for m in range(1, 6):  # scale down to 15 (allowed), then add: never held
        store.routes = [r for r in store.routes if r[0] != m]
        edit(store, clock, p, 0.15)
    assert p.hold is None and served_hosts(p) == 15
    store.routes = [*store.routes, (1, 1, 5, 80)]
    edit(store, clock, p, 0.15)
    assert p.hold is None and served_hosts(p) == 16


def test_a_release_resets_the_baseline() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    store.routes = []
    edit(store, clock, p, 0.1)
    assert p.hold is not None
    audit.release()
    assert p.check(clock.now) is Step.RELEASE
    p.run(Step.RELEASE, clock.now)
    assert p.hold is None and served_hosts(p) == 0
    store.routes = rows(1, 1)
    edit(store, clock, p, 0.1)
    assert p.hold is None and served_hosts(p) == 1


# --- restarts: the saved state ---


def test_the_state_is_saved_after_every_table_and_hold_and_round_trips() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    assert state.saves == 1
    saved = state.load()
    assert saved is not None and saved.hosts == 30 and saved.modules == 10 and saved.held is None
    store.routes = []
    edit(store, clock, p, 0.1)
    saved = state.load()
    assert saved is not None and saved.hosts == 30 and saved.held is not None
    assert saved.held.hosts == 0 and saved.held.audit_id == audit.hold_ids[-1]
    assert decode(encode(saved)) == saved


def restart(store: FakeStore, audit: AuditWithIds, state: MemoryState, clock: Clock) -> Poller:
    published, p = poller(store, audit, state, clock)
    p.load(clock.now)
    assert published.calls  # it serves something at once: the good table
    return p


def test_restart_after_a_hold_and_a_version_only_bump_serves_the_good_table() -> None:
    """Repro 1: DELETE + bump (held), then one more version-only bump, then a restart."""
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    store.routes = []
    edit(store, clock, p, 0.1)
    assert p.hold is not None
    edit(store, clock, p, 0.1)  # UPDATE RouteVersion SET version = version + 1
    holds = len(audit.hold_ids)
    clock.advance(5.0)
    p2 = restart(store, audit, state, clock)
    assert served_hosts(p2) == 30 and len(p2.table or ()) == 10
    assert p2.hold is not None and p2.hold.audit_id == audit.hold_ids[-1]
    assert len(audit.hold_ids) == holds  # the same hold, carried over
    assert p2.restored_state
    audit.release()  # the operator's release still works after the restart
    assert p2.check(clock.now) is Step.RELEASE
    p2.run(Step.RELEASE, clock.now)
    assert p2.hold is None and served_hosts(p2) == 0


def test_restart_and_one_add_during_a_hold_is_held() -> None:
    """Repro 2: hold the empty table, restart, `lars route add 1 1 ...`."""
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    store.routes = []
    edit(store, clock, p, 0.1)
    p2 = restart(store, audit, state, clock)
    store.routes = [(1, 1, 1, 9001)]
    edit(store, clock, p2, 0.1)
    assert served_hosts(p2) == 30 and p2.hold is not None and p2.hold.hosts_after == 1
    # a restart while that table is held: still the good table
    clock.advance(1000.0)  # past the window: a held baseline does not age
    p3 = restart(store, audit, state, clock)
    assert served_hosts(p3) == 30 and p3.hold is not None


def test_restart_mid_purge_keeps_the_baseline() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    for m in range(1, 11):
        store.routes = [r for r in store.routes if r[0] != m]
        store.version += 1
        clock.advance(0.3)
        p = restart(store, audit, state, clock)  # a restart between every delete
    assert served_hosts(p) >= 15 and p.hold is not None


def test_a_table_changed_while_down_that_passes_is_applied() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    store.routes = [*store.routes[1:], (11, 1, 7, 80)]  # one host less, one module more
    store.version += 1
    p2 = restart(store, audit, state, clock)
    assert p2.hold is None and served_hosts(p2) == 30 and (11, 1) in (p2.table or ())


def test_restore_of_the_served_table_ends_the_hold() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    good = list(store.routes)
    store.routes = []
    edit(store, clock, p, 0.1)
    saved = state.load()
    assert saved is not None and saved.held is not None
    # what `lars route restore` writes: the served table back into RouteData
    store.routes = [
        (m, c, ip, port) for (m, c), hosts in saved.routes.items() for ip, port, _ in hosts
    ]
    assert sorted(store.routes) == sorted(good)
    edit(store, clock, p, 0.1)
    assert p.hold is None and served_hosts(p) == 30
    assert audit.rows[-1][0] == "apply"
    saved = state.load()
    assert saved is not None and saved.held is None


def test_a_periodic_reload_that_finds_nothing_new_saves_nothing() -> None:
    store, audit, state, clock = fleet()
    _pub, p = poller(store, audit, state, clock)
    p.load(clock.now)
    saves = state.saves
    clock.advance(11.0)
    assert p.poll(clock.now)  # reload_interval passed: a load
    assert state.saves == saves
    edit(store, clock, p, 0.1)  # a version-only bump: the served version is saved
    assert state.saves == saves + 1
    saved = state.load()
    assert saved is not None and saved.version == store.version
