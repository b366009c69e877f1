"""LoopThread: one event loop (uvloop when available) in one thread, with a task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from lars.errors import LoopClosed
from lars.reactor.taskqueue import TaskQueue
from lars.threads import ThreadHealth

__all__ = ["LoopThread", "new_event_loop"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A uvloop loop when asked for and installed, else the stdlib loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a base dependency
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class LoopThread:
    """Owns one thread running one event loop; other threads reach it through `post`.

    `start()` returns once the loop runs. `stop()` runs the registered stop hooks on the
    loop, cancels leftover tasks, closes the loop and joins the thread; afterwards no
    thread or file descriptor of it is left.

    A loop that ends any other way (SystemExit or KeyboardInterrupt raised by a callback,
    which asyncio lets through, or a stray `loop.stop()`) is a dead thread: it cannot be
    restarted (the loop is its state), so it is reported to `health` (lars.threads), which
    stops the daemon loudly.
    """

    def __init__(
        self, name: str, *, use_uvloop: bool = True, health: ThreadHealth | None = None
    ) -> None:
        self.name = name
        self._use_uvloop = use_uvloop
        self.health = health or ThreadHealth()
        self._stopping = False
        self.queue = TaskQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: BaseException | None = None
        self._exit_hooks: list[Callable[[], None]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise LoopClosed(f"loop thread {self.name} is not running")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def in_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"loop thread {self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def _run(self) -> None:
        try:
            loop = new_event_loop(self._use_uvloop)
            asyncio.set_event_loop(loop)
            self.queue.attach(loop)
        except BaseException as exc:  # pragma: no cover - resource exhaustion
            self._startup_error = exc
            self._ready.set()
            return
        self._loop = loop
        self._ready.set()
        error: BaseException | str = "its loop stopped unexpectedly"
        try:
            loop.run_forever()
        except BaseException as exc:  # reported below, never silent
            error = exc
        finally:
            self._shutdown(loop)
        if not self._stopping:
            self._loop = None  # closed: `loop` and post() say LoopClosed from now on
            if isinstance(error, BaseException):
                log.error("loop thread %s failed", self.name, exc_info=error)
            self.health.died(self.name, error)

    def at_exit(self, fn: Callable[[], None]) -> None:
        """Run fn() on this thread when its loop ends, however it ends (before the
        loop closes): what owns transports on the loop closes them even after a death."""
        self._exit_hooks.append(fn)

    def _shutdown(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.queue.close()
            for hook in self._exit_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("loop thread %s: exit hook failed", self.name)
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the loop soon; raise LoopClosed once stopped."""
        self.queue.post(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run fn(*args) on the loop and return a future with its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.post(run)
        return future

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the loop from another thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and join its thread; safe to call twice."""
        thread = self._thread
        if thread is None:
            self.queue.close()  # never started: release the wake-up fd
            return
        if not thread.is_alive():
            return
        if thread is threading.current_thread():
            raise RuntimeError("a loop thread cannot join itself")
        self._stopping = True
        loop = self._loop
        if loop is not None:
            try:
                self.queue.post(loop.stop)
            except LoopClosed:
                pass
        thread.join(timeout)
        if thread.is_alive():  # pragma: no cover - a handler blocked the loop
            log.error("loop thread %s did not stop within %.1fs", self.name, timeout)
        self._loop = None
