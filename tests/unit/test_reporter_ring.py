"""The consistent-hash ring: deterministic, balanced, and stable when writers change."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.reporter.ring import HashRing

MODULES = [(modid, cmdid) for modid in range(1, 2001) for cmdid in range(1, 6)]


def _assign(ring: HashRing) -> dict[tuple[int, int], int]:
    return {key: ring.node_for(*key) for key in MODULES}


def test_same_nodes_in_any_order_give_the_same_mapping() -> None:
    assert _assign(HashRing([0, 1, 2])) == _assign(HashRing([2, 0, 1]))
    ring = HashRing([1])
    ring.add(2)
    ring.add(0)
    assert _assign(ring) == _assign(HashRing([0, 1, 2]))


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_modules_spread_evenly_over_writers(n: int) -> None:
    counts = Counter(_assign(HashRing(range(n))).values())
    assert set(counts) == set(range(n))
    fair = len(MODULES) / n
    for node, count in counts.items():
        assert 0.7 * fair <= count <= 1.3 * fair, (node, count, fair)


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_adding_a_writer_moves_about_one_nth_of_the_keys_all_to_it(n: int) -> None:
    before = _assign(HashRing(range(n)))
    after = _assign(HashRing(range(n + 1)))
    moved = [key for key in MODULES if before[key] != after[key]]
    assert all(after[key] == n for key in moved)
    share = len(moved) / len(MODULES)
    expected = 1 / (n + 1)
    assert 0.6 * expected <= share <= 1.4 * expected, (share, expected)


def test_removing_a_writer_moves_only_its_keys() -> None:
    ring = HashRing(range(4))
    before = _assign(ring)
    ring.remove(2)
    after = _assign(ring)
    for key in MODULES:
        if before[key] != 2:
            assert after[key] == before[key]
        else:
            assert after[key] in (0, 1, 3)


def test_invalid_use_raises() -> None:
    with pytest.raises(LookupError):
        HashRing().node_for(1, 1)
    ring = HashRing([0])
    with pytest.raises(ValueError):
        ring.add(0)
    with pytest.raises(KeyError):
        ring.remove(5)
    with pytest.raises(ValueError):
        HashRing([0], vnodes=0)
    assert ring.nodes == frozenset({0})
    assert len(ring) == 1


ids = st.integers(min_value=0, max_value=2**31 - 1)


@given(
    nodes=st.sets(st.integers(min_value=0, max_value=64), min_size=1, max_size=8),
    new=st.integers(min_value=65, max_value=100),
    keys=st.lists(st.tuples(ids, ids), min_size=1, max_size=50),
)
def test_a_key_either_stays_or_moves_to_the_new_node(
    nodes: set[int], new: int, keys: list[tuple[int, int]]
) -> None:
    ring = HashRing(nodes, vnodes=16)
    before = {key: ring.node_for(*key) for key in keys}
    assert set(before.values()) <= nodes
    ring.add(new)
    for key in keys:
        assert ring.node_for(*key) in (before[key], new)
