"""AsyncLarsClient against the scripted fake agent, on both uvloop and the stdlib loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from lars.client import AsyncLarsClient, HostResult, NoHostError, RetCode
from lars.errors import NetworkError
from lars.reactor import new_event_loop
from tests.integration.client_fake_agent import FakeAgent

HOSTS = {(1, 1): [("10.0.0.1", 9001), ("192.168.1.177", 9002)], (2, 3): [("10.0.0.3", 80)]}
T = TypeVar("T")


@pytest.fixture(scope="session")
def warm_uvloop() -> None:
    """uvloop opens a process-wide pipe on its first run; open it before the leak check."""
    loop = new_event_loop(use_uvloop=True)
    loop.run_until_complete(asyncio.sleep(0.001))
    loop.close()


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def run(
    request: pytest.FixtureRequest, warm_uvloop: None, no_leaks: None
) -> Iterator[Callable[..., Any]]:
    loop = new_event_loop(use_uvloop=request.param)

    def run_(coro: Awaitable[T]) -> T:
        return loop.run_until_complete(coro)

    try:
        yield run_
    finally:
        loop.close()


@pytest.fixture
def agent(run: Any) -> Iterator[FakeAgent]:
    with FakeAgent(HOSTS) as fake:
        yield fake


async def until(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


def test_calls(agent: FakeAgent, run: Callable[..., Any]) -> None:
    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=5) as client:
            assert await client.get_host(1, 1) == HostResult(RetCode.SUCC, 1, 1, "10.0.0.1", 9001)
            assert (await client.get_host(1, 1)).ip == "192.168.1.177"
            assert (await client.get_host(9, 9)).retcode is RetCode.NOEXIST
            route = await client.get_route(1, 1)
            assert [h.port for h in route.hosts] == [9001, 9002]
            assert (await client.get_route(5, 6)).retcode is RetCode.NOEXIST
            agent.route_after = 1
            assert await client.reg_init(2, 3, delay=0.001) is RetCode.SUCC
            await client.report(2, 3, "10.0.0.3", 80, 0)
            await until(lambda: len(agent.reports) == 1)
            assert agent.reports == [(2, 2, 3, "10.0.0.3", 80, 0)]

    run(main())


def test_many_in_flight_are_matched_by_seq(agent: FakeAgent, run: Callable[..., Any]) -> None:
    async def main() -> list[HostResult]:
        async with AsyncLarsClient(ports=agent.ports, timeout=10) as client:
            calls = [client.get_host(m, c) for m, c in [(1, 1), (2, 3), (4, 4)] * 100]
            results = await asyncio.gather(*calls)
            assert client.stats().skipped == 0 and not client._hosts
            return results

    results = run(main())
    assert [r.retcode for r in results[:3]] == [RetCode.SUCC, RetCode.SUCC, RetCode.NOEXIST]
    assert all(r.port == 80 for r in results[1::3])


@pytest.mark.parametrize("mode", ["stale", "other_module", "garbage"])
def test_unmatched_replies_are_skipped(
    agent: FakeAgent, run: Callable[..., Any], mode: str
) -> None:
    agent.mode = mode

    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=5) as client:
            for _ in range(3):
                result = await client.get_host(1, 1)
                assert result.ok and result.port in (9001, 9002)
            if mode == "other_module":
                route = await client.get_route(1, 1)
                assert 6666 not in [h.port for h in route.hosts]
            stats = client.stats()
            assert (stats.bad if mode == "garbage" else stats.skipped) >= 3

    run(main())


def test_silence_and_no_agent_time_out(agent: FakeAgent, run: Callable[..., Any]) -> None:
    agent.mode = "silent"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]

    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=0.05) as client:
            result = await client.get_host(1, 1)
            assert result.retcode is RetCode.SYSTEM_ERROR and result.timed_out
            route = await client.get_route(1, 1)
            assert route.retcode is RetCode.SYSTEM_ERROR and route.timed_out
            assert await client.reg_init(1, 1, attempts=5, delay=0, timeout=0.01) is (
                RetCode.SYSTEM_ERROR
            )
            assert client.stats().timeouts == 3 and not client._hosts and not client._routes
        async with AsyncLarsClient(ports=(closed,) * 3, timeout=30) as client:
            # Nothing listens: the kernel's refusal ends the calls at once, not the timeout.
            await client.report(1, 1, "1.2.3.4", 5, 0)
            result = await asyncio.wait_for(client.get_host(1, 1), 20)
            assert result.retcode is RetCode.SYSTEM_ERROR and not result.timed_out
            route = await asyncio.wait_for(client.get_route(2, 2), 20)
            assert route.retcode is RetCode.SYSTEM_ERROR and not route.timed_out
            assert client.stats().send_errors >= 2 and not client._hosts and not client._routes

    run(main())


def test_close_ends_calls_in_flight(agent: FakeAgent, run: Callable[..., Any]) -> None:
    agent.mode = "silent"

    async def main() -> None:
        client = AsyncLarsClient(ports=agent.ports, timeout=30)
        await client.open()
        host = asyncio.ensure_future(client.get_host(1, 1))
        route = asyncio.ensure_future(client.get_route(1, 1))
        await until(lambda: len(agent.requests) == 2)
        client.close()
        assert (await host).retcode is RetCode.SYSTEM_ERROR
        assert (await route).retcode is RetCode.SYSTEM_ERROR
        with pytest.raises(NetworkError):
            await client.get_host(1, 1)

    run(main())


def test_not_open_raises(run: Callable[..., Any]) -> None:
    async def main() -> None:
        client = AsyncLarsClient()
        with pytest.raises(NetworkError):
            await client.get_host(1, 1)
        with pytest.raises(NetworkError):
            await client.report(1, 1, "1.2.3.4", 5, 0)

    run(main())


class Flaky(Exception):
    pass


def test_async_call_reports(agent: FakeAgent, run: Callable[..., Any]) -> None:
    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=5, failures=(Flaky,)) as client:
            async with client.call(1, 1) as host:
                assert host.port == 9001
            with pytest.raises(Flaky):
                async with client.call(1, 1):
                    raise Flaky
            with pytest.raises(ValueError):
                async with client.call(1, 1):
                    raise ValueError("not the host's fault")
            task = asyncio.ensure_future(_cancelled_call(client))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(NoHostError):
                async with client.call(3, 3):
                    pytest.fail("no host: the block must not run")
            await until(lambda: len(agent.reports) == 3)
            await asyncio.sleep(0.05)  # a report for the cancelled call would be here by now
            assert [(r[4], r[5] != 0) for r in agent.reports] == [
                (9001, False),
                (9002, True),
                (9001, False),
            ]

    run(main())


async def _cancelled_call(client: AsyncLarsClient) -> None:
    async with client.call(1, 1):
        await asyncio.sleep(60)


def test_timeouts_in_and_out_of_deadline_order(agent: FakeAgent, run: Callable[..., Any]) -> None:
    """Calls with the same timeout share one sweeper; a shorter one after a longer one gets
    its own timer and still ends first."""
    agent.mode = "silent"

    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=0.05) as client:
            slow = asyncio.ensure_future(client.get_host(1, 1, timeout=30))
            await until(lambda: len(agent.requests) == 1)
            quick = await client.get_host(1, 1, timeout=0.01)
            assert quick.timed_out and not slow.done()
            burst = await asyncio.gather(*(client.get_host(2, 3) for _ in range(50)))
            assert all(r.timed_out for r in burst) and not slow.done()
            assert client.stats().timeouts == 51
            agent.mode = "answer"
            assert (await client.get_host(1, 1)).ok
            client.close()
            assert (await slow).retcode is RetCode.SYSTEM_ERROR and not client._hosts

    run(main())
