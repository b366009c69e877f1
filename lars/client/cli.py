"""`lars gethost|getroute|report|simulator|qps` and `lars bench agent`: the Lars tools.

Each talks to the agent through LarsClient. Flags shared by all: --agent-ip,
--agent-port (base port; the module's port is base + (modid + cmdid) % 3) or
--agent-ports P0,P1,P2, and --timeout per call; `--json` prints one JSON object.

Each command stops on SIGINT and SIGTERM (exit 130) even when started with SIGINT
ignored (lars.client.signals); qps prints its summary first.

Answers say what happened (lars.client.answers): an agent that does not answer is
NotAnswering (exit 3), a module without a host NoHost (exit 4), with the reason a lars
agent gives (GetHostResponse field 6: e.g. it cannot reach the route service).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from typing import Any

from lars.client.answers import (
    check_host,
    check_report,
    fetch_route,
    host_json,
    no_answer,
    route_json,
    route_outcome,
)
from lars.client.config import DEFAULT_AGENT_IP, DEFAULT_BASE_PORT, DEFAULT_TIMEOUT
from lars.client.core import FAILURE_RETCODE
from lars.client.qps import add_qps_arguments, run_qps
from lars.client.signals import tool
from lars.client.sync import LarsClient
from lars.jsonout import add_json_flag, print_json
from lars.protocol import RetCode

__all__ = ["agent_args", "client_from_args", "register"]

INIT_ATTEMPTS = 20
INIT_DELAY = 0.1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("gethost", help="ask the agent for one host of a module")
    _module_args(p)
    _init_args(p)
    add_json_flag(p)
    p.set_defaults(func=tool(_gethost))

    p = subparsers.add_parser("getroute", help="list the hosts the agent holds for a module")
    _module_args(p)
    _init_args(p)
    add_json_flag(p)
    p.set_defaults(func=tool(_getroute))

    p = subparsers.add_parser("report", help="report one call result to the agent")
    _module_args(p)
    p.add_argument("ip", metavar="IP", help="the host's dotted IPv4 address")
    p.add_argument("port", metavar="PORT", type=int, help="the host's port")
    p.add_argument("retcode", metavar="RETCODE", type=int, help="0 success, else failure")
    p.add_argument(
        "--no-check", action="store_true",
        help="do not ask the agent afterwards whether it holds the host (fire and forget)",
    )  # fmt: skip
    p.set_defaults(func=tool(_report))

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
    add_json_flag(p)
    p.set_defaults(func=tool(_simulator))

    p = subparsers.add_parser("qps", help="agent load test, N processes (= lars bench agent)")
    add_qps_arguments(p)
    _agent_args(p)
    qps = tool(_qps)  # one function: `lars qps` and `lars bench agent` are the same tool
    p.set_defaults(func=qps)

    bench = _bench_subparsers(subparsers)
    p = bench.add_parser("agent", help="agent get_host+report QPS (= lars qps)")
    add_qps_arguments(p)
    _agent_args(p)
    p.set_defaults(func=qps)


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


def _agent_args(p: argparse.ArgumentParser, timeout: float = DEFAULT_TIMEOUT) -> None:
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
        "--timeout", type=float, default=timeout,
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


def _fetch(client: LarsClient, args: argparse.Namespace) -> None:
    """Make the agent fetch the module first, so the first answer is not NOEXIST."""
    if not args.no_init:
        fetch_route(client, args.modid, args.cmdid, attempts=args.attempts, delay=INIT_DELAY)


def _gethost(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        _fetch(client, args)
        result = client.get_host(args.modid, args.cmdid)
        if args.json:
            print_json(host_json(result))
        elif result.ok:
            print(result)
        check_host(client, result)  # raises NotAnswering or NoHost
    return 0


def _getroute(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        _fetch(client, args)
        route = client.get_route(args.modid, args.cmdid)
        outcome = route_outcome(client, route)
        if args.json:
            print_json(route_json(route, outcome))
        else:
            for host in route.hosts:
                print(host)
        check_host(client, outcome)  # raises NotAnswering or NoHost
    return 0


def _report(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        client.report(args.modid, args.cmdid, args.ip, args.port, args.retcode)
        errors = client.stats().send_errors
        if errors:
            no_answer(client, args.modid, args.cmdid, refused=True)
        if not args.no_check:  # UDP says nothing: ask the agent whether it took the report
            check_report(client, args.modid, args.cmdid, args.ip, args.port)
    return 0


def _simulator(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    succ: Counter[str] = Counter()
    err: Counter[str] = Counter()
    answers: Counter[RetCode] = Counter()
    timeouts = 0
    with client_from_args(args) as client:
        _fetch(client, args)
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
        hosts = sorted(set(succ) | set(err))
        if args.json:
            print_json(
                {
                    "modid": args.modid,
                    "cmdid": args.cmdid,
                    "calls": args.count,
                    "err_rate": args.err_rate,
                    "hosts": [{"host": h, "succ": succ[h], "err": err[h]} for h in hosts],
                    "answers": {code.name: answers[code] for code in RetCode},
                    "timeouts": timeouts,
                }
            )
        else:
            print(
                f"module {args.modid}:{args.cmdid}: {args.count} calls, "
                f"failing {args.err_rate}/10"
            )
            for host in hosts:
                print(f"  {host:<22} succ {succ[host]:>6}  err {err[host]:>6}")
            print(f"  OVERLOAD answers: {answers[RetCode.OVERLOAD]}")
            print(f"  NOEXIST answers: {answers[RetCode.NOEXIST]}")
            print(f"  SYSTEM_ERROR answers: {answers[RetCode.SYSTEM_ERROR]} ({timeouts} timed out)")
        if answers[RetCode.SYSTEM_ERROR] == args.count:
            no_answer(client, args.modid, args.cmdid, refused=timeouts < args.count)
    return 0


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


agent_args = _agent_args  # gethost's agent flags, for the other client commands
