"""Reconnect delays: exponential growth with full jitter, pure and injectable."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["BackoffFactory", "backoff", "no_backoff"]

BackoffFactory = Callable[[], Iterator[float]]


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
