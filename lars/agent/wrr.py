"""Smooth weighted round robin over a module's idle list (nginx's algorithm), sans-I/O.

Every pick adds each idle host's weight to its current weight `cw`, chooses the host
with the largest `cw` (ties: the one nearest the head of the list) and takes the total
idle weight off the chosen one, which then moves to the tail. Over any run of picks
without a change to the list, each host is chosen in proportion to its weight, spread
out rather than in bursts (1:2:5 gives c b c a c c b c, again and again).

Why this is exactly spec section 8 when every weight is equal: the caller restarts all
`cw` at 0 whenever the idle list or a weight changes (`restart`). From all-zero `cw`
with equal weights w over n hosts, the k-th pick finds the hosts not yet chosen in this
round at k*w and the chosen ones at (k - n)*w, so it takes the head, and after n picks
every `cw` is 0 again: the choices are those of "answer the head, move it to the tail".
The balancer therefore skips the arithmetic while the weights are uniform (a plain
rotation), and tests/unit/test_agent_wrr_equivalence.py checks both paths against the
original picker on random streams.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol, TypeVar

__all__ = ["Weighted", "restart", "swrr_pick"]


class Weighted(Protocol):
    weight: int
    cw: int


def restart(hosts: Iterable[Weighted]) -> tuple[int, bool]:
    """Reset every current weight to 0; return (total weight, all weights equal)."""
    total = 0
    first = -1
    uniform = True
    for host in hosts:
        host.cw = 0
        weight = host.weight
        total += weight
        if first < 0:
            first = weight
        elif weight != first:
            uniform = False
    return total, uniform


H = TypeVar("H", bound=Weighted)


def swrr_pick(idle: deque[H], total: int) -> H:
    """One smooth weighted round robin choice from a non-empty list (moved to its tail)."""
    best = idle[0]
    best_cw = best.cw - 1  # below any candidate: every weight is at least 1
    index = 0
    for i, host in enumerate(idle):
        cw = host.cw = host.cw + host.weight
        if cw > best_cw:
            best, best_cw, index = host, cw, i
    best.cw = best_cw - total
    if index == 0:
        idle.rotate(-1)
    else:
        del idle[index]
        idle.append(best)
    return best
