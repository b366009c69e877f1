"""The client tools stop on SIGINT and SIGTERM whatever disposition they inherited.

A process started from a script with `&` (and anything it starts) inherits SIGINT
ignored, so Python's default Ctrl-C handler is never installed: `lars qps`, `simulator`
or `gethost` started that way ran on after SIGINT (issue 19 item 8). The tools install
their own handlers instead, for the duration of the command: both signals raise
KeyboardInterrupt, which `lars` turns into exit 130 (qps prints its summary first).

`die_with_parent` is for worker processes (qps): the kernel kills them when their parent
dies, even by kill -9, and `parent_gone` lets their loop check as a fallback.

Standard library only: the client install uses it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

__all__ = ["STOP_SIGNALS", "die_with_parent", "parent_gone", "stop_on_signals", "tool"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1

R = TypeVar("R")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt inside the block (main thread only;
    elsewhere Python allows no handlers, and the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def tool(func: Callable[..., R]) -> Callable[..., R]:
    """`func` run under stop_on_signals (a command's entry point)."""

    @functools.wraps(func)
    def run(*args: object, **kwargs: object) -> R:
        with stop_on_signals():
            return func(*args, **kwargs)

    return run


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux
    PR_SET_PDEATHSIG); exit at once if the parent `parent_pid` is already gone (it may
    die between our start and the prctl call)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(libc_name, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if parent_gone(parent_pid):
        os._exit(1)


def parent_gone(parent_pid: int) -> bool:
    """Whether the process that started this one has exited (we were re-parented)."""
    return os.getppid() != parent_pid
