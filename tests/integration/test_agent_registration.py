"""Self-registration over real sockets: LarsClient/AsyncLarsClient <-> AgentService over
UDP, and the agent <-> scripted route services over TCP (a lars one that advertises
registrations and acknowledges syncs, and an original-style one that logs unknown ids)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.agent import regservice
from lars.agent.config import AgentConfig, ShardMode
from lars.agent.regconfig import RegisterConfig
from lars.agent.service import AgentService
from lars.client import AsyncLarsClient, LarsClient, RegisterStatus, RegistrationRefused
from lars.client.core import ClientCore
from lars.client.registration import RegisterOp
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.protocol.checks import Check
from lars.reactor import Connection, ReactorConfig, Router, TcpServer, backoff
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, wait_until

IP = "127.0.0.1"
WIRE_IP = dotted_to_wire(IP)


class RouteServiceDouble:
    """A route service that answers GetRouteRequest with no hosts. `advertise`: a lars one
    (registrations = true on every reply, InstanceSync recorded and acknowledged); else an
    original one, whose Router has no handler for the new ids and counts them as unknown."""

    def __init__(self, *, advertise: bool, lease: int = 10, port: int = 0) -> None:
        self.advertise = advertise
        self.lease = lease
        self.syncs: list[lars_pb2.InstanceSync] = []
        self._lock = threading.Lock()
        handlers = {int(MsgId.GET_ROUTE_REQUEST): self._on_request}
        if advertise:
            handlers[int(MsgId.INSTANCE_SYNC)] = self._on_sync
        self.router = Router(handlers)
        self.server = TcpServer(
            ReactorConfig(ip="127.0.0.1", port=port), self.router, name="dns-double"
        )

    def start(self) -> RouteServiceDouble:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def _on_request(self, conn: Connection, msgid: int, body: bytes) -> None:
        req = lars_pb2.GetRouteRequest.FromString(body)
        rsp = lars_pb2.GetRouteResponse(modid=req.modid, cmdid=req.cmdid)
        if self.advertise:
            rsp.registrations = True
        conn.send(int(MsgId.GET_ROUTE_RESPONSE), rsp.SerializeToString())

    def _on_sync(self, conn: Connection, msgid: int, body: bytes) -> None:
        sync = lars_pb2.InstanceSync.FromString(body)
        with self._lock:
            self.syncs.append(sync)
        ack = lars_pb2.InstanceSyncAck(seq=sync.seq, lease=self.lease)
        conn.send(int(MsgId.INSTANCE_SYNC_ACK), ack.SerializeToString())

    def last(self) -> lars_pb2.InstanceSync | None:
        with self._lock:
            return self.syncs[-1] if self.syncs else None

    def instances(self) -> dict[tuple[int, int, int, int], bool]:
        last = self.last()
        if last is None:
            return {}
        return {(i.modid, i.cmdid, i.ip, i.port): i.passing for i in last.instances}


class Listener:
    """A TCP listener standing in for a registered business process."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((IP, 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def reporter(no_leaks: None) -> Iterator[FakeReporter]:
    svc = FakeReporter().start()
    yield svc
    svc.stop()


@pytest.fixture
def lars_dns(no_leaks: None) -> Iterator[RouteServiceDouble]:
    svc = RouteServiceDouble(advertise=True).start()
    yield svc
    svc.stop()


@pytest.fixture
def original_dns(no_leaks: None) -> Iterator[RouteServiceDouble]:
    svc = RouteServiceDouble(advertise=False).start()
    yield svc
    svc.stop()


@pytest.fixture
def listener() -> Iterator[Listener]:
    one = Listener()
    yield one
    one.close()


def make_agent(
    dns: list[tuple[str, int]],
    reporter: FakeReporter,
    path: Path | None,
    mode: ShardMode = ShardMode.ONE_LOOP,
    use_uvloop: bool = True,
    **register: object,
) -> AgentService:
    cfg = AgentConfig(
        base_port=0,
        mode=mode,
        use_uvloop=use_uvloop,
        dns_addresses=tuple(dns),
        reporter_addresses=(reporter.address,),
        caller="10.1.2.3",
        register=RegisterConfig(
            path=None if path is None else str(path),
            check_interval=0.1,
            **register,  # type: ignore[arg-type]
        ),
    )
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.2))
    agent.start()
    return agent


