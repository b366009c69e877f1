"""The guard's window baseline: per module, the highest host count served lately. Sans-I/O.

The identity check of lars.dns.guard compares a new table with the one served; a purge
spread over many polls passes it step by step. The window check compares the new table's
host counts with what each module HAD: its baseline is the highest host count served
within the last `guard_window` seconds (the current count included). Then

    loss = sum over modules of max(0, baseline - hosts in the new table)

and the new table is held when loss > max_drop_ratio x sum of baselines and
loss >= min_drop_hosts (`Baseline.judge`).

Kept per module as a monotonic queue of (time the count stopped being served, count),
times increasing and counts strictly decreasing, so the peak of the window is the first
entry not yet expired: O(1) amortised per change. Times are wall-clock seconds (the
baseline is persisted and survives a restart, lars/routes/guardstate.py). The caller
freezes time while a table is held (`at` = the hold's start), so a held purge never
applies itself when the window passes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Baseline", "WindowLoss"]

Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class WindowLoss:
    """What the window check found for one new table."""

    baseline: int  # sum over modules of their baseline
    loss: int  # hosts below the baseline in the new table
    hold: bool


class Baseline:
    """Per module: the count served now and the peaks served before, within the window."""

    __slots__ = ("_current", "_past")

    def __init__(
        self,
        current: Mapping[Key, int] | None = None,
        past: Mapping[Key, Iterable[tuple[float, int]]] | None = None,
    ) -> None:
        self._current: dict[Key, int] = {k: n for k, n in (current or {}).items() if n > 0}
        self._past: dict[Key, deque[tuple[float, int]]] = {}
        for key, entries in (past or {}).items():
            queue: deque[tuple[float, int]] = deque()
            for end, count in sorted(entries):
                _push(queue, float(end), int(count))
            if queue:
                self._past[key] = queue

    @property
    def current(self) -> dict[Key, int]:
        return dict(self._current)

    def past(self) -> dict[Key, list[tuple[float, int]]]:
        """The peaks before now (for persisting): {module: [(end time, count), ...]}."""
        return {key: list(queue) for key, queue in self._past.items() if queue}

    def serve(self, counts: Mapping[Key, int], now: float) -> None:
        """The table with these host counts is served from `now` on."""
        old = self._current
        for key, before in old.items():
            if counts.get(key, 0) < before:  # a count that stops: remember its peak
                _push(self._past.setdefault(key, deque()), now, before)
        self._current = {k: n for k, n in counts.items() if n > 0}

    def reset(self, counts: Mapping[Key, int]) -> None:
        """Forget the past: an operator accepted these counts (a release)."""
        self._past.clear()
        self._current = {k: n for k, n in counts.items() if n > 0}

    def peaks(self, at: float, window: float) -> dict[Key, int]:
        """Each module's baseline at time `at`: the highest count served in (at - window, at]."""
        horizon = at - window
        peaks = dict(self._current)
        for key in list(self._past):
            queue = self._past[key]
            while queue and queue[0][0] < horizon:
                queue.popleft()
            if not queue:
                del self._past[key]
                continue
            if queue[0][1] > peaks.get(key, 0):
                peaks[key] = queue[0][1]
        return peaks

    def judge(
        self,
        counts: Mapping[Key, int],
        at: float,
        window: float,
        max_drop_ratio: float,
        min_drop_hosts: int,
    ) -> WindowLoss:
        """Would a table with these host counts lose too much of the baseline?"""
        peaks = self.peaks(at, window)
        total = sum(peaks.values())
        loss = sum(max(0, peak - counts.get(key, 0)) for key, peak in peaks.items())
        hold = loss > max_drop_ratio * total and loss >= min_drop_hosts
        return WindowLoss(baseline=total, loss=loss, hold=hold)


def _push(queue: deque[tuple[float, int]], end: float, count: int) -> None:
    """Append a peak, dropping the older ones it dominates (no larger, ending earlier)."""
    while queue and queue[-1][1] <= count:
        queue.pop()
    queue.append((end, count))
