"""The agent's Registry (sans-I/O): requests, answers, due checks, versions and syncs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lars.agent.checks import CheckState
from lars.agent.regconfig import RegisterConfig
from lars.agent.registry import NOT_REGISTERED, OK, REFUSED, Registry
from lars.client.core import ClientCore
from lars.client.registration import RegisterOp
from lars.protocol import dotted_to_wire, lars_pb2
from lars.protocol.checks import Check
from lars.reactor.frame import decode_datagram

IP = "127.0.0.1"
PEER = ("127.0.0.1", 5000)


def body(
    op: RegisterOp,
    port: int = 9000,
    check: str | Check | None = None,
    core: ClientCore | None = None,
    modid: int = 1,
) -> bytes:
    req = (core or ClientCore()).register_request(op, modid, 2, IP, port, check)
    return decode_datagram(req.datagram)[1]


def answer(reply: bytes) -> lars_pb2.RegisterResponse:
    return lars_pb2.RegisterResponse.FromString(reply)


def key(port: int = 9000, modid: int = 1) -> tuple[int, int, int, int]:
    return (modid, 2, dotted_to_wire(IP), port)


def test_register_deregister_heartbeat() -> None:
    reg = Registry(RegisterConfig())
    core = ClientCore()
    out = reg.handle(body(RegisterOp.REGISTER, core=core), PEER, 0.0, 1000.0)
    assert answer(out.reply).retcode == OK and out.changed and out.key == key()
    entry = reg.entries[key()]
    assert entry.check == Check() and entry.registered_at == 1000.0
    assert entry.checker.state is CheckState.PENDING
    v = reg.version
    out = reg.handle(body(RegisterOp.HEARTBEAT, core=core), PEER, 1.0, 1001.0)
    assert answer(out.reply).retcode == OK and not out.changed  # tcp: a heartbeat changes nothing
    out = reg.handle(body(RegisterOp.DEREGISTER, core=core), PEER, 2.0, 1002.0)
    assert answer(out.reply).retcode == OK and out.changed and reg.version == v + 1
    assert reg.entries == {}
    out = reg.handle(body(RegisterOp.DEREGISTER, core=core), PEER, 3.0, 1003.0)
    assert answer(out.reply).retcode == NOT_REGISTERED and not out.changed
    out = reg.handle(body(RegisterOp.HEARTBEAT, core=core), PEER, 3.0, 1003.0)
    assert answer(out.reply).retcode == NOT_REGISTERED


def test_a_resent_request_gets_the_same_answer_and_is_applied_once() -> None:
    reg = Registry(RegisterConfig())
    core = ClientCore()
    reg.handle(body(RegisterOp.REGISTER, core=core), PEER, 0.0, 0.0)
    dereg = body(RegisterOp.DEREGISTER, core=core)
    first = reg.handle(dereg, PEER, 1.0, 1.0)
    again = reg.handle(dereg, PEER, 1.1, 1.1)  # the answer was lost, the client resent
    assert answer(first.reply) == answer(again.reply)
    assert answer(again.reply).retcode == OK and not again.changed
    other_peer = reg.handle(dereg, ("127.0.0.1", 5001), 1.2, 1.2)
    assert answer(other_peer.reply).retcode == NOT_REGISTERED


def test_refusals_say_why() -> None:
    reg = Registry(RegisterConfig(max_instances=1))
    msg = lars_pb2.RegisterRequest(seq=5, op=1)
    msg.instance.modid, msg.instance.cmdid, msg.instance.port = 1, 2, 80
    msg.instance.check = "ftp://x"
    out = answer(reg.handle(msg.SerializeToString(), PEER, 0, 0).reply)
    assert (out.seq, out.retcode) == (5, REFUSED) and "expected tcp" in out.detail
    msg.instance.check, msg.interval_ms = "tcp", 10  # 0.01 s: below 0.05
    assert "interval" in answer(reg.handle(msg.SerializeToString(), PEER, 0, 0).reply).detail
    msg.interval_ms, msg.instance.port = 0, 0
    assert "port" in answer(reg.handle(msg.SerializeToString(), PEER, 0, 0).reply).detail
    msg.instance.port, msg.instance.modid = 80, -1
    assert "modid" in answer(reg.handle(msg.SerializeToString(), PEER, 0, 0).reply).detail
    msg.instance.modid, msg.op = 1, 9
    assert "unknown op" in answer(reg.handle(msg.SerializeToString(), PEER, 0, 0).reply).detail
    assert answer(reg.handle(b"\xff\xff", PEER, 0, 0).reply).retcode == REFUSED
    assert reg.bad == 1 and reg.refused == 5
    assert reg.handle(body(RegisterOp.REGISTER, 1), PEER, 0, 0).changed
    out = answer(reg.handle(body(RegisterOp.REGISTER, 2), PEER, 0, 0).reply)
    assert out.retcode == REFUSED and "limit of 1" in out.detail
    # re-registering the one it holds is not refused
    assert answer(reg.handle(body(RegisterOp.REGISTER, 1, "ttl:5"), PEER, 0, 0).reply).retcode == OK


def test_per_registration_settings_and_defaults() -> None:
    reg = Registry(RegisterConfig(check_interval=2.0, fail_after=3))
    check = Check.http("http://127.0.0.1:8080/health", timeout=0.2, pass_after=2)
    reg.handle(body(RegisterOp.REGISTER, check=check), PEER, 0, 0)
    entry = reg.entries[key()]
    assert entry.check == check
    s = entry.checker.settings
    assert (s.interval, s.timeout, s.fail_after, s.pass_after, s.ttl) == (2.0, 0.2, 3, 2, 0.0)


def test_reregistering_keeps_the_state_and_changes_only_when_the_check_differs() -> None:
    reg = Registry(RegisterConfig())
    reg.add(key(), Check(), 0.0, 0.0, CheckState.PASSING)
    v = reg.version
    assert not reg.add(key(), Check(), 1.0, 1.0)  # the same: nothing to tell anyone
    assert reg.add(key(), Check.ttl_of(10), 2.0, 2.0)
    assert reg.version == v + 1
    assert reg.entries[key()].checker.state is CheckState.PASSING
    assert reg.entries[key()].registered_at == 0.0


def test_due_probes_and_ttl_checks() -> None:
    reg = Registry(RegisterConfig())
    reg.add(key(1), Check(), 0.0, 0.0)
    reg.add(key(2), Check.ttl_of(1.5), 0.0, 0.0)
    due = reg.due(0.0, limit=10)
    assert [e.key for e in due] == [key(1)]  # the ttl one is judged inside due()
    assert [(e.key, t.new) for e, t in reg.take_transitions()] == [(key(2), CheckState.PASSING)]
    v = reg.version
    reg.started(due[0], 0.0)
    assert reg.due(0.5, limit=10) == []
    t = reg.finished(due[0], True, 0.1)
    assert t is not None and t.new is CheckState.PASSING and reg.version == v + 1
    assert reg.due(0.9, limit=10) == []
    assert [e.key for e in reg.due(1.0, limit=10)] == [key(1)]
    # ttl: no heartbeat for 2 intervals past the ttl -> failing
    reg.due(2.0, limit=10)
    reg.due(3.0, limit=10)
    assert reg.entries[key(2)].checker.state is CheckState.FAILING
    assert reg.ttl_runs == 4 and reg.ttl_failed == 2
    # a heartbeat request brings it back at once
    out = reg.handle(body(RegisterOp.HEARTBEAT, 2), PEER, 3.1, 3.1)
    assert out.changed and out.transition is not None and out.transition.new is CheckState.PASSING


def test_limit_and_removed_entries() -> None:
    reg = Registry(RegisterConfig())
    for port in range(1, 6):
        reg.add(key(port), Check(), 0.0, 0.0)
    first = reg.due(0.0, limit=2)
    assert len(first) == 2
    for e in first:
        reg.started(e, 0.0)
    rest = reg.due(0.0, limit=10)
    assert len(rest) == 3
    reg.deregister(rest[0].key)
    assert reg.finished(rest[0], True, 0.1) is None  # removed meanwhile: ignored


def test_sync_body_is_the_full_set_with_verdicts() -> None:
    reg = Registry(RegisterConfig())
    reg.add(key(1), Check(), 0.0, 0.0, CheckState.PASSING)
    reg.add(key(2), Check.ttl_of(3), 0.0, 0.0)
    msg = lars_pb2.InstanceSync.FromString(reg.sync_body("10.0.0.1:8888", 7))
    assert (msg.agent, msg.seq) == ("10.0.0.1:8888", 7)
    got = sorted((i.port, i.check, i.passing, i.modid, i.cmdid, i.ip) for i in msg.instances)
    ip = dotted_to_wire(IP)
    assert got == [(1, "tcp", True, 1, 2, ip), (2, "ttl:3", False, 1, 2, ip)]
    assert (
        lars_pb2.InstanceSync.FromString(Registry(RegisterConfig()).sync_body("a", 1)).instances
        == []
    )
    assert reg.counts() == {CheckState.PENDING: 1, CheckState.PASSING: 1, CheckState.FAILING: 0}


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(list(RegisterOp)), st.integers(1, 4)), max_size=40))
def test_the_set_follows_register_and_deregister(ops: list[tuple[RegisterOp, int]]) -> None:
    reg = Registry(RegisterConfig())
    core = ClientCore()
    model: set[int] = set()
    for i, (op, port) in enumerate(ops):
        before = reg.version
        out = reg.handle(body(op, port, core=core), PEER, float(i), float(i))
        code = answer(out.reply).retcode
        if op is RegisterOp.REGISTER:
            assert code == OK
            assert out.changed == (port not in model)
            model.add(port)
        elif op is RegisterOp.DEREGISTER:
            assert code == (OK if port in model else NOT_REGISTERED)
            model.discard(port)
        else:
            assert code == (OK if port in model else NOT_REGISTERED)
        assert (reg.version != before) == out.changed
    assert {k[3] for k in reg.entries} == model


def test_a_request_on_another_shards_port_is_refused() -> None:
    reg = Registry(RegisterConfig())
    right = (1 + 2) % 3
    out = reg.handle(body(RegisterOp.REGISTER), PEER, 0.0, 0.0, shard=(right + 1) % 3)
    assert answer(out.reply).retcode == REFUSED and "wrong agent port" in answer(out.reply).detail
    out = reg.handle(body(RegisterOp.REGISTER, 9001), PEER, 0.0, 0.0, shard=right)
    assert answer(out.reply).retcode == OK


def test_the_set_must_fit_one_instance_sync() -> None:
    reg = Registry(RegisterConfig(max_instances=1_000_000))
    url = "http://127.0.0.1:8080/" + "p" * 400
    added = 0
    refused = None
    for port in range(1, 2000):
        out = reg.handle(body(RegisterOp.REGISTER, port, Check.http(url)), PEER, 0.0, 0.0)
        if answer(out.reply).retcode != OK:
            refused = answer(out.reply).detail
            break
        added += 1
    assert refused is not None and "would not fit one InstanceSync" in refused
    assert 100 < added < 200
    sync = reg.sync_body("10.0.0.1:8888", 2**32 - 1)
    assert len(sync) <= 65527 and len(lars_pb2.InstanceSync.FromString(sync).instances) == added
    assert reg.sync_bytes == sum(e.size for e in reg.entries.values())
    reg.deregister(next(iter(reg.entries)))
    assert reg.sync_bytes == sum(e.size for e in reg.entries.values())


def test_a_full_probe_budget_never_delays_ttl_verdicts() -> None:
    reg = Registry(RegisterConfig())
    for port in range(1, 4):
        reg.add(key(port), Check(), 0.0, 0.0)
    reg.add(key(10), Check.ttl_of(0.5), 0.0, 0.0)
    assert reg.due(0.0, limit=0) == []
    assert [t.new for _, t in reg.take_transitions()] == [CheckState.PASSING]
    reg.due(1.0, limit=0)
    reg.due(2.0, limit=0)
    assert reg.entries[key(10)].checker.state is CheckState.FAILING  # judged all the same
    assert len(reg.due(2.0, limit=10)) == 3  # the probes waited, none lost
    assert reg.next_due() == 3.0  # the ttl check's next


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_get_an_answer_never_an_exception(data: bytes) -> None:
    reg = Registry(RegisterConfig(max_instances=5))
    out = reg.handle(data, PEER, 0.0, 0.0, shard=0)
    msg = answer(out.reply)
    assert msg.retcode in (OK, REFUSED, NOT_REGISTERED)
    assert len(reg.entries) <= 1


@settings(max_examples=200)
@given(
    modid=st.integers(-(2**31), 2**31 - 1),
    cmdid=st.integers(-(2**31), 2**31 - 1),
    ip=st.integers(-(2**31), 2**31 - 1),
    port=st.integers(-(2**31), 2**31 - 1),
    check=st.text(max_size=40),
    interval=st.integers(0, 2**32 - 1),
    fail_after=st.integers(0, 2**32 - 1),
)
def test_any_register_request_is_applied_or_refused_with_a_reason(
    modid: int, cmdid: int, ip: int, port: int, check: str, interval: int, fail_after: int
) -> None:
    msg = lars_pb2.RegisterRequest(seq=1, op=1, interval_ms=interval, fail_after=fail_after)
    msg.instance.modid, msg.instance.cmdid, msg.instance.ip, msg.instance.port = (
        modid,
        cmdid,
        ip,
        port,
    )
    msg.instance.check = check
    reg = Registry(RegisterConfig())
    out = answer(reg.handle(msg.SerializeToString(), PEER, 0.0, 0.0).reply)
    if out.retcode == OK:
        entry = reg.entries[(modid, cmdid, ip, port)]
        assert modid >= 0 and cmdid >= 0 and 1 <= port <= 65535
        s = entry.checker.settings
        assert 0.05 <= s.interval <= 3600 and 1 <= s.fail_after <= 100
    else:
        assert out.retcode == REFUSED and out.detail and reg.entries == {}
