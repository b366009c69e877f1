"""Per-worker subscriptions against a plain model, with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.dns.subscriptions import Subscriptions


def test_subscribe_and_drop() -> None:
    subs: Subscriptions[str] = Subscriptions()
    assert subs.subscribe("a", (1, 1))
    assert subs.subscribe("a", (1, 1))  # idempotent
    assert subs.subscribe("b", (1, 1))
    assert subs.subscribe("a", (2, 2))
    assert sorted(subs.subscribers((1, 1))) == ["a", "b"]
    assert subs.keys_of("a") == {(1, 1), (2, 2)}
    assert (subs.connections, subs.modules, len(subs)) == (2, 2, 3)
    assert subs.drop("a") == 2
    assert subs.subscribers((1, 1)) == ["b"]
    assert subs.subscribers((2, 2)) == []
    assert subs.modules == 1
    assert subs.drop("a") == 0
    assert subs.drop("b") == 1
    assert (subs.connections, subs.modules, len(subs)) == (0, 0, 0)


def test_cap_per_connection_refuses_and_counts() -> None:
    subs: Subscriptions[str] = Subscriptions(max_per_conn=2)
    assert subs.subscribe("a", (1, 1))
    assert subs.subscribe("a", (1, 2))
    assert not subs.subscribe("a", (1, 3))
    assert subs.subscribe("a", (1, 1))  # already there: not refused
    assert subs.refused == 1
    assert subs.subscribers((1, 3)) == []
    assert subs.subscribe("b", (1, 3))  # the cap is per connection


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Subscriptions(max_per_conn=0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("sub"), st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.just("drop"), st.integers(0, 4), st.just(0)),
    ),
    max_size=60,
)


@settings(deadline=None)
@given(ops)
def test_matches_a_plain_model(script: list[tuple[str, int, int]]) -> None:
    subs: Subscriptions[int] = Subscriptions(max_per_conn=3)
    model: dict[int, set[tuple[int, int]]] = {}
    for op, conn, k in script:
        key = (k, k)
        if op == "sub":
            keys = model.setdefault(conn, set())
            ok = key in keys or len(keys) < 3
            assert subs.subscribe(conn, key) == ok
            if ok:
                keys.add(key)
        else:
            assert subs.drop(conn) == len(model.pop(conn, set()))
    for conn, keys in model.items():
        assert subs.keys_of(conn) == keys
    for k in range(5):
        expected = {c for c, keys in model.items() if (k, k) in keys}
        assert set(subs.subscribers((k, k))) == expected
    assert len(subs) == sum(len(v) for v in model.values())
    assert subs.modules == len({key for keys in model.values() for key in keys})
