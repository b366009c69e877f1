"""`lars register|deregister|heartbeat MODID CMDID IP PORT`: self-registration from a shell.

Each sends one RegisterRequest (msgid 11) to the agent port of the module (the
(modid + cmdid) % 3 rule, gethost's agent flags) and returns when the agent answers,
printing one line (or one JSON object with --json). Exit codes: 0 answered (a deregister
of an instance the agent does not hold prints "not registered" and is 0 too); 1 the agent
refused the registration, or a heartbeat names an instance it does not hold; 2 bad
arguments; 3 no agent answers. The agent holds the registration after the command ends.
Client-only install: this module needs protobuf alone.
"""

from __future__ import annotations

import argparse
from typing import Any

from lars.client.cli import agent_args, client_from_args
from lars.client.config import REGISTER_TIMEOUT
from lars.client.registration import RegisterOp, RegisterResult, RegisterStatus, check_answered
from lars.client.signals import tool
from lars.errors import LarsError, ValidationError
from lars.jsonout import add_json_flag, print_json
from lars.protocol.checks import Check, parse_check
from lars.protocol.ipv4 import dotted_to_uint

__all__ = ["register"]

_CHECK_HELP = (
    "tcp (connect to IP:PORT; the default), http://HOST:PORT/PATH (a GET; any 2xx passes) "
    "or ttl:SECONDS (a `lars heartbeat` must arrive within SECONDS)"
)


class HeartbeatRefused(LarsError):
    """A heartbeat for an instance the agent does not hold (exit 1)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "register",
        help="register IP:PORT as a host of a module with this host's agent",
        description="The agent holds the registration (across its restarts), checks it "
        "and serves it through the route service until `lars deregister`.",
    )
    _instance_args(p)
    p.add_argument("--check", type=_check, default=Check(), metavar="CHECK", help=_CHECK_HELP)
    p.add_argument("--interval", type=float, help="seconds between checks (agent default 1)")
    p.add_argument(
        "--check-timeout", type=float, help="seconds a tcp/http check may take (default 0.5)"
    )
    p.add_argument("--fail-after", type=int, help="failures in a row to fail (default 2)")
    p.add_argument("--pass-after", type=int, help="successes in a row to pass (default 1)")
    p.set_defaults(func=tool(_run), op=RegisterOp.REGISTER)

    p = subparsers.add_parser("deregister", help="remove a registration from this host's agent")
    _instance_args(p)
    p.set_defaults(func=tool(_run), op=RegisterOp.DEREGISTER)

    p = subparsers.add_parser(
        "heartbeat", help="a sign of life for a registration with a ttl: check"
    )
    _instance_args(p)
    p.set_defaults(func=tool(_run), op=RegisterOp.HEARTBEAT)


def _instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("modid", metavar="MODID", type=_id, help="module id")
    p.add_argument("cmdid", metavar="CMDID", type=_id, help="command id")
    p.add_argument("ip", metavar="IP", type=_ipv4, help="the instance's IPv4 address")
    p.add_argument("port", metavar="PORT", type=_port, help="the instance's port")
    agent_args(p, timeout=REGISTER_TIMEOUT)
    add_json_flag(p)


def _run(args: argparse.Namespace) -> int:
    op: RegisterOp = args.op
    check: Check | None = None
    if op is RegisterOp.REGISTER:
        try:
            check = args.check.with_settings(
                interval=args.interval,
                timeout=args.check_timeout,
                fail_after=args.fail_after,
                pass_after=args.pass_after,
            )
        except ValidationError as exc:
            raise ValidationError(f"--check settings: {exc}") from None
    with client_from_args(args) as client:
        result = client.register_op(
            op, args.modid, args.cmdid, args.ip, args.port, check, args.timeout
        )
        if args.json:
            print_json(_as_json(result, check))
        elif result.answered:
            print(result.why + (f" (check {check.text})" if check is not None else ""))
        check_answered(result, client.agent_address(args.modid, args.cmdid), args.timeout)
    if result.status is RegisterStatus.REFUSED:
        raise LarsError(result.why)
    if result.status is RegisterStatus.NOT_REGISTERED and op is RegisterOp.HEARTBEAT:
        raise HeartbeatRefused(result.why)
    return 0


def _as_json(result: RegisterResult, check: Check | None) -> dict[str, Any]:
    return {
        "op": result.op.name.lower(),
        "modid": result.modid,
        "cmdid": result.cmdid,
        "ip": result.ip,
        "port": result.port,
        "check": None if check is None else check.text,
        "status": result.status.name,
        "detail": result.detail or None,
        "answer": result.why,
        "timed_out": result.timed_out,
        "refused": result.refused,
    }


def _id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 0x7FFFFFFF:
        raise argparse.ArgumentTypeError(f"must be in 0..2147483647, got {value}")
    return value


def _ipv4(text: str) -> str:
    try:
        dotted_to_uint(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1..65535, got {value}")
    return value


def _check(text: str) -> Check:
    try:
        return parse_check(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
