"""A cross-thread task queue a loop drains: a deque plus one wake-up fd.

Any thread posts callables; the owning loop watches the wake-up fd and runs the queued
callables in order. Posts coalesce: while a wake-up is pending no further write is made,
so a burst of posts costs one eventfd write and one loop wake-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from lars.errors import LoopClosed

__all__ = ["TaskQueue"]

log = logging.getLogger(__name__)

DRAIN_BATCH = 4096  # callables per wake-up before I/O gets a turn


class _Waker:
    """eventfd on Linux, a pipe elsewhere."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.read_fd = self.write_fd = fd
            self._payload = (1).to_bytes(8, "little")
        else:  # pragma: no cover - non-Linux fallback
            self.read_fd, self.write_fd = os.pipe()
            os.set_blocking(self.read_fd, False)
            os.set_blocking(self.write_fd, False)
            self._payload = b"\0"

    def wake(self) -> None:
        try:
            os.write(self.write_fd, self._payload)
        except BlockingIOError:  # counter or pipe full: a wake-up is pending anyway
            pass

    def clear(self) -> None:
        try:
            os.read(self.read_fd, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd != self.read_fd:
            os.close(self.write_fd)


class TaskQueue:
    """Queue of (callable, args) run on one asyncio loop.

    `attach(loop)` must be called on the loop's thread; `post` may be called from any
    thread until `close()`, after which it raises LoopClosed.
    """

    __slots__ = ("_closed", "_loop", "_signalled", "_tasks", "_wake_lock", "_waker", "errors")

    def __init__(self) -> None:
        self._tasks: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._waker = _Waker()
        self._signalled = False
        self._closed = False
        # Taken once per wake-up, not per post: close() must not release the fd between
        # a poster's closed-check and its write (the fd number could be reused by then).
        self._wake_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.errors = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._waker.read_fd, self._on_wake)
        if self._tasks:
            loop.call_soon(self._drain)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            raise LoopClosed("task queue is closed")
        self._tasks.append((fn, args))
        # Order matters: append first, then check the flag (see _on_wake).
        if not self._signalled:
            self._signalled = True
            with self._wake_lock:
                if self._closed:
                    raise LoopClosed("task queue is closed")
                self._waker.wake()

    def __len__(self) -> int:
        return len(self._tasks)

    def _on_wake(self) -> None:
        self._waker.clear()
        # Cleared before draining: a post that sees False after this point wakes us
        # again; a post that saw True appended before this point and is drained now.
        self._signalled = False
        self._drain()

    def _drain(self) -> None:
        tasks = self._tasks
        for _ in range(DRAIN_BATCH):
            if not tasks:
                return
            fn, args = tasks.popleft()
            try:
                fn(*args)
            except Exception:
                self.errors += 1
                log.exception("task %r failed", fn)
        if tasks and self._loop is not None:
            self._loop.call_soon(self._drain)

    def close(self) -> None:
        """Refuse further posts, run what is queued, release the fd (on the loop's thread)."""
        with self._wake_lock:
            if self._closed:
                return
            self._closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._waker.read_fd)
        while self._tasks:
            self._drain()
        self._waker.close()