def state(agent: AgentService, modid: int, cmdid: int, port: int) -> str | None:
    for item in agent.registrations_view(modid, cmdid):
        if item["port"] == port:
            return str(item["state"])
    return None


def test_register_check_deregister_over_udp(
    tmp_path: Path, reporter: FakeReporter, original_dns: RouteServiceDouble, listener: Listener
) -> None:
    agent = make_agent([original_dns.address], reporter, tmp_path / "regs.json")
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            reg = client.register(7, 1, IP, listener.port)
            assert reg.check == Check()
            wait_until(lambda: state(agent, 7, 1, listener.port) == "passing")
            assert reg.heartbeat().ok  # accepted for a tcp check too; changes nothing
            listener.close()  # the process dies: two failed connects later it is failing
            wait_until(lambda: state(agent, 7, 1, listener.port) == "failing")
            item = agent.registrations_view(7, 1)[0]
            assert "refused" in str(item["detail"]).lower()
            assert reg.deregister().ok
            assert agent.registrations_view(7, 1) == []
            again = reg.deregister()
            assert again.status is RegisterStatus.NOT_REGISTERED and again.answered
            assert client.heartbeat(7, 1, IP, listener.port).status is RegisterStatus.NOT_REGISTERED
            with client.registered(8, 1, IP, 9, check="ttl:30") as held:
                assert held.heartbeat().ok
                # registering is the first heartbeat: passing at the first look
                wait_until(lambda: state(agent, 8, 1, 9) == "passing")
            assert agent.registrations_view(8, 1) == []
        stats = agent.registrations.stats()
        assert stats.checks_failed >= 2 and stats.file_writes >= 4 and stats.refused == 0
    finally:
        agent.stop()


def test_limit_is_refused(
    tmp_path: Path, reporter: FakeReporter, original_dns: RouteServiceDouble
) -> None:
    agent = make_agent([original_dns.address], reporter, None, max_instances=2)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(1, 1, IP, 1, check="ttl:30")
            client.register(1, 1, IP, 2, check="ttl:30")
            with pytest.raises(RegistrationRefused, match="limit of 2"):
                client.register(1, 1, IP, 3, check="ttl:30")
    finally:
        agent.stop()


def test_the_async_client_registers_too(
    reporter: FakeReporter, original_dns: RouteServiceDouble, listener: Listener
) -> None:
    agent = make_agent([original_dns.address], reporter, None)

    async def main() -> None:
        async with AsyncLarsClient(ports=agent.ports, timeout=10.0) as client:
            async with client.registered(5, 5, IP, listener.port) as reg:
                beat = await reg.heartbeat()
                assert beat.ok
                assert state(agent, 5, 5, listener.port) is not None
            assert agent.registrations_view(5, 5) == []
            gone = await client.deregister(5, 5, IP, listener.port)
            assert gone.status is RegisterStatus.NOT_REGISTERED

    try:
        asyncio.run(main())
    finally:
        agent.stop()


def test_no_agent_is_no_answer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never read: the request times out
        with LarsClient(ports=(port, port, port)) as client:
            result = client.deregister(1, 2, IP, 80, timeout=0.2)
            assert not result.answered and result.timed_out


