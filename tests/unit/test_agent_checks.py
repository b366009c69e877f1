"""The registration check state machine (lars.agent.checks), on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.agent.checks import Checker, CheckSettings, CheckState, Transition

P, F, N = CheckState.PASSING, CheckState.FAILING, CheckState.PENDING


def settings(fail_after: int = 2, pass_after: int = 1, ttl: float = 0.0) -> CheckSettings:
    return CheckSettings(
        interval=1.0, timeout=0.5, fail_after=fail_after, pass_after=pass_after, ttl=ttl
    )


def run(checker: Checker, results: list[bool], start: float = 0.0) -> list[Transition | None]:
    out = []
    now = start
    for ok in results:
        assert checker.due(now)
        checker.start(now)
        out.append(checker.finish(ok, now + 0.1, "" if ok else "refused"))
        now += 1.0
    return out


def test_defaults_pass_after_one_success_and_fail_after_two_failures() -> None:
    c = Checker(settings(), 0.0)
    assert c.state is N and c.due(0.0) and not c.passing
    assert run(c, [True]) == [Transition(N, P, 0.1)]
    assert c.passing and c.since == 0.1
    changes = run(c, [False, False, False], start=1.0)
    assert changes == [None, Transition(P, F, 2.1), None]
    assert c.detail == "refused" and c.failures == 3
    assert run(c, [True], start=4.0) == [Transition(F, P, 4.1)]
    assert c.detail == "" and c.runs == 5


def test_one_failure_between_successes_never_fails_with_fail_after_2() -> None:
    c = Checker(settings(), 0.0)
    changes = run(c, [True, False, True, False, True, False])
    assert [t for t in changes if t is not None] == [Transition(N, P, 0.1)]


def test_pending_can_fail_directly() -> None:
    c = Checker(settings(fail_after=3), 0.0)
    assert run(c, [False, False, False])[-1] == Transition(N, F, 2.1)


def test_pass_after_needs_a_full_run() -> None:
    c = Checker(settings(pass_after=3), 0.0, state=F)
    changes = run(c, [True, True, False, True, True, True])
    assert changes[:5] == [None] * 5
    assert changes[5] == Transition(F, P, 5.1)


def test_one_check_in_flight_and_the_cadence_follows_starts() -> None:
    c = Checker(settings(), 10.0)
    c.start(10.0)
    assert c.next_at == 11.0 and not c.due(11.5)  # still in flight
    with pytest.raises(RuntimeError):
        c.start(10.2)
    c.finish(True, 11.7)  # a slow check: due again at once
    assert c.due(11.7)
    c.start(11.7)
    c.finish(True, 11.8)
    assert not c.due(12.6) and c.due(12.7)


def test_ttl_heartbeats() -> None:
    c = Checker(settings(ttl=5.0), 0.0)
    assert c.is_ttl
    assert c.check_ttl(0.0) == Transition(N, P, 0.0)  # registering is the first heartbeat
    assert c.check_ttl(4.9) is None and c.next_at == 5.9
    assert c.check_ttl(5.9) is None  # one miss: still passing (fail_after 2)
    assert c.check_ttl(6.9) == Transition(P, F, 6.9)
    assert "no heartbeat" in c.detail
    assert c.heartbeat(7.0) == Transition(F, P, 7.0)  # counted at once, not at the next tick
    assert c.heartbeat(8.0) is None and c.last_beat == 8.0
    assert c.check_ttl(12.0) is None


def test_a_restored_state_is_kept() -> None:
    c = Checker(settings(), 100.0, state=P)
    assert c.passing and c.due(100.0)
    assert run(c, [True], start=100.0) == [None]


@given(
    results=st.lists(st.booleans(), max_size=60),
    fail_after=st.integers(1, 5),
    pass_after=st.integers(1, 5),
    initial=st.sampled_from([N, P, F]),
)
def test_invariants_of_any_sequence(
    results: list[bool], fail_after: int, pass_after: int, initial: CheckState
) -> None:
    c = Checker(settings(fail_after, pass_after), 0.0, state=initial)
    changes = run(c, results)
    for i, change in enumerate(changes):
        tail = results[: i + 1]
        if change is None:
            continue
        # a state changes only at the end of a full run of the same verdict
        need = pass_after if change.new is P else fail_after
        assert len(tail) >= need and all(ok == (change.new is P) for ok in tail[-need:])
        assert change.old is not change.new
    # the state now follows the last full run (or the initial state when there was none)
    run_len = 0
    for ok in reversed(results):
        if ok != results[-1]:
            break
        run_len += 1
    if results and results[-1] and run_len >= pass_after:
        assert c.state is P
    elif results and not results[-1] and run_len >= fail_after:
        assert c.state is F
    if c.state is N:
        assert initial is N
    assert c.successes + c.failures == run_len if results else c.runs == 0
    assert c.runs == len(results)
