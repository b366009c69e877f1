"""LarsClient against a scripted fake agent on loopback (and against nothing at all)."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lars.client import HostResult, LarsClient, NoHostError, RetCode
from lars.errors import NetworkError
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.reactor.frame import decode_datagram, encode
from tests.integration.client_fake_agent import FakeAgent

HOSTS = {(1, 1): [("10.0.0.1", 9001), ("192.168.1.177", 9002)], (2, 3): [("10.0.0.3", 80)]}
TIMEOUT = 5.0  # generous: only reached when a test expects silence, which uses its own


@pytest.fixture
def agent(no_leaks: None) -> Iterator[FakeAgent]:
    with FakeAgent(HOSTS) as fake:
        yield fake


@pytest.fixture
def client(agent: FakeAgent) -> Iterator[LarsClient]:
    with LarsClient(ports=agent.ports, timeout=TIMEOUT) as c:
        yield c


def test_get_host_rotates_and_uses_the_shard_port(agent: FakeAgent, client: LarsClient) -> None:
    first, second = client.get_host(1, 1), client.get_host(1, 1)
    assert first == HostResult(RetCode.SUCC, 1, 1, "10.0.0.1", 9001)
    assert (second.ip, second.port) == ("192.168.1.177", 9002)
    assert client.get_host(2, 3).port == 80
    assert client.get_host(7, 7).retcode is RetCode.NOEXIST
    shards = {(m, c): s for s, _, m, c in agent.requests}
    assert shards == {(1, 1): 2, (2, 3): 2, (7, 7): 2}
    client.get_host(1, 2)
    client.get_host(1, 3)
    assert agent.requests[-2][0] == 0 and agent.requests[-1][0] == 1


def test_report_reaches_the_agent(agent: FakeAgent, client: LarsClient) -> None:
    client.report(1, 1, "192.168.1.177", 9002, 1)
    client.report(1, 2, "10.0.0.1", 9001, 0)
    wait_for(lambda: len(agent.reports) == 2)
    assert sorted(agent.reports) == [
        (0, 1, 2, "10.0.0.1", 9001, 0),
        (2, 1, 1, "192.168.1.177", 9002, 1),
    ]


def test_get_route_and_reg_init(agent: FakeAgent, client: LarsClient) -> None:
    route = client.get_route(1, 1)
    assert route.ok and [str(h) for h in route.hosts] == ["10.0.0.1:9001", "192.168.1.177:9002"]
    assert client.get_route(8, 8).retcode is RetCode.NOEXIST
    agent.route_after = 2  # the agent answers empty twice while it fetches the route
    assert client.reg_init(2, 3, delay=0.001) is RetCode.SUCC
    assert client.reg_init(5, 5, attempts=2, delay=0.001) is RetCode.NOEXIST
    asked = [r for r in agent.requests if r[1] == MsgId.API_GET_ROUTE_REQUEST and r[2] == 2]
    assert len(asked) == 3


@pytest.mark.parametrize("mode", ["stale", "other_module", "garbage"])
def test_stale_foreign_and_garbage_replies_are_skipped(
    agent: FakeAgent, client: LarsClient, mode: str
) -> None:
    agent.mode = mode
    for _ in range(3):
        result = client.get_host(1, 1)
        assert result.ok and result.port in (9001, 9002)
    stats = client.stats()
    assert (stats.skipped if mode != "garbage" else stats.bad) >= 3
    assert stats.timeouts == 0


def test_route_of_another_module_is_skipped(agent: FakeAgent, client: LarsClient) -> None:
    agent.mode = "other_module"
    route = client.get_route(1, 1)
    assert route.ok and 6666 not in [h.port for h in route.hosts]


def test_silent_agent_times_out_with_system_error(agent: FakeAgent, client: LarsClient) -> None:
    agent.mode = "silent"
    result = client.get_host(1, 1, timeout=0.05)
    assert result.retcode is RetCode.SYSTEM_ERROR and result.timed_out
    route = client.get_route(1, 1, timeout=0.05)
    assert route.retcode is RetCode.SYSTEM_ERROR and route.timed_out
    assert client.reg_init(1, 1, attempts=5, delay=0, timeout=0.01) is RetCode.SYSTEM_ERROR
    assert client.stats().timeouts == 3  # reg_init does not retry an agent that is silent
    agent.mode = "answer"  # the late replies of the silent calls never existed; new ones work
    assert client.get_host(1, 1).ok


def test_no_agent_gives_system_error_not_a_hang(no_leaks: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never read: datagrams vanish
        with LarsClient(ports=(port, port, port), timeout=0.05) as client:
            result = client.get_host(1, 1)
            assert result.retcode is RetCode.SYSTEM_ERROR and result.timed_out
    closed = port  # now nothing listens: the kernel refuses at once
    with LarsClient(ports=(closed, closed, closed), timeout=30) as client:
        result = client.get_host(1, 1)
        assert result.retcode is RetCode.SYSTEM_ERROR and not result.timed_out
        client.report(1, 1, "1.2.3.4", 5, 0)  # fire and forget: never raises
        client.report(1, 1, "1.2.3.4", 5, 0)
        assert client.get_route(1, 1).retcode is RetCode.SYSTEM_ERROR


class Flaky(Exception):
    pass


def test_call_reports_success_and_failure(agent: FakeAgent, client: LarsClient) -> None:
    with client.call(1, 1) as host:
        assert host.port == 9001
    with pytest.raises(Flaky), client.call(1, 1) as host:
        raise Flaky
    with pytest.raises(KeyError), client.call(1, 1, failures=(Flaky,)):
        raise KeyError("the caller's own bug, not the host's")
    with pytest.raises(KeyboardInterrupt), client.call(1, 1):
        raise KeyboardInterrupt
    wait_for(lambda: len(agent.reports) == 3)
    assert [(r[4], r[5] != 0) for r in agent.reports] == [
        (9001, False),
        (9002, True),
        (9001, False),
    ]
    with pytest.raises(NoHostError) as info, client.call(4, 4):
        pytest.fail("no host: the block must not run")
    assert info.value.result.retcode is RetCode.NOEXIST


def test_threads_share_one_client(agent: FakeAgent, client: LarsClient) -> None:
    results: list[HostResult] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            r = client.get_host(2, 3)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200 and all(r.ok for r in results)
    assert client.stats().skipped == 0


def test_closed_client_refuses_calls(agent: FakeAgent) -> None:
    client = LarsClient(ports=agent.ports)
    assert client.get_host(1, 1).ok
    client.close()
    for modid in (1, 2):  # a thread's existing socket, and one never opened
        with pytest.raises(NetworkError):
            client.get_host(modid, 1)
    with pytest.raises(NetworkError):
        client.report(1, 1, "1.2.3.4", 5, 0)


def wait_for(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.005)


def test_a_thread_that_exits_takes_its_sockets_along(agent: FakeAgent, client: LarsClient) -> None:
    assert client.get_host(1, 1).ok  # the main thread's socket stays
    before = len(os.listdir("/proc/self/fd"))

    def work() -> None:
        for modid in (1, 2, 3):
            assert client.get_host(modid, 1).retcode in (RetCode.SUCC, RetCode.NOEXIST)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    del thread
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before
    assert client.get_host(1, 1).ok


def test_an_old_refusal_does_not_fail_the_next_call(no_leaks: None) -> None:
    """A report sent while the agent was down leaves an ICMP error on the socket; once the
    agent is back, the next call must still be sent and answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LarsClient(ports=(port, port, port), timeout=5) as client:
        client.report(1, 1, "10.0.0.1", 80, 1)  # refused: nothing listens on the port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
            agent.bind(("127.0.0.1", port))  # the agent is back

            agent.settimeout(10)  # a client that never sends fails the test, not hangs it

            def answer() -> None:
                try:
                    data, peer = agent.recvfrom(65536)
                except TimeoutError:
                    return
                _, body = decode_datagram(data)
                req = lars_pb2.GetHostRequest.FromString(body)
                reply = lars_pb2.GetHostResponse(seq=req.seq, modid=1, cmdid=1, retcode=0)
                reply.host.ip, reply.host.port = dotted_to_wire("10.0.0.2"), 81
                agent.sendto(encode(MsgId.GET_HOST_RESPONSE, reply.SerializeToString()), peer)

            thread = threading.Thread(target=answer)
            thread.start()
            result = client.get_host(1, 1)
            thread.join()
        assert (result.retcode, result.ip, result.port) == (RetCode.SUCC, "10.0.0.2", 81)
