"""Self-registration on the client side: Check parsing, the core's requests and reply
matching, the CLI's argument checks (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.cli import build_parser
from lars.client.core import ClientCore
from lars.client.registration import (
    RegisterOp,
    RegisterResult,
    RegisterStatus,
    RegistrationRefused,
    check_registered,
)
from lars.errors import NotAnswering, ValidationError
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.protocol.checks import Check, CheckKind, parse_check
from lars.reactor.frame import decode_datagram, encode


@pytest.mark.parametrize(
    ("text", "kind", "shown"),
    [
        ("tcp", CheckKind.TCP, "tcp"),
        ("", CheckKind.TCP, "tcp"),
        ("http://127.0.0.1:8080/health", CheckKind.HTTP, "http://127.0.0.1:8080/health"),
        ("http://svc.local/", CheckKind.HTTP, "http://svc.local/"),
        ("ttl:15", CheckKind.TTL, "ttl:15"),
        ("ttl:0.5", CheckKind.TTL, "ttl:0.5"),
    ],
)
def test_check_texts(text: str, kind: CheckKind, shown: str) -> None:
    check = parse_check(text)
    assert check.kind is kind and check.text == shown
    assert parse_check(check.text) == check


@pytest.mark.parametrize(
    "text",
    ["udp", "https://x/", "http://", "http://x:0/", "http://x:99999/", "ttl:", "ttl:abc",
     "ttl:0", "ttl:-1", "ttl:nan", "ttl:inf", "http://a b/", "x" * 600],
)  # fmt: skip
def test_bad_check_texts(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_check(text)


def test_http_target_and_settings_ranges() -> None:
    assert Check.http("http://h/p?q=1").http_target() == ("h", 80, "/p?q=1")
    assert Check.http("http://h:81").http_target() == ("h", 81, "/")
    for bad in ({"interval": 0.01}, {"timeout": 0.0}, {"fail_after": 0}, {"pass_after": 101},
                {"fail_after": 2.0}, {"interval": float("nan")}):  # fmt: skip
        with pytest.raises(ValidationError):
            Check(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Check(kind=CheckKind.TCP, url="http://x/")
    assert Check().with_settings(interval=2.0).interval == 2.0
    assert parse_check(None) == Check()
    with pytest.raises(ValidationError):
        parse_check(5)  # type: ignore[arg-type]


def test_register_request_carries_the_check_and_settings() -> None:
    core = ClientCore()
    check = Check.ttl_of(5, interval=0.25, timeout=0.1, fail_after=3, pass_after=2)
    req = core.register_request(RegisterOp.REGISTER, 4, 5, "192.168.1.177", 80, check)
    assert req.shard == (4 + 5) % 3 and req.op is RegisterOp.REGISTER
    msgid, body = decode_datagram(req.datagram)
    assert msgid == MsgId.REGISTER_REQUEST
    msg = lars_pb2.RegisterRequest.FromString(body)
    assert (msg.seq, msg.op) == (req.seq, 1)
    inst = msg.instance
    assert (inst.modid, inst.cmdid, inst.ip, inst.port, inst.check) == (
        4, 5, dotted_to_wire("192.168.1.177"), 80, "ttl:5"
    )  # fmt: skip
    assert (msg.interval_ms, msg.timeout_ms, msg.fail_after, msg.pass_after) == (250, 100, 3, 2)
    dereg = core.register_request(RegisterOp.DEREGISTER, 4, 5, "192.168.1.177", 80, check)
    msg = lars_pb2.RegisterRequest.FromString(decode_datagram(dereg.datagram)[1])
    assert msg.instance.check == "" and msg.interval_ms == 0 and dereg.seq == req.seq + 1


@pytest.mark.parametrize(
    ("modid", "ip", "port"),
    [
        (-1, "1.2.3.4", 80),
        (1, "1.2.3", 80),
        (1, "1.2.3.4", 0),
        (1, "1.2.3.4", 65536),
        (1, "::1", 1),
    ],
)
def test_register_request_refuses_bad_arguments(modid: int, ip: str, port: int) -> None:
    with pytest.raises(ValidationError):
        ClientCore().register_request(RegisterOp.REGISTER, modid, 1, ip, port)


def test_any_ipv4_is_accepted_loopback_included() -> None:
    core = ClientCore()
    for ip in ("127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3"):
        core.register_request(RegisterOp.REGISTER, 1, 1, ip, 1)


def reply(seq: int, retcode: int, detail: str = "") -> bytes:
    body = lars_pb2.RegisterResponse(seq=seq, retcode=retcode, detail=detail).SerializeToString()
    return encode(int(MsgId.REGISTER_RESPONSE), body)


def test_matching_replies() -> None:
    core = ClientCore()
    req = core.register_request(RegisterOp.DEREGISTER, 1, 2, "127.0.0.1", 9)
    assert core.match_register(req, reply(req.seq - 1, 0)) is None and core.skipped == 1
    assert core.match_register(req, b"junk") is None and core.bad == 1
    get_host = encode(int(MsgId.GET_HOST_RESPONSE), b"")
    assert core.match_register(req, get_host) is None and core.bad == 2
    result = core.match_register(req, reply(req.seq, 3))
    assert result is not None and result.status is RegisterStatus.NOT_REGISTERED
    assert result.why == "not registered: 1:2 127.0.0.1:9"
    refused = core.match_register(req, reply(req.seq, 2, "limit"))
    assert (
        refused is not None and refused.status is RegisterStatus.REFUSED and "limit" in refused.why
    )
    odd = core.match_register(req, reply(req.seq, 77))
    assert odd is not None and odd.status is RegisterStatus.REFUSED and odd.detail == "retcode 77"


def test_check_registered() -> None:
    base = dict(op=RegisterOp.REGISTER, modid=1, cmdid=2, ip="127.0.0.1", port=9)
    check_registered(RegisterResult(status=RegisterStatus.OK, **base), "a:1", 1.0)  # type: ignore[arg-type]
    with pytest.raises(NotAnswering, match="no reply within 1 s"):
        check_registered(
            RegisterResult(status=RegisterStatus.NO_ANSWER, timed_out=True, **base), "a:1", 1.0
        )  # type: ignore[arg-type]
    with pytest.raises(NotAnswering, match="nothing listens"):
        check_registered(
            RegisterResult(status=RegisterStatus.NO_ANSWER, refused=True, **base), "a:1", 1.0
        )  # type: ignore[arg-type]
    with pytest.raises(RegistrationRefused, match="refused: why"):
        check_registered(
            RegisterResult(status=RegisterStatus.REFUSED, detail="why", **base), "a:1", 1.0
        )  # type: ignore[arg-type]


@given(seq=st.integers(0, 2**32 - 1), code=st.integers(-(2**31), 2**31 - 1))
def test_any_reply_with_the_seq_is_a_result(seq: int, code: int) -> None:
    core = ClientCore(first_seq=seq)
    req = core.register_request(RegisterOp.HEARTBEAT, 1, 2, "127.0.0.1", 9)
    result = core.match_register(req, reply(req.seq, code))
    assert result is not None and result.answered
    assert result.ok == (code == 0)


def parse(argv: list[str]) -> object:
    return build_parser(argv).parse_args(argv)


def test_cli_parsing() -> None:
    args = parse(
        ["register", "1", "2", "127.0.0.1", "9000", "--check", "ttl:5", "--fail-after", "3"]
    )
    assert (args.modid, args.cmdid, args.ip, args.port) == (1, 2, "127.0.0.1", 9000)  # type: ignore[attr-defined]
    assert args.check == Check.ttl_of(5) and args.fail_after == 3  # type: ignore[attr-defined]
    assert args.timeout == 1.0 and args.agent_port == 8888  # type: ignore[attr-defined]
    args = parse(["deregister", "1", "2", "10.0.0.1", "80", "--agent-ports", "1,2,3", "--json"])
    assert args.agent_ports == (1, 2, 3) and args.json  # type: ignore[attr-defined]
    parse(["heartbeat", "1", "2", "10.0.0.1", "80", "--agent-ip", "127.0.0.2", "--timeout", "0.5"])


@pytest.mark.parametrize(
    "argv",
    [["register", "1", "2", "127.0.0.1"],
     ["register", "x", "2", "127.0.0.1", "80"],
     ["register", "-1", "2", "127.0.0.1", "80"],
     ["register", "1", "2", "127.0.0.256", "80"],
     ["register", "1", "2", "127.0.0.1", "0"],
     ["register", "1", "2", "127.0.0.1", "80", "--check", "udp"],
     ["deregister", "1", "2", "127.0.0.1", "80", "--check", "tcp"]],
)  # fmt: skip
def test_cli_refuses_bad_arguments_with_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
