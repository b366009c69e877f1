"""Never backwards (issue 22): the agent's per-module version rule, on a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lars.agent.freshness import ROLLBACK_AFTER, VersionGate
from lars.protocol.version import MAX_VERSION, is_newer

M = (1, 1)


def gate() -> VersionGate[tuple[int, int], str]:
    return VersionGate()


def test_same_or_newer_applies_older_waits() -> None:
    g = gate()
    assert g.answer(M, 100, "v100", 0.0)
    assert g.answer(M, 100, "v100 again", 1.0)
    assert g.answer(M, 105, "v105", 2.0)
    assert not g.answer(M, 103, "v103", 3.0)  # a staler replica's route service
    assert g.version(M) == 105 and g.waiting == 1 and g.refused == 1
    assert g.deadline() == 3.0 + ROLLBACK_AFTER
    assert g.tick(3.0 + ROLLBACK_AFTER - 0.01) == []


def test_a_seeded_version_is_judged_as_an_applied_one() -> None:
    g = gate()  # a restarted agent: its route cache said version 200
    g.seed(M, 200)
    g.seed((2, 2), 0)  # an original route service's table: nothing known
    assert g.version(M) == 200 and g.version((2, 2)) is None
    assert not g.answer(M, 150, "v150", 0.0)  # a staler replica's service: waits
    assert g.tick(ROLLBACK_AFTER) == [(M, 150, "v150")]  # kept 30 s: a rollback
    assert g.answer((2, 2), 5, "v5", 0.0)


def test_the_replica_catching_up_ends_the_wait() -> None:
    g = gate()
    g.answer(M, 105, "v105", 0.0)
    assert not g.answer(M, 103, "v103", 1.0)
    assert g.answer(M, 106, "v106", 2.0)  # it caught up and pushed
    assert g.waiting == 0 and g.deadline() is None
    assert g.tick(100.0) == []
    assert g.version(M) == 106


def test_an_older_table_kept_30_s_is_a_rollback_and_applied() -> None:
    g = gate()
    g.answer(M, 105, "v105", 0.0)
    assert not g.answer(M, 103, "v103", 10.0)
    assert not g.answer(M, 104, "v104", 20.0)  # still older; the wait keeps its start
    assert g.deadline() == 10.0 + ROLLBACK_AFTER
    assert g.tick(10.0 + ROLLBACK_AFTER) == [(M, 104, "v104")]  # the latest older answer
    assert g.version(M) == 104 and g.rollbacks == 1 and g.deadline() is None
    assert g.answer(M, 104, "v104", 50.0)  # from now on 104 is the module's version


def test_a_new_connection_starts_the_wait_again() -> None:
    g = gate()
    g.answer(M, 105, "v105", 0.0)
    assert not g.answer(M, 103, "v103", 1.0)
    g.connection_changed()
    assert g.deadline() is None
    assert not g.answer(M, 103, "v103", 25.0)
    assert g.tick(1.0 + ROLLBACK_AFTER) == []  # not 30 s on this connection yet
    assert g.tick(25.0 + ROLLBACK_AFTER) == [(M, 103, "v103")]


def test_original_route_services_are_applied_as_today() -> None:
    """No version (an original lars_dns): applied, and the order is forgotten."""
    g = gate()
    g.answer(M, 105, "v105", 0.0)
    assert g.answer(M, 0, "original", 1.0)
    assert g.version(M) is None
    assert g.answer(M, 90, "v90", 2.0)  # no newer table known: taken


def test_modules_are_judged_each_on_its_own() -> None:
    g = gate()
    g.answer((1, 1), 105, "a", 0.0)
    assert g.answer((2, 2), 50, "b", 0.0)  # another module: nothing known, applied
    assert not g.answer((1, 1), 50, "a-old", 1.0)


def test_a_wrap_counts_as_newer() -> None:
    """RouteVersion renumbered past 4294967295 to 1 (lars/routes/routeedit.py)."""
    g = gate()
    assert g.answer(M, MAX_VERSION - 1, "top-1", 0.0)
    assert g.answer(M, MAX_VERSION, "top", 1.0)
    assert g.answer(M, 1, "renumbered", 2.0)  # newer (serial-number order)
    assert g.answer(M, 2, "next", 3.0)
    assert not g.answer(M, MAX_VERSION, "before the wrap", 4.0)  # older now
    assert g.version(M) == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, MAX_VERSION), st.floats(0, 40), st.booleans()),
        max_size=30,
    )
)
def test_never_backwards_without_a_30_s_wait(events: list[tuple[int, float, bool]]) -> None:
    """Whatever the answers, the applied version only goes back (serial order) through
    tick(), and only after the connection kept the older table ROLLBACK_AFTER s."""
    g = gate()
    now = 0.0
    first_older: float | None = None  # this connection's first older answer waiting
    for version, gap, reconnect in events:
        now += gap
        if reconnect:
            g.connection_changed()
            first_older = None
        for key, _v, _p in g.tick(now):
            assert key == M and first_older is not None and now - first_older >= ROLLBACK_AFTER
            first_older = None
        before = g.version(M)
        applied = g.answer(M, version, str(version), now)
        if applied:
            first_older = None
            if version and before is not None:
                assert not is_newer(before, version)  # never older
        else:
            assert version and before is not None and is_newer(before, version)
            assert g.version(M) == before
            first_older = now if first_older is None else first_older


def test_memory_is_bounded_by_forgetting_the_longest_remembered() -> None:
    """Answers for ever new (made-up) modules cannot grow the gate without bound; a
    forgotten module's next answer is taken as today."""
    g: VersionGate[tuple[int, int], str] = VersionGate(max_tracked=3)
    for m in range(10):
        assert g.answer((m, 1), 100, "x", 0.0)
    assert [g.version((m, 1)) for m in range(10)] == [None] * 7 + [100] * 3
    assert g.answer((0, 1), 50, "older but forgotten", 1.0)
