"""`lars gethost|getroute|report|simulator|qps` and `lars bench agent`: the Lars tools.

Each talks to the agent through LarsClient. Flags shared by all: --agent-ip,
--agent-port (base port; the module's port is base + (modid + cmdid) % 3) or
--agent-ports P0,P1,P2, and --timeout per call.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from typing import Any

from lars.client.config import DEFAULT_AGENT_IP, DEFAULT_BASE_PORT, DEFAULT_TIMEOUT
from lars.client.core import FAILURE_RETCODE
from lars.client.qps import add_qps_arguments, run_qps
from lars.client.sync import LarsClient
from lars.protocol import RetCode

__all__ = ["client_from_args", "register"]

INIT_ATTEMPTS = 20
INIT_DELAY = 0.1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("gethost", help="ask the agent for one host of a module")
    _module_args(p)
    _init_args(p)
    p.set_defaults(func=_gethost)

    p = subparsers.add_parser("getroute", help="list the hosts the agent holds for a module")
    _module_args(p)
    _init_args(p)
    p.set_defaults(func=_getroute)

    p = subparsers.add_parser("report", help="report one call result to the agent")
    _module_args(p)
    p.add_argument("ip", metavar="IP", help="the host's dotted IPv4 address")
    p.add_argument("port", metavar="PORT", type=int, help="the host's port")
    p.add_argument("retcode", metavar="RETCODE", type=int, help="0 success, else failure")
    p.set_defaults(func=_report)

    p = subparsers.add_parser("simulator", help="call with random failures; print per-host counts")
    _module_args(p)
    p.add_argument(
        "err_rate", metavar="ERR_RATE", type=_tenths, nargs="?", default=2,
        help="tenths of calls to fail at random, 0-10 (default 2)",
    )  # fmt: skip
    p.add_argument(
        "count", metavar="COUNT", type=_positive, nargs="?", default=100,
        help="calls to make (default 100)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="random seed (repeatable runs)")
    _init_args(p)
    p.set_defaults(func=_simulator)

    p = subparsers.add_parser("qps", help="agent load test, N processes (= lars bench agent)")
    add_qps_arguments(p)
    _agent_args(p)
    p.set_defaults(func=_qps)

    bench = _bench_subparsers(subparsers)
    p = bench.add_parser("agent", help="agent get_host+report QPS (= lars qps)")
    add_qps_arguments(p)
    _agent_args(p)
    p.set_defaults(func=_qps)


def _bench_subparsers(subparsers: Any) -> Any:
    """The `lars bench` kinds, shared with other modules' benchmarks (created if absent)."""
    bench = subparsers.choices.get("bench")
    if bench is None:
        bench = subparsers.add_parser("bench", help="benchmarks")
        return bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for action in bench._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return bench.add_subparsers(dest="bench", metavar="BENCH", required=True)


def _module_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("modid", metavar="MODID", type=int, help="module id")
    p.add_argument("cmdid", metavar="CMDID", type=int, help="command id")
    _agent_args(p)


def _agent_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent")
    g.add_argument(
        "--agent-ip", default=DEFAULT_AGENT_IP, help="agent address (default %(default)s)"
    )
    g.add_argument(
        "--agent-port", type=int, default=DEFAULT_BASE_PORT,
        help="agent base UDP port; a module uses base + (modid+cmdid)%%3 (default %(default)s)",
    )  # fmt: skip
    g.add_argument(
        "--agent-ports", type=_three_ports, default=None, metavar="P0,P1,P2",
        help="the three agent UDP ports explicitly (overrides --agent-port)",
    )  # fmt: skip
    g.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT,
        help="seconds to wait for each answer (default %(default)s)",
    )  # fmt: skip


def _init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--attempts", type=_positive, default=INIT_ATTEMPTS,
        help="route fetches while the agent learns the module (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--no-init", action="store_true", help="skip the initial route fetch")


def client_from_args(args: argparse.Namespace) -> LarsClient:
    return LarsClient(args.agent_ip, args.agent_port, ports=args.agent_ports, timeout=args.timeout)


def _init(client: LarsClient, args: argparse.Namespace) -> RetCode:
    """reg_init: make the agent fetch the module so the first answer is not NOEXIST."""
    if args.no_init:
        return RetCode.SUCC
    return client.reg_init(args.modid, args.cmdid, attempts=args.attempts, delay=INIT_DELAY)


def _gethost(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        _init(client, args)
        result = client.get_host(args.modid, args.cmdid)
    if result.ok:
        print(result)
        return 0
    reason = "no answer from the agent" if result.timed_out else result.retcode.name
    print(f"lars gethost: module ({args.modid}, {args.cmdid}): {reason}", file=sys.stderr)
    return 1


def _getroute(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        _init(client, args)
        route = client.get_route(args.modid, args.cmdid)
    for host in route.hosts:
        print(host)
    if route.ok:
        return 0
    reason = "no answer from the agent" if route.timed_out else route.retcode.name
    print(f"lars getroute: module ({args.modid}, {args.cmdid}): {reason}", file=sys.stderr)
    return 1


def _report(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        client.report(args.modid, args.cmdid, args.ip, args.port, args.retcode)
        errors = client.stats().send_errors
    if errors:
        print("lars report: the datagram could not be sent", file=sys.stderr)
        return 1
    return 0


def _simulator(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    succ: Counter[str] = Counter()
    err: Counter[str] = Counter()
    answers: Counter[RetCode] = Counter()
    timeouts = 0
    with client_from_args(args) as client:
        _init(client, args)
        for _ in range(args.count):
            result = client.get_host(args.modid, args.cmdid)
            answers[result.retcode] += 1
            timeouts += result.timed_out
            if not result.ok:
                continue
            failed = rng.random() * 10 < args.err_rate
            (err if failed else succ)[str(result)] += 1
            retcode = FAILURE_RETCODE if failed else 0
            client.report(args.modid, args.cmdid, result.ip, result.port, retcode)
    print(f"module ({args.modid}, {args.cmdid}): {args.count} calls, failing {args.err_rate}/10")
    for host in sorted(set(succ) | set(err)):
        print(f"  {host:<22} succ {succ[host]:>6}  err {err[host]:>6}")
    print(f"  OVERLOAD answers: {answers[RetCode.OVERLOAD]}")
    print(f"  NOEXIST answers: {answers[RetCode.NOEXIST]}")
    print(f"  SYSTEM_ERROR answers: {answers[RetCode.SYSTEM_ERROR]} ({timeouts} timed out)")
    return 0 if answers[RetCode.SYSTEM_ERROR] < args.count else 1


def _qps(args: argparse.Namespace) -> int:
    return run_qps(args)


def _tenths(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"ERR_RATE must be 0..10 (tenths), got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _three_ports(text: str) -> tuple[int, int, int]:
    try:
        a, b, c = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three ports P0,P1,P2, got {text!r}") from None
    return (a, b, c)
