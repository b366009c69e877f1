"""EmptyGuard (sans-I/O): more than half of the modules with hosts emptied within the
window is held (their last hosts stay served) until hosts come back for one of them or
`delay` passes; one module emptied is applied as an edit; after a restart the cached
modules' empty answers wait for the rule (plain values, fake times)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lars.agent.emptyguard import Answer, EmptyGuard, GuardEvent, Outcome

A, B, C = (10, 80), (11, 81), (12, 82)
M1, M2, M3, M4 = (1, 1), (1, 2), (2, 1), (3, 3)
NONE: dict[tuple[int, int], int] = {}


def empty(key: tuple[int, int]) -> Answer:
    return (key, [], NONE)


def served(keys: list[tuple[int, int]], *, delay: float = 300.0) -> EmptyGuard:
    g = EmptyGuard(delay=delay)
    for key in keys:
        assert g.answer(key, [A], 0.0) == Outcome([(key, [A], NONE)])
    return g


# live: the rule


def test_one_module_emptied_is_a_normal_edit() -> None:
    g = served([M1, M2, M3])
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])
    assert g.answer(M4, [], 1.0) == Outcome([empty(M4)])  # never had hosts
    assert not g.holding and g.holds == 0


def test_the_only_module_emptied_is_applied() -> None:
    g = served([M1])
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])  # 1 < min_modules


def test_half_is_not_more_than_half() -> None:
    g = served([M1, M2, M3, M4])
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 1.0) == Outcome([empty(M2)])  # 2 of 4: applied
    assert not g.holding


def test_more_than_half_emptied_within_the_window_is_held_and_restored() -> None:
    g = EmptyGuard()
    g.answer(M1, [A, B], 0.0, {B: 5})
    for key in (M2, M3, M4):
        g.answer(key, [C], 0.0)
    assert g.answer(M1, [], 5.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 6.0) == Outcome([empty(M2)])
    out = g.answer(M3, [], 7.0)  # 3 of 4 within 10 s
    assert out.event is GuardEvent.HOLD
    # the two applied before the threshold get their last hosts (and weights) back;
    # the answer that crossed it is withheld
    assert out.deliver == [(M1, [A, B], {B: 5}), (M2, [C], NONE)]
    assert g.holding and set(g.held) == {M1, M2, M3} and g.holds == 1
    assert g.answer(M4, [], 8.0) == Outcome([])  # later empties are withheld too
    assert g.answer(M1, [], 9.0) == Outcome([])  # pushes and re-asks stay held
    assert set(g.held) == {M1, M2, M3, M4}


def test_two_modules_both_emptied_is_held() -> None:
    g = served([M1, M2])
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 1.0) == Outcome([(M1, [A], NONE)], GuardEvent.HOLD)


def test_modules_emptied_further_apart_than_the_window_are_edits() -> None:
    g = served([M1, M2, M3])
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 11.5) == Outcome([empty(M2)])  # M1 left the window
    assert g.answer(M3, [], 22.0) == Outcome([empty(M3)])
    assert not g.holding


def test_a_module_with_hosts_again_leaves_the_count() -> None:
    g = served([M1, M2, M3])
    g.answer(M1, [], 1.0)
    g.answer(M1, [B], 2.0)  # re-added
    assert g.answer(M2, [], 3.0) == Outcome([empty(M2)])  # 1 of 3 in the window
    assert not g.holding


def test_modules_that_never_had_hosts_are_delivered_during_a_hold() -> None:
    g = served([M1, M2])
    g.answer(M1, [], 1.0)
    g.answer(M2, [], 1.0)
    assert g.answer(M4, [], 2.0) == Outcome([empty(M4)])
    assert g.answer(M4, [B], 3.0) == Outcome([(M4, [B], NONE)])  # not held: no release
    assert g.holding and M4 not in g.held


# how a hold ends


def test_hosts_for_a_held_module_release_and_reask_the_others() -> None:
    g = served([M1, M2, M3])
    g.answer(M1, [], 1.0)
    g.answer(M2, [], 1.0)
    assert g.holding
    out = g.answer(M2, [B], 2.0)
    assert out == Outcome([(M2, [B], NONE)], GuardEvent.RELEASE, [M1])
    assert not g.holding and not g.held and g.releases == 1
    # the route service's answer to the re-ask is applied, and not counted
    assert g.answer(M1, [], 2.1) == Outcome([empty(M1)])
    assert g.answer(M3, [], 2.2) == Outcome([empty(M3)])  # 1 of 2 counted: an edit
    assert not g.holding


def test_a_reasked_module_with_hosts_is_served() -> None:
    g = served([M1, M2])
    g.answer(M1, [], 1.0)
    g.answer(M2, [], 1.0)
    g.answer(M1, [C], 2.0)
    assert g.answer(M2, [B], 2.1) == Outcome([(M2, [B], NONE)])
    assert g.served == {M1: ([C], NONE), M2: ([B], NONE)}


def test_the_delay_applies_the_held_answers() -> None:
    g = served([M1, M2, M3], delay=300.0)
    g.answer(M1, [], 10.0)
    g.answer(M2, [], 11.0)
    assert g.deadline() == 311.0
    assert g.tick(310.9) == Outcome([])
    assert g.holding
    out = g.tick(311.0)
    assert out == Outcome([empty(M1), empty(M2)], GuardEvent.EXPIRE)
    assert not g.holding and g.deadline() is None and g.expiries == 1
    assert g.answer(M3, [], 312.0) == Outcome([empty(M3)])  # the applied ones do not count


def test_a_held_module_emptied_again_after_the_hold_counts_anew() -> None:
    g = served([M1, M2])
    g.answer(M1, [], 1.0)
    g.answer(M2, [], 1.0)
    g.tick(301.0)
    g.answer(M1, [A], 400.0)
    g.answer(M2, [A], 400.0)
    g.answer(M1, [], 401.0)
    assert g.answer(M2, [], 401.0).event is GuardEvent.HOLD
    assert g.holds == 2


def test_delay_zero_reports_once_and_applies() -> None:
    g = served([M1, M2, M3], delay=0.0)
    assert g.answer(M1, [], 1.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 1.0) == Outcome([empty(M2)], GuardEvent.MASS_EMPTY)
    assert g.answer(M3, [], 1.0) == Outcome([empty(M3)])  # once
    assert not g.holding and g.deadline() is None
    g.answer(M1, [A], 20.0)  # re-armed by hosts
    g.answer(M2, [A], 20.0)
    g.answer(M1, [], 21.0)
    assert g.answer(M2, [], 21.0).event is GuardEvent.MASS_EMPTY


# after a restart: cached modules


def test_after_a_restart_cached_modules_answered_empty_are_held_without_a_blip() -> None:
    g = EmptyGuard()
    g.seed([(M1, [A], NONE), (M2, [B], {B: 3}), (M3, [C], NONE)])
    assert g.answer(M1, [], 0.0) == Outcome([])  # pending: M2 and M3 may have hosts
    assert g.answer(M2, [], 0.0) == Outcome([], GuardEvent.HOLD)  # 2 of 3: nothing applied
    assert set(g.held) == {M1, M2}
    assert g.answer(M3, [], 0.1) == Outcome([])
    assert g.answer(M4, [], 1.0) == Outcome([empty(M4)])  # a new module is delivered
    out = g.answer(M3, [C], 2.0)
    assert out == Outcome([(M3, [C], NONE)], GuardEvent.RELEASE, [M1, M2])


def test_after_a_restart_one_cached_module_deleted_meanwhile_is_delivered() -> None:
    g = EmptyGuard()
    g.seed([(M1, [A], NONE), (M2, [A], NONE), (M3, [A], NONE)])
    assert g.answer(M1, [], 0.0) == Outcome([])
    assert g.answer(M2, [B], 0.0) == Outcome([empty(M1), (M2, [B], NONE)])
    assert g.answer(M3, [A], 0.1) == Outcome([(M3, [A], NONE)])
    assert not g.holding


def test_after_a_restart_hosts_supersede_a_pending_empty_answer() -> None:
    """Hypothesis found it: the pending empty of a module that then answered hosts was
    applied and counted, and a later hold restored (then expired) its old hosts."""
    g = EmptyGuard()
    g.seed([(M1, [A], NONE), (M2, [A], NONE), (M3, [A], NONE)])
    assert g.answer(M1, [], 0.0) == Outcome([])
    assert g.answer(M1, [B], 0.1) == Outcome([(M1, [B], NONE)])  # no empty before it
    g.answer(M2, [], 0.2)
    out = g.answer(M3, [], 0.3)
    assert out.event is GuardEvent.HOLD and set(g.held) == {M2, M3}
    assert all(key != M1 for key, _, _ in out.deliver)
    assert g.tick(400.0) == Outcome([empty(M2), empty(M3)], GuardEvent.EXPIRE)


def test_after_a_restart_the_last_cached_answer_decides() -> None:
    g = EmptyGuard()
    g.seed([(M1, [A], NONE), (M2, [A], NONE), (M3, [A], NONE), (M4, [A], NONE)])
    g.answer(M2, [A], 0.0)
    g.answer(M3, [A], 0.0)
    g.answer(M4, [A], 0.0)
    assert g.answer(M1, [], 0.1) == Outcome([empty(M1)])  # 1 of 4, none left to answer


def test_pending_answers_are_applied_after_the_window() -> None:
    g = EmptyGuard()
    g.seed([(M1, [A], NONE), (M2, [A], NONE), (M3, [A], NONE)])
    assert g.answer(M1, [], 5.0) == Outcome([])  # M2, M3 never answer (disconnected)
    assert g.deadline() == 15.0
    assert g.tick(14.0) == Outcome([])
    assert g.tick(15.0) == Outcome([empty(M1)])
    assert g.deadline() is None


def test_a_single_cached_module_answered_empty_is_applied() -> None:
    g = EmptyGuard()
    g.seed([(M1, [A], NONE)])
    assert g.answer(M1, [], 0.0) == Outcome([empty(M1)])


def test_delay_zero_holds_nothing_after_a_restart() -> None:
    g = EmptyGuard(delay=0.0)
    g.seed([(M1, [A], NONE), (M2, [A], NONE)])
    assert g.answer(M1, [], 0.0) == Outcome([empty(M1)])
    assert g.answer(M2, [], 0.0) == Outcome([empty(M2)], GuardEvent.MASS_EMPTY)


def test_modules_emptied_long_ago_are_not_remembered_without_bound() -> None:
    """Only the modules emptied within the window are kept (oldest first, pruned)."""
    g = EmptyGuard(window=10.0)
    for i in range(30):
        g.answer((5000 + i, 1), [A], 0.0)  # keep their hosts throughout
    for i in range(1000):
        key = (100 + i, 1)
        g.answer(key, [B], float(i))
        assert g.answer(key, [], float(i)) == Outcome([empty(key)])
    assert len(g._emptied) <= 11 and not g.holding
    assert len(g.served) == 30


# hypothesis: whatever the sequence, no answer is lost and holds keep hosts


ANSWER = st.tuples(
    st.sampled_from([M1, M2, M3, M4, (5, 5)]),
    st.sampled_from([[], [], [A], [B, C]]),
    st.floats(min_value=0.0, max_value=8.0),
)


@settings(max_examples=300, deadline=None)
@given(
    cached=st.lists(st.sampled_from([M1, M2, M3, M4]), unique=True, max_size=4),
    steps=st.lists(st.one_of(ANSWER, st.floats(min_value=0.0, max_value=400.0)), max_size=40),
    delay=st.sampled_from([0.0, 1.0, 300.0]),
)
def test_every_answer_is_eventually_applied_and_holds_keep_hosts(
    cached: list[tuple[int, int]],
    steps: list[object],
    delay: float,
) -> None:
    g = EmptyGuard(delay=delay)
    shard: dict[tuple[int, int], list[tuple[int, int]]] = {k: [A] for k in cached}
    g.seed([(k, [A], NONE) for k in cached])
    last: dict[tuple[int, int], list[tuple[int, int]]] = dict(shard)
    now = 0.0

    def apply(out: Outcome) -> None:
        for key, hosts, _ in out.deliver:
            shard[key] = hosts
        for key in out.reask:  # the route service answers what it has
            apply(g.answer(key, last[key], now))

    for step in steps:
        if isinstance(step, tuple):
            key, hosts, gap = step
            now += gap
            last[key] = hosts
            out = g.answer(key, hosts, now)
            if out.event is GuardEvent.HOLD:
                assert all(h for _, h, _ in out.deliver)  # restores carry hosts
        else:
            assert isinstance(step, float)
            now += step
            out = g.tick(now)
        apply(out)
        assert g.holding == (g.held_since is not None)
        assert not (g.held and not g.holding)
        for key, hosts in last.items():
            if shard.get(key) != hosts:  # only withheld empties differ, and hosts stay
                assert not hosts and shard.get(key), (key, hosts, shard.get(key))
                assert key in g.held or key in g.pending
        if delay == 0.0:
            assert not g.holding and not g.pending
    # time passes: every withheld answer is applied in the end
    now += 1000.0
    apply(g.tick(now))
    apply(g.tick(now))
    assert {k: h for k, h in shard.items() if k in last} == last
    assert g.deadline() is None
