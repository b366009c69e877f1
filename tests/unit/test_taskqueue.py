"""TaskQueue: order per producer, many producer threads, coalesced wake-ups, close."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lars.errors import LoopClosed
from lars.reactor.loop import new_event_loop
from lars.reactor.taskqueue import DRAIN_BATCH, TaskQueue


class CountingWaker:
    """Wraps the queue's waker to count the eventfd writes."""

    def __init__(self, queue: TaskQueue) -> None:
        self.writes = 0
        waker = queue._waker
        real_wake: Callable[[], None] = waker.wake

        def wake() -> None:
            self.writes += 1
            real_wake()

        waker.wake = wake  # type: ignore[method-assign]


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = new_event_loop(request.param)
    yield loop
    loop.close()


def run_until(
    loop: asyncio.AbstractEventLoop, done: Callable[[], bool], timeout: float = 10
) -> None:
    async def wait() -> None:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.001)

    loop.run_until_complete(wait())


def test_posts_run_in_order_with_their_arguments(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    out: list[tuple[int, str]] = []
    for i in range(100):
        queue.post(lambda i, s: out.append((i, s)), i, f"#{i}")
    assert len(queue) == 100
    run_until(loop, lambda: len(out) == 100)
    assert out == [(i, f"#{i}") for i in range(100)]
    assert len(queue) == 0
    queue.close()


def test_many_posts_cost_one_wake_up(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    counter = CountingWaker(queue)
    queue.attach(loop)
    out: list[int] = []
    for i in range(10_000):
        queue.post(out.append, i)
    assert counter.writes == 1
    run_until(loop, lambda: len(out) == 10_000)
    assert out == list(range(10_000))
    # After the drain the next burst costs exactly one more wake-up.
    for i in range(500):
        queue.post(out.append, i)
    assert counter.writes == 2
    run_until(loop, lambda: len(out) == 10_500)
    queue.close()


def test_many_producer_threads_keep_per_producer_order_and_coalesce(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queue = TaskQueue()
    counter = CountingWaker(queue)
    queue.attach(loop)
    producers, per = 8, 2_000
    out: list[tuple[int, int]] = []
    start = threading.Barrier(producers)

    def produce(p: int) -> None:
        start.wait()
        for i in range(per):
            queue.post(out.append, (p, i))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The loop was not running: every post after the first saw the wake-up pending.
    assert counter.writes == 1
    run_until(loop, lambda: len(out) == producers * per)
    for p in range(producers):
        assert [i for q, i in out if q == p] == list(range(per))
    queue.close()


def test_producers_racing_a_running_loop_lose_nothing() -> None:
    """Posts while the loop drains concurrently: nothing lost, order kept, few wake-ups."""
    loop = new_event_loop(True)
    queue = TaskQueue()
    counter = CountingWaker(queue)
    producers, per = 4, 5_000
    out: list[tuple[int, int]] = []

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        queue.attach(loop)
        ready.set()
        loop.run_forever()

    ready = threading.Event()
    loop_thread = threading.Thread(target=run_loop)
    loop_thread.start()
    ready.wait()

    def produce(p: int) -> None:
        for i in range(per):
            queue.post(out.append, (p, i))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = threading.Event()
    queue.post(done.set)
    assert done.wait(10)
    queue.post(loop.stop)
    loop_thread.join(10)
    queue.close()
    loop.close()
    assert len(out) == producers * per
    for p in range(producers):
        assert [i for q, i in out if q == p] == list(range(per))
    # Every wake-up drains everything queued so far, so wake-ups are far fewer than posts.
    assert 1 <= counter.writes < producers * per // 2


def test_a_failing_task_is_counted_and_the_rest_still_run(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    out: list[int] = []

    def fail() -> None:
        raise ValueError("task bug")

    queue.post(out.append, 1)
    queue.post(fail)
    queue.post(out.append, 2)
    run_until(loop, lambda: len(out) == 2)
    assert out == [1, 2]
    assert queue.errors == 1
    assert "task bug" in caplog.text
    queue.close()


def test_a_big_backlog_yields_to_the_loop_between_batches(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    order: list[str] = []
    total = DRAIN_BATCH * 3
    queue.post(lambda: loop.call_soon(order.append, "io"))
    for i in range(total):
        queue.post(lambda i: order.append("last") if i == total - 1 else None, i)
    run_until(loop, lambda: "last" in order)
    # Another callback of the loop got its turn before the backlog finished.
    assert order == ["io", "last"]
    queue.close()


def test_tasks_may_post_more_tasks(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    out: list[int] = []

    def step(n: int) -> None:
        out.append(n)
        if n < 50:
            queue.post(step, n + 1)

    queue.post(step, 0)
    run_until(loop, lambda: len(out) == 51)
    assert out == list(range(51))
    queue.close()


def test_posts_before_attach_run_once_attached(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    out: list[int] = []
    queue.post(out.append, 1)
    queue.post(out.append, 2)
    queue.attach(loop)
    run_until(loop, lambda: len(out) == 2)
    assert out == [1, 2]
    queue.close()


def test_close_runs_what_is_queued_then_refuses_posts(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    out: list[int] = []
    for i in range(DRAIN_BATCH + 10):
        queue.post(out.append, i)
    queue.close()
    assert out == list(range(DRAIN_BATCH + 10))
    with pytest.raises(LoopClosed):
        queue.post(out.append, -1)
    queue.close()  # idempotent
    assert -1 not in out


def test_close_releases_the_wake_up_fd(loop: asyncio.AbstractEventLoop) -> None:
    before = set(os.listdir("/proc/self/fd"))
    queue = TaskQueue()
    opened = set(os.listdir("/proc/self/fd")) - before
    assert len(opened) == 1
    queue.attach(loop)
    queue.close()
    after = set(os.listdir("/proc/self/fd"))
    assert not opened & after


def test_post_accepts_any_callable_signature(loop: asyncio.AbstractEventLoop) -> None:
    queue = TaskQueue()
    queue.attach(loop)
    got: dict[str, Any] = {}
    queue.post(got.update, {"a": 1})
    queue.post(got.__setitem__, "b", 2)
    run_until(loop, lambda: len(got) == 2)
    assert got == {"a": 1, "b": 2}
    queue.close()


def test_a_post_racing_close_never_writes_to_a_released_fd() -> None:
    """close() on one thread while another thread is between its checks and its wake-up."""
    queue = TaskQueue()
    ran: list[int] = []
    waker = queue._waker
    real_wake: Callable[[], None] = waker.wake
    closer = threading.Thread(target=queue.close)

    def wake_while_closing() -> None:
        closer.start()
        closer.join(0.2)  # close() must wait for this wake-up, not release the fd under it
        real_wake()  # EBADF (or a write into a reused fd) if close() got there first

    waker.wake = wake_while_closing  # type: ignore[method-assign]
    queue.post(ran.append, 1)
    closer.join(5)
    assert not closer.is_alive()
    assert ran == [1]  # close() ran what was queued
    with pytest.raises(LoopClosed):
        queue.post(ran.append, 2)
