"""SyncPlan: when an agent sends its InstanceSync (plain values, no loop)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lars.agent.regsync import DEFAULT_LEASE, SyncPlan


def test_never_held_sends_nothing() -> None:
    plan = SyncPlan()
    assert plan.due(0, 0.0) and not plan.wanted(0) and not plan.busy
    assert not plan.wanted(0) and plan.sent == 0
    plan.held(0)
    assert not plan.wanted(1)


def test_change_renewal_and_lease_from_the_ack() -> None:
    plan = SyncPlan()
    plan.held(2)
    assert plan.busy and plan.due(1, 0.0) and plan.wanted(1)
    assert plan.next_seq() == 1
    plan.sent_ok(1, 2, 100.0)
    assert not plan.due(1, 100.0 + DEFAULT_LEASE / 3 - 0.01)
    assert plan.due(1, 100.0 + DEFAULT_LEASE / 3)
    assert plan.due(2, 100.0)  # a change: at once
    plan.ack(1, 30)
    assert plan.lease == 30.0 and plan.last_ack == 1 and plan.acked == 1
    assert not plan.due(1, 103.0) and plan.due(1, 100.0 + DEFAULT_LEASE / 3)  # no later
    plan.ack(1, 3)
    assert plan.due(1, 101.0)  # a shorter lease shortens the wait at once
    plan.ack(1, 10**9)
    assert plan.lease == 3600.0


def test_the_empty_set_until_its_own_ack() -> None:
    plan = SyncPlan()
    plan.held(1)
    plan.next_seq()
    plan.sent_ok(1, 1, 0.0)
    plan.held(0)  # the last deregister
    assert plan.wanted(2) and plan.busy
    plan.ack(1, 10)  # the previous sync's ack: not the empty set's
    assert plan.wanted(2)
    seq = plan.next_seq()
    plan.sent_ok(2, 0, 1.0)
    assert plan.due(2, 1.0 + 10 / 3)  # renewed until acknowledged
    plan.ack(seq, 10)
    assert not plan.wanted(2) and not plan.busy
    plan.held(1)  # registered again: back to syncing
    assert plan.wanted(3)


@given(st.lists(st.integers(0, 3), max_size=30))
def test_seq_grows_and_wraps(counts: list[int]) -> None:
    plan = SyncPlan()
    plan.seq = 0xFFFFFFFF - 5
    seqs = []
    for version, count in enumerate(counts, start=1):
        plan.held(count)
        if plan.wanted(version):
            seqs.append(plan.next_seq())
            plan.sent_ok(version, count, float(version))
    assert len(set(seqs)) == len(seqs)
    assert all(0 <= s <= 0xFFFFFFFF for s in seqs)
