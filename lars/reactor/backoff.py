"""Retry delays, pure and injectable: `backoff()` for any retry loop, `ReconnectPolicy`
for clients of a peer that usually comes back quickly (a restarted route service or
reporter).

`backoff()` grows exponentially with jitter. `ReconnectPolicy` keeps the delays short
while the peer was seen recently, so a restarted peer is used again within about a
second, and spreads a fleet's attempts: the first retry after a lost connection falls
anywhere in [0, recent_max) (1,000 agents that lost the same route service at the same
instant come back over a whole second, not in one burst), the next ones are
recent_max * [0.5, 1]. A peer not seen for `recent` seconds (or never) gets the classic
growing delays up to `maximum`. Time and randomness come in from the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["BackoffFactory", "ReconnectPolicy", "backoff", "no_backoff"]

BackoffFactory = Callable[[], Iterator[float]]

# Defaults of ReconnectPolicy
INITIAL = 0.1  # first delay for a peer not seen recently
MAXIMUM = 10.0  # cap for a peer not seen recently (the old cap for every peer)
RECENT_MAX = 1.0  # cap while the peer was seen recently
RECENT = 300.0  # "recently": a connection to it ended less than this many seconds ago


def backoff(
    initial: float = 0.1,
    maximum: float = 10.0,
    factor: float = 2.0,
    *,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays: initial, initial*factor, ... capped at maximum, each scaled by a
    random factor in [0.5, 1.0] so that many clients restarted together spread out."""
    uniform = (rng or random.Random()).uniform
    delay = initial
    while True:
        yield delay * uniform(0.5, 1.0)
        delay = min(delay * factor, maximum)


def no_backoff() -> Iterator[float]:
    """Zero delays, for tests."""
    while True:
        yield 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Reconnect delays that depend on how long ago the peer was last seen."""

    initial: float = INITIAL
    maximum: float = MAXIMUM
    factor: float = 2.0
    recent_max: float = RECENT_MAX
    recent: float = RECENT

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1:
            raise ValueError("ReconnectPolicy needs 0 < initial <= maximum and factor >= 1")
        if self.recent_max <= 0 or self.recent < 0:
            raise ValueError("ReconnectPolicy needs recent_max > 0 and recent >= 0")

    def delay(self, attempt: int, since_seen: float | None, u: float) -> float:
        """The delay before retry number `attempt` (0 = the first after a failure).

        `since_seen`: seconds since the last connection to the peer ended (0 while it
        just dropped), None if it was never reached; `u`: a random number in [0, 1).
        """
        if since_seen is not None and since_seen < self.recent:
            if attempt == 0:
                return self.recent_max * u  # full spread: a fleet does not stampede
            return self.recent_max * (0.5 + 0.5 * u)
        base = self.initial * self.factor ** min(attempt, 64)
        return min(base, self.maximum) * (0.5 + 0.5 * u)

    def delays(
        self,
        seen_at: float | None,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> Iterator[float]:
        """Yield the delays of one outage. `seen_at` is the clock() time the last
        connection ended (None: never connected); "recent" is judged at each retry, so
        a peer that stays away for more than `recent` seconds is backed off further."""
        draw = (rng or random.Random()).random
        attempt = 0
        while True:
            since = None if seen_at is None else max(0.0, clock() - seen_at)
            yield self.delay(attempt, since, draw())
            attempt += 1
