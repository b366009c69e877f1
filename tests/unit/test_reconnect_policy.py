"""ReconnectPolicy: about 1 s while the peer was seen recently, the old growth to 10 s
for peers away longer, and a fleet's retries spread out (fake clocks, seeded rngs)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.reactor.backoff import ReconnectPolicy, backoff

POLICY = ReconnectPolicy()


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def attempt_times(delays: Iterator[float], clock: FakeClock, until: float) -> list[float]:
    """Times of the attempts of one outage that starts at clock.now, up to `until`."""
    times = []
    while clock.now <= until:
        clock.now += next(delays)
        times.append(clock.now)
    return times


def gap_after_return(delays: Iterator[float], clock: FakeClock, down: float) -> float:
    """Seconds between the peer listening again (at `down`) and the next attempt."""
    return attempt_times(delays, clock, down)[-1] - down


def test_recent_peer_first_retry_spreads_over_the_cap_then_stays_near_it() -> None:
    assert POLICY.delay(0, 0.0, 0.0) == 0.0
    assert POLICY.delay(0, 0.0, 0.999) == pytest.approx(0.999)
    assert POLICY.delay(1, 5.0, 0.0) == pytest.approx(0.5)
    assert POLICY.delay(50, 299.0, 0.999) == pytest.approx(0.9995)


def test_peer_never_seen_or_long_gone_backs_off_to_the_old_maximum() -> None:
    highs = [POLICY.delay(i, None, 1.0) for i in range(10)]
    assert highs == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])
    assert POLICY.delay(3, 300.0, 0.0) == pytest.approx(0.4)  # no longer "recent"
    assert POLICY.delay(10_000, 1e9, 0.5) == pytest.approx(7.5)  # no overflow


@settings(deadline=None)
@given(
    attempt=st.integers(0, 500),
    since=st.one_of(st.none(), st.floats(0.0, 1e6)),
    u=st.floats(0.0, 1.0, exclude_max=True),
)
def test_every_delay_is_within_its_bounds(attempt: int, since: float | None, u: float) -> None:
    d = POLICY.delay(attempt, since, u)
    if since is not None and since < POLICY.recent:
        if attempt:  # recent_max * [0.5, 1]: u close to 1 rounds to the cap itself
            assert POLICY.recent_max / 2 <= d <= POLICY.recent_max
        else:
            assert 0.0 <= d < POLICY.recent_max
    else:
        assert 0.0 < d <= POLICY.maximum


def test_recent_is_judged_at_each_retry_with_the_injected_clock() -> None:
    clock = FakeClock(1000.0)
    delays = POLICY.delays(1000.0, clock, random.Random(1))
    early = [next(delays) for _ in range(20)]
    assert max(early) < 1.0
    clock.now = 1000.0 + 301.0  # the peer has now been away for more than 5 minutes
    late = list(itertools.islice(delays, 5))
    assert min(late) >= 5.0  # attempt count is high: the old maximum, jittered


def test_measured_defect_restart_after_20s_used_within_a_second() -> None:
    """Measured: the old 0.1 s x2 up to 10 s backoff used a route service restarted after
    20 s only 6.3 s after it listened again. Now every seed retries within 1 s."""
    worst_old = max(
        gap_after_return(backoff(rng=random.Random(seed)), FakeClock(), 20.0) for seed in range(200)
    )
    assert worst_old > 3.0  # what the issue measured
    for seed in range(1000):
        clock = FakeClock(500.0)  # the connection ended at 500: the peer was just seen
        gap = gap_after_return(POLICY.delays(500.0, clock, random.Random(seed)), clock, 520.0)
        assert gap < POLICY.recent_max


def max_share_in_window(times: list[float], window: float) -> float:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best / len(times)


def test_200_clients_that_lost_the_same_peer_spread_their_first_retries() -> None:
    firsts = [next(POLICY.delays(0.0, FakeClock(), random.Random(seed))) for seed in range(200)]
    assert max(firsts) - min(firsts) > 0.9  # spread over the whole second
    assert max_share_in_window(firsts, 0.05) <= 0.15  # uniform: 5 % on average
    # The old schedule sent all of them within one 50 ms window.
    old = [next(backoff(rng=random.Random(seed))) for seed in range(200)]
    assert max_share_in_window(old, 0.05) == 1.0


def test_200_clients_come_back_spread_when_the_peer_returns() -> None:
    """The reconnect rate at the peer's return: each client's first attempt after the
    peer listens again (20 s down) falls anywhere in the next second."""
    returns = []
    for seed in range(200):
        clock = FakeClock()
        delays = POLICY.delays(0.0, clock, random.Random(seed))
        returns.append(attempt_times(delays, clock, 20.0)[-1])
    assert max(returns) - 20.0 < 1.0
    assert max_share_in_window(returns, 0.05) <= 0.15  # ~7 % on average


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(initial=0.0)
    with pytest.raises(ValueError):
        ReconnectPolicy(initial=5.0, maximum=1.0)
    with pytest.raises(ValueError):
        ReconnectPolicy(recent_max=0.0)