def test_syncs_go_only_after_the_capability_and_follow_every_change(
    reporter: FakeReporter, lars_dns: RouteServiceDouble, listener: Listener
) -> None:
    agent = make_agent([lars_dns.address], reporter, None)
    try:
        key = (3, 4, WIRE_IP, listener.port)
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(3, 4, IP, listener.port)
            wait_until(lambda: lars_dns.instances().get(key) is True)
            last = lars_dns.last()
            assert last is not None and last.agent == f"10.1.2.3:{agent.ports[0]}"
            wait_until(lambda: agent.registrations.syncs_acked >= 1)
            listener.close()
            wait_until(lambda: lars_dns.instances().get(key) is False)
            client.deregister(3, 4, IP, listener.port)
            wait_until(lambda: (s := lars_dns.last()) is not None and len(s.instances) == 0)
        seqs = [s.seq for s in lars_dns.syncs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert lars_dns.router.unknown_msgids == 0
    finally:
        agent.stop()


def test_an_original_route_service_never_receives_a_new_message_id(
    reporter: FakeReporter,
    original_dns: RouteServiceDouble,
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(regservice, "UNSERVED_AFTER", 0.3)
    agent = make_agent([original_dns.address], reporter, None)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(3, 4, IP, listener.port)
            client.register(3, 5, IP, 9, check="ttl:0.2")  # flaps to failing
            wait_until(lambda: state(agent, 3, 5, 9) == "failing")
            with LarsClient(ports=agent.ports, timeout=10.0) as c2:
                c2.get_route(3, 4)  # a real module: requests and replies on the connection
            wait_until(lambda: agent.stats().route_responses >= 1)
            wait_until(lambda: agent.registrations.stats().checks_run >= 5)
            wait_until(lambda: "does not accept registrations" in caplog.text)
            client.deregister(3, 4, IP, listener.port)
            agent.sync()
        assert original_dns.router.unknown_msgids == 0
        assert original_dns.syncs == [] and agent.registrations.syncs_sent == 0
        assert not agent.route_client.registrations_ok
    finally:
        agent.stop()


def test_the_capability_is_per_connection(
    reporter: FakeReporter, lars_dns: RouteServiceDouble
) -> None:
    """Synced to a lars route service, then moved to an original one (the capability of the
    old connection must not carry over): the original receives no new message id, not the
    renewals, not the sync of a change made while connected to it."""
    later = free_port()  # the original route service starts there once the agent synced
    agent = make_agent([lars_dns.address, ("127.0.0.1", later)], reporter, None)
    original = RouteServiceDouble(advertise=False, port=later)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(2, 2, IP, 9, check="ttl:30")
        wait_until(lambda: lars_dns.last() is not None and len(lars_dns.last().instances) == 1)
        original.start()
        lars_dns.stop()
        wait_until(lambda: agent.route_client.client.current_address == original.address)
        sent = agent.registrations.syncs_sent
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.deregister(2, 2, IP, 9)
            client.register(2, 2, IP, 10, check="ttl:30")
            client.get_route(2, 2)  # a GetRouteRequest and its reply on this connection
        ran = agent.registrations.stats().checks_run
        wait_until(lambda: agent.registrations.stats().checks_run > ran + 20)  # ticks passed
        wait_until(lambda: agent.stats().route_responses > 0)
        agent.sync()
        assert original.router.unknown_msgids == 0
        assert agent.registrations.syncs_sent == sent
        assert not agent.route_client.registrations_ok
    finally:
        agent.stop()
        original.stop()


def test_registrations_survive_an_agent_restart(
    tmp_path: Path, reporter: FakeReporter, lars_dns: RouteServiceDouble, listener: Listener
) -> None:
    path = tmp_path / "agent.registrations.json"
    agent = make_agent([lars_dns.address], reporter, path)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(6, 6, IP, listener.port)
            client.register(6, 6, IP, 9, check=Check.ttl_of(60, fail_after=3))
        wait_until(lambda: state(agent, 6, 6, listener.port) == "passing")
        agent.sync()
    finally:
        agent.stop()  # as on SIGTERM: nothing is deregistered
    assert path.exists()
    agent = make_agent([lars_dns.address], reporter, path)
    try:
        view = {item["port"]: item for item in agent.registrations_view(6, 6)}
        assert set(view) == {listener.port, 9}
        assert view[listener.port]["state"] == "passing"  # restored, not pending again
        assert view[9]["check"] == "ttl:60"
        entry = agent.registrations.registry.entries[(6, 6, WIRE_IP, 9)]
        assert entry.checker.settings.fail_after == 3
        key = (6, 6, WIRE_IP, listener.port)
        wait_until(lambda: lars_dns.instances().get(key) is True and len(lars_dns.instances()) == 2)
    finally:
        agent.stop()


def test_a_register_on_the_wrong_port_is_refused(
    reporter: FakeReporter, original_dns: RouteServiceDouble
) -> None:
    agent = make_agent([original_dns.address], reporter, None)
    try:
        core = ClientCore()
        req = core.register_request(RegisterOp.REGISTER, 1, 1, IP, 80, "ttl:30")  # shard 2
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(req.datagram, ("127.0.0.1", agent.ports[0]))
            result = core.match_register(req, sock.recv(65536))
        assert result is not None and result.status is RegisterStatus.REFUSED
        assert "wrong agent port" in result.detail
        assert agent.registrations_view(1, 1) == []
    finally:
        agent.stop()


def test_an_agent_without_registrations_sends_no_sync(
    reporter: FakeReporter, lars_dns: RouteServiceDouble
) -> None:
    agent = make_agent([lars_dns.address], reporter, None)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.get_route(2, 2)  # a reply advertising registrations arrives
            wait_until(lambda: agent.route_client.registrations_ok)
            assert client.heartbeat(2, 2, IP, 9).status is RegisterStatus.NOT_REGISTERED
        ticks = agent.registrations.stats()
        agent.sync()
        assert lars_dns.syncs == [] and ticks.syncs_sent == 0
        # one registration, then none: the empty set is sent (and acknowledged), then quiet
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(2, 2, IP, 9, check="ttl:30")
            wait_until(lambda: len(lars_dns.instances()) == 1)
            client.deregister(2, 2, IP, 9)
        wait_until(lambda: (s := lars_dns.last()) is not None and not s.instances)
        wait_until(lambda: agent.registrations.syncs_acked == len(lars_dns.syncs))
        sent = agent.registrations.syncs_sent
        agent.registrations.plan.lease = 0.3  # renewals every 0.1 s from now, were there any
        time.sleep(1.0)  # an observation window: ten renewal periods
        agent.sync()
        assert agent.registrations.syncs_sent == sent
    finally:
        agent.stop()


def test_sighup_applies_register_defaults_but_not_the_path(
    tmp_path: Path, reporter: FakeReporter, original_dns: RouteServiceDouble
) -> None:
    agent = make_agent([original_dns.address], reporter, tmp_path / "r.json")
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(4, 4, IP, 1, check="ttl:30")
            client.register(4, 4, IP, 2, check=Check.ttl_of(30, fail_after=7))
        old = agent.config
        new = dataclasses.replace(
            old,
            register=dataclasses.replace(
                old.register, fail_after=5, max_instances=3, path=str(tmp_path / "other.json")
            ),
        )
        result = agent.reload(new)
        assert {c.name for c in result.applied} == {"register.fail_after", "register.max_instances"}
        assert [c.name for c in result.restart] == ["register.path"]
        entries = agent.registrations.registry.entries
        assert entries[(4, 4, WIRE_IP, 1)].checker.settings.fail_after == 5  # the default
        assert entries[(4, 4, WIRE_IP, 2)].checker.settings.fail_after == 7  # its own
        assert agent.config.register.max_instances == 3
        assert agent.config.register.path == str(tmp_path / "r.json")
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            client.register(4, 4, IP, 3, check="ttl:30")
            with pytest.raises(RegistrationRefused, match="limit of 3"):
                client.register(4, 4, IP, 4, check="ttl:30")
    finally:
        agent.stop()


@pytest.mark.parametrize(
    ("mode", "use_uvloop"),
    [(ShardMode.THREADS, True), (ShardMode.ONE_LOOP, False)],
    ids=["threads", "one-loop-asyncio"],
)
def test_every_shard_layout_and_loop(
    mode: ShardMode,
    use_uvloop: bool,
    reporter: FakeReporter,
    lars_dns: RouteServiceDouble,
    listener: Listener,
) -> None:
    """Answers go back through each shard's own loop, checks run on the client loop."""
    agent = make_agent([lars_dns.address], reporter, None, mode, use_uvloop)
    try:
        with LarsClient(ports=agent.ports, timeout=10.0) as client:
            for modid in (1, 2, 3):  # one module on each shard
                client.register(modid, 1, IP, listener.port)
            keys = {(m, 1, WIRE_IP, listener.port) for m in (1, 2, 3)}
            wait_until(lambda: lars_dns.instances() == dict.fromkeys(keys, True))
            for modid in (1, 2, 3):
                assert client.deregister(modid, 1, IP, listener.port).ok
            wait_until(lambda: (s := lars_dns.last()) is not None and not s.instances)
    finally:
        agent.stop()
