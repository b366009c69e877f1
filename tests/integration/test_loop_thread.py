"""LoopThread: a loop in its own thread, reached by post/call/submit; clean stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from lars.errors import LoopClosed
from lars.reactor.loop import LoopThread


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def thread(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[LoopThread]:
    lt = LoopThread("test-loop", use_uvloop=request.param)
    lt.start()
    yield lt
    lt.stop()


def test_runs_the_requested_loop_in_its_own_named_thread(thread: LoopThread) -> None:
    name = thread.call(lambda: threading.current_thread().name).result(5)
    assert name == "test-loop"
    assert thread.running
    assert not thread.in_thread()
    assert thread.call(thread.in_thread).result(5) is True
    loop_type = thread.call(lambda: type(asyncio.get_running_loop()).__module__).result(5)
    expected = "uvloop" if thread._use_uvloop else "asyncio"
    assert loop_type.startswith(expected)


def test_call_returns_results_and_exceptions(thread: LoopThread) -> None:
    assert thread.call(lambda a, b: a * b, 6, 7).result(5) == 42

    def fail() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        thread.call(fail).result(5)
    # The loop survives the failure.
    assert thread.call(lambda: "alive").result(5) == "alive"


def test_submit_runs_a_coroutine(thread: LoopThread) -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    assert thread.submit(work(1)).result(5) == 2


def test_posts_from_many_threads_keep_per_thread_order(thread: LoopThread) -> None:
    out: list[tuple[int, int]] = []
    per = 2000

    def produce(p: int) -> None:
        for i in range(per):
            thread.post(out.append, (p, i))

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    thread.call(lambda: None).result(5)  # everything posted before has run
    assert len(out) == 4 * per
    for p in range(4):
        assert [i for q, i in out if q == p] == list(range(per))


def test_post_after_stop_raises_loop_closed(no_leaks: None) -> None:
    lt = LoopThread("short-lived")
    lt.start()
    lt.stop()
    assert not lt.running
    with pytest.raises(LoopClosed):
        lt.post(print)
    with pytest.raises(LoopClosed):
        lt.call(print)
    with pytest.raises(LoopClosed):
        _ = lt.loop

    async def nothing() -> None:
        pass

    coro = nothing()
    with pytest.raises(LoopClosed):
        lt.submit(coro)
    coro.close()
    lt.stop()  # a second stop is harmless


def test_stop_runs_queued_work_and_cancels_pending_tasks(no_leaks: None) -> None:
    lt = LoopThread("cancel")
    lt.start()
    events: list[str] = []
    started = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    lt.submit(forever())
    assert started.wait(5)
    lt.post(events.append, "queued")
    lt.stop()
    assert events == ["queued", "cancelled"]


def test_stop_from_its_own_thread_is_refused(thread: LoopThread) -> None:
    with pytest.raises(RuntimeError, match="cannot join itself"):
        thread.call(thread.stop).result(5)
    assert thread.running


def test_start_twice_is_refused(thread: LoopThread) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        thread.start()


def test_many_start_stop_cycles_leave_nothing_behind(no_leaks: None) -> None:
    for i in range(20):
        lt = LoopThread(f"cycle{i}", use_uvloop=bool(i % 2))
        lt.start()
        assert lt.call(lambda: 1).result(5) == 1
        lt.stop()
