"""RegistrationService's sync rules with a fake route-service link, on a loop driven by
the test (no sockets): when a sync goes, what it carries, renewals, the empty set, and
answers only after the file has the change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from lars.agent.regconfig import RegisterConfig
from lars.agent.regservice import RegistrationService
from lars.agent.regstore import RegistrationFile
from lars.client.core import ClientCore
from lars.client.registration import RegisterOp
from lars.protocol import lars_pb2
from lars.reactor.frame import decode_datagram


class FakeThread:
    """The loop thread's face: post/call run on a loop the test drives itself."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.running = True

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon(fn, *args)

    def call(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_result(fn(*args))
        return fut


class FakeLink:
    def __init__(self) -> None:
        self.registrations_ok = False
        self.connected = True
        self.sent: list[lars_pb2.InstanceSync] = []

    def send_sync(self, body: bytes) -> bool:
        if not self.registrations_ok:
            return False
        self.sent.append(lars_pb2.InstanceSync.FromString(body))
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def turn(loop: asyncio.AbstractEventLoop, seconds: float = 0.0) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))
    loop.run_until_complete(asyncio.sleep(0))


def request(core: ClientCore, op: RegisterOp, port: int) -> bytes:
    req = core.register_request(op, 1, 2, "127.0.0.1", port, "ttl:60")
    return decode_datagram(req.datagram)[1]


def make(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> tuple[RegistrationService, FakeLink, Clock]:
    link, clock = FakeLink(), Clock()
    svc = RegistrationService(
        FakeThread(loop),  # type: ignore[arg-type]
        RegisterConfig(),
        link=link,
        store=RegistrationFile(tmp_path / "r.json"),
        clock=clock,
        wall=lambda: 1000.0,
    )
    svc.agent = "10.0.0.1:8888"
    svc.start()
    return svc, link, clock


def test_sync_rules(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    svc, link, clock = make(loop, tmp_path)
    core = ClientCore()
    answers: list[bytes] = []
    try:
        svc.submit(request(core, RegisterOp.REGISTER, 1), "peer", answers.append)
        turn(loop)
        # one write for the registration, one for its first verdict (a ttl check is
        # judged at once: registering is the first heartbeat)
        assert len(answers) == 1 and svc.store is not None and svc.store.writes == 2
        assert link.sent == []  # not capable: nothing sent, however often it ticks
        turn(loop, 0.2)
        assert link.sent == []
        link.registrations_ok = True
        svc.on_capable()
        assert [len(s.instances) for s in link.sent] == [1]
        first = link.sent[0]
        assert first.agent == "10.0.0.1:8888" and first.instances[0].port == 1
        assert first.instances[0].passing and first.instances[0].check == "ttl:60"
        turn(loop, 0.1)
        assert len(link.sent) == 1  # nothing changed
        svc.on_ack(link.sent[-1].seq, 9)
        assert svc.plan.lease == 9.0
        # renewals: every lease/3 s of the injected clock, with the full set
        clock.now += 2.0
        turn(loop, 0.1)
        assert len(link.sent) == 1
        clock.now += 1.1
        turn(loop, 0.1)
        assert len(link.sent) == 2 and len(link.sent[-1].instances) == 1
        # the last deregister: the empty set until THAT sync is acknowledged
        svc.submit(request(core, RegisterOp.DEREGISTER, 1), "peer", answers.append)
        svc.on_ack(link.sent[-1].seq, 9)  # the ack of the previous sync arrives late
        turn(loop)
        assert list(link.sent[-1].instances) == []
        empty_seq = link.sent[-1].seq
        clock.now += 3.1
        turn(loop, 0.1)
        assert list(link.sent[-1].instances) == [] and link.sent[-1].seq > empty_seq
        svc.on_ack(link.sent[-1].seq, 9)
        n = len(link.sent)
        clock.now += 10
        turn(loop, 0.1)
        assert len(link.sent) == n  # acknowledged: quiet from now on
        seqs = [s.seq for s in link.sent]
        assert seqs == sorted(set(seqs))
        assert [lars_pb2.RegisterResponse.FromString(a[8:]).retcode for a in answers] == [0, 0]
    finally:
        svc.stop()


def test_a_resend_is_answered_without_a_second_write(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    svc, _link, _clock = make(loop, tmp_path)
    core = ClientCore()
    answers: list[bytes] = []
    try:
        body = request(core, RegisterOp.REGISTER, 7)
        svc.submit(body, "peer", answers.append)
        svc.submit(body, "peer", answers.append)  # resent before the first was answered
        for port in range(8, 18):  # arriving together: one write for all
            svc.submit(request(core, RegisterOp.REGISTER, port), "peer", answers.append)
        turn(loop)
        assert len(answers) == 12 and answers[0] == answers[1]
        # one write for the 11 registrations, one for their first verdicts
        assert svc.store is not None and svc.store.writes == 2
        assert len(RegistrationFile(tmp_path / "r.json").load()) == 11
    finally:
        svc.stop()
