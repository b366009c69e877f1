"""Reconnect delays: exponential growth, cap, jitter bounds, reproducible with a seed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.reactor.backoff import backoff, no_backoff


class EdgeRandom(random.Random):
    """uniform() always returns one end of the range, to see the undithered schedule."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def take(n: int, it: Iterator[float]) -> list[float]:
    return list(itertools.islice(it, n))


def test_delays_double_up_to_the_cap() -> None:
    delays = take(10, backoff(0.1, 2.0, rng=EdgeRandom(high=True)))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0])


def test_lowest_jitter_is_half_the_delay() -> None:
    delays = take(6, backoff(1.0, 5.0, factor=3.0, rng=EdgeRandom(high=False)))
    assert delays == pytest.approx([0.5, 1.5, 2.5, 2.5, 2.5, 2.5])


def test_default_schedule_starts_small_and_caps_at_ten_seconds() -> None:
    delays = take(30, backoff(rng=EdgeRandom(high=True)))
    assert delays[0] == pytest.approx(0.1)
    assert max(delays) == pytest.approx(10.0)
    assert delays[-1] == pytest.approx(10.0)


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(
    initial=st.floats(0.001, 5.0),
    maximum=st.floats(0.001, 60.0),
    factor=st.floats(1.0, 4.0),
    seed=st.integers(0, 2**32),
)
def test_every_delay_is_within_the_jitter_bounds(
    initial: float, maximum: float, factor: float, seed: int
) -> None:
    base = initial
    for delay in take(40, backoff(initial, maximum, factor, rng=random.Random(seed))):
        assert 0.5 * base - 1e-9 <= delay <= base + 1e-9
        base = min(base * factor, maximum)


def test_same_seed_same_delays_and_different_seeds_spread() -> None:
    a = take(8, backoff(rng=random.Random(7)))
    b = take(8, backoff(rng=random.Random(7)))
    assert a == b
    # Many clients restarted together do not retry in lockstep.
    firsts = {take(1, backoff(rng=random.Random(seed)))[0] for seed in range(50)}
    assert len(firsts) == 50


def test_each_generator_starts_over() -> None:
    rng = EdgeRandom(high=True)
    first = backoff(0.1, 10.0, rng=rng)
    take(5, first)
    assert take(1, backoff(0.1, 10.0, rng=rng)) == pytest.approx([0.1])


def test_without_rng_jitter_still_applies() -> None:
    delays = take(200, backoff(1.0, 1.0))
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 1


def test_no_backoff_is_zero_forever() -> None:
    assert take(100, no_backoff()) == [0.0] * 100
