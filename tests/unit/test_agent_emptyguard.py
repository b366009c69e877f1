"""EmptyGuard: a mass-empty is noticed once; after a restart cached routes are held
while the route service answers empty for all of them (plain values, fake times)."""

from __future__ import annotations

from lars.agent.emptyguard import EmptyGuard, GuardEvent

A, B = (10, 80), (11, 81)
M1, M2, M3 = (1, 1), (1, 2), (2, 1)


def test_one_module_emptied_is_a_normal_edit() -> None:
    g = EmptyGuard()
    assert g.answer(M1, [A], 0.0) == ([(M1, [A])], None)
    assert g.answer(M1, [], 1.0) == ([(M1, [])], None)  # the only module: not "all at once"
    assert g.answer(M2, [], 1.0) == ([(M2, [])], None)  # never had hosts


def test_every_module_emptied_at_once_is_reported_once_and_delivered() -> None:
    g = EmptyGuard()
    for key in (M1, M2, M3):
        g.answer(key, [A], 0.0)
    assert g.answer(M1, [], 5.0) == ([(M1, [])], None)
    assert g.answer(M2, [], 5.1) == ([(M2, [])], None)
    assert g.answer(M3, [], 5.2) == ([(M3, [])], GuardEvent.MASS_EMPTY)
    assert g.answer(M3, [], 6.0) == ([(M3, [])], None)  # once
    g.answer(M1, [A], 7.0)  # re-armed by hosts
    g.answer(M2, [A], 7.0)
    g.answer(M1, [], 8.0)
    assert g.answer(M2, [], 8.0)[1] is GuardEvent.MASS_EMPTY


def test_modules_emptied_one_by_one_over_time_are_not_a_mass_empty() -> None:
    g = EmptyGuard(window=10.0)
    g.answer(M1, [A], 0.0)
    g.answer(M2, [A], 0.0)
    g.answer(M1, [], 1.0)
    assert g.answer(M2, [], 100.0) == ([(M2, [])], None)


def test_after_a_restart_all_cached_answered_empty_are_held() -> None:
    g = EmptyGuard()
    g.seed([M1, M2])
    assert g.answer(M1, [], 0.0) == ([], None)  # held while M2 may still have hosts
    assert g.answer(M2, [], 0.0) == ([], GuardEvent.HOLD)
    assert g.holding and set(g.held) == {M1, M2}
    assert g.answer(M1, [], 30.0) == ([], None)  # pushes and re-asks stay held
    assert g.answer(M3, [], 31.0) == ([(M3, [])], None)  # a new module is delivered
    # the route service has a real table again: the held answers go out, then the hosts
    out, event = g.answer(M3, [B], 40.0)
    assert event is GuardEvent.RELEASE and out == [(M1, []), (M2, []), (M3, [B])]
    assert not g.holding and not g.held
    assert g.answer(M1, [], 41.0) == ([(M1, [])], None)  # no longer guarded


def test_after_a_restart_one_cached_module_deleted_meanwhile_is_delivered() -> None:
    g = EmptyGuard()
    g.seed([M1, M2])
    assert g.answer(M1, [], 0.0) == ([], None)
    out, event = g.answer(M2, [B], 0.0)
    assert event is None and out == [(M1, []), (M2, [B])]
    assert g.answer(M2, [], 1.0) == ([(M2, [])], None)


def test_the_held_module_itself_getting_hosts_releases_the_others() -> None:
    g = EmptyGuard()
    g.seed([M1, M2])
    g.answer(M1, [], 0.0)
    g.answer(M2, [], 0.0)
    out, event = g.answer(M1, [A], 1.0)
    assert event is GuardEvent.RELEASE and out == [(M2, []), (M1, [A])]
    assert g.with_hosts == {M1}


def test_a_single_cached_module_is_not_held() -> None:
    g = EmptyGuard()
    g.seed([M1])
    assert g.answer(M1, [], 0.0) == ([(M1, [])], None)


def test_modules_emptied_long_ago_are_not_remembered_without_bound() -> None:
    """Decommissioned modules (emptied one by one while others keep their hosts, then
    forgotten by the shards) stayed in the guard's emptied map for the agent's lifetime:
    one entry per module that ever went empty. Only those inside `window` can count."""
    g = EmptyGuard(window=10.0)
    g.answer(M1, [A], 0.0)  # keeps its hosts throughout
    for i in range(1000):
        key = (100 + i, 1)
        g.answer(key, [B], float(i))
        g.answer(key, [], float(i))
    assert len(g._emptied) <= 11  # the last window's worth
    # and the rule is unchanged: the last modules emptied at once still make a mass-empty
    g.answer((5000, 1), [B], 2000.0)
    g.answer((5001, 1), [B], 2000.0)
    g.answer((5000, 1), [], 2001.0)
    g.answer((5001, 1), [], 2001.0)
    assert g.answer(M1, [], 2001.5)[1] is GuardEvent.MASS_EMPTY
