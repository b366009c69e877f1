"""Owned threads that cannot end silently (issue 19, item 3).

Every thread a daemon starts runs its body through `ThreadHealth.target(...)`, so an
exception escaping the body (a bug, a value the code never expected, even SystemExit,
which ends a thread without a word) is logged with its traceback and recorded, and then:

- a restartable body (a loop whose state lives outside the thread: the route service's
  poller and watchdog, the reporter's writers) runs again after a short pause, at most
  `max_restarts` times within `restart_window` seconds;
- any other body (an event-loop thread: its state is the loop), or one that keeps failing,
  is dead: every `on_fatal` hook is called. A daemon's main wires the hook to
  `SignalWaiter.fail`, so the process stops loudly: exit 1 and the error on its one line.

Until then `reasons()` names each dead thread and its error for readiness (`/readyz`,
`lars status`), and `failures()` also keeps the restarted ones for `/status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = ["ThreadFailure", "ThreadHealth"]

log = logging.getLogger(__name__)

MAX_RESTARTS = 5  # within RESTART_WINDOW seconds; one more failure makes the thread dead
RESTART_WINDOW = 60.0
RESTART_DELAY = 0.5  # seconds before a restart: a failing body cannot spin


@dataclass(frozen=True, slots=True)
class ThreadFailure:
    thread: str  # the thread's name (dns-poller, reporter-writer1, agent-udp, ...)
    error: str  # "OverflowError: timeout value is too large"
    restarts: int  # times the body was started again after a failure
    dead: bool  # True: not running any more; False: restarted and running
    at: float = 0.0  # clock time of the (last) failure
    age: float = 0.0  # seconds since then, as of the snapshot (ThreadHealth.failures)

    @property
    def recent(self) -> bool:
        """Failed within the restart window: may explain what is wrong right now."""
        return self.age < RESTART_WINDOW

    def describe(self) -> str:
        if self.dead:
            return f"thread {self.thread} died: {self.error}"
        return (
            f"thread {self.thread} restarted {self.restarts}x, last error "
            f"{self.age:.0f}s ago: {self.error}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "thread": self.thread,
            "error": self.error,
            "restarts": self.restarts,
            "dead": self.dead,
            "age": round(self.age, 3),
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ThreadHealth:
    """The failures of one daemon's threads; safe from any thread."""

    def __init__(
        self,
        *,
        max_restarts: int = MAX_RESTARTS,
        restart_window: float = RESTART_WINDOW,
        restart_delay: float = RESTART_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_restarts = max_restarts
        self._window = restart_window
        self._delay = restart_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, ThreadFailure] = {}
        self._recent: dict[str, list[float]] = {}
        self._hooks: list[Callable[[ThreadFailure], None]] = []

    def on_fatal(self, hook: Callable[[ThreadFailure], None]) -> None:
        """Call `hook` (from the dying thread) for each thread that dies, including one
        that died before the hook was added. The hook must only set events."""
        with self._lock:
            self._hooks.append(hook)
            dead = [f for f in self._failures.values() if f.dead]
        for failure in dead:
            hook(failure)

    def failures(self) -> tuple[ThreadFailure, ...]:
        """Every failed thread, dead or restarted, with the age of its last failure."""
        now = self._clock()
        with self._lock:
            return tuple(replace(f, age=max(0.0, now - f.at)) for f in self._failures.values())

    def reasons(self) -> list[str]:
        """Why the daemon is not ready: one line per dead thread."""
        return [f.describe() for f in self.failures() if f.dead]

    def died(self, name: str, error: BaseException | str) -> None:
        """Record `name` as dead (a thread that cannot be restarted) and call the hooks."""
        text = error if isinstance(error, str) else _describe(error)
        with self._lock:
            old = self._failures.get(name)
            failure = ThreadFailure(name, text, old.restarts if old else 0, True, self._clock())
            self._failures[name] = failure
            hooks = list(self._hooks)
        log.critical("thread %s died: %s", name, text)
        for hook in hooks:
            hook(failure)

    def target(
        self,
        name: str,
        body: Callable[[], None],
        *,
        stopping: Callable[[], bool],
        restart: bool,
    ) -> Callable[[], None]:
        """A thread target running `body` under supervision. `body` returning while
        `stopping()` is false counts as a failure too (a loop must not just end)."""

        def run() -> None:
            while True:
                try:
                    body()
                except BaseException as exc:  # the point: nothing ends silently
                    if stopping():
                        log.warning("thread %s ended while stopping: %s", name, _describe(exc))
                        return
                    log.error("thread %s failed: %s", name, _describe(exc), exc_info=exc)
                    error = _describe(exc)
                else:
                    if stopping():
                        return
                    error = "its loop returned unexpectedly"
                    log.error("thread %s failed: %s", name, error)
                if not (restart and self._restart_allowed(name, error)):
                    self.died(name, error)
                    return
                if self._pause(stopping):
                    return

        return run

    def _restart_allowed(self, name: str, error: str) -> bool:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._recent.get(name, []) if now - t < self._window]
            if len(recent) >= self._max_restarts:
                return False
            recent.append(now)
            self._recent[name] = recent
            old = self._failures.get(name)
            restarts = (old.restarts if old else 0) + 1
            self._failures[name] = ThreadFailure(name, error, restarts, False, now)
        log.warning("thread %s restarts (%d in the last %.0fs)", name, len(recent), self._window)
        return True

    def _pause(self, stopping: Callable[[], bool]) -> bool:
        """Sleep the restart delay; True when a stop came meanwhile."""
        end = self._clock() + self._delay
        while self._clock() < end:
            if stopping():
                return True
            time.sleep(min(0.05, self._delay))
        return stopping()
