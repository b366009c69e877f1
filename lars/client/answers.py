"""What the tools make of the agent's answers: errors that say what happened.

UDP is silent about failures, and a NOEXIST can mean many things. These helpers turn a
result into NotAnswering (the agent, or the route service behind it, does not answer:
exit 3) or NoHost (the module is missing or overloaded: exit 4), naming the agent's
address and the reason a lars agent gives in GetHostResponse field 6. An original agent
gives no reason; its answers read as before.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from lars.client.core import shard_of
from lars.client.result import HostResult, RouteResult
from lars.client.sync import LarsClient
from lars.errors import NoHost, NotAnswering
from lars.protocol import NoHostReason, RetCode

__all__ = [
    "UNREACHABLE_GRACE",
    "check_host",
    "check_report",
    "fetch_route",
    "host_json",
    "no_answer",
    "route_json",
    "route_outcome",
]

# A just-started agent may not have connected to the route service yet: its "cannot reach
# the route service" is final only once it has lasted this long.
UNREACHABLE_GRACE = 0.5
# Reasons that waiting for the route will not change: the route service has answered
# (EMPTY: it has no hosts for the module), or the agent will not keep the module.
_FINAL = (NoHostReason.EMPTY, NoHostReason.MODULE_LIMIT, NoHostReason.WRONG_PORT)


def agent_address(client: LarsClient, modid: int, cmdid: int) -> str:
    ip, port = client.config.addresses()[shard_of(modid, cmdid)]
    return f"{ip}:{port}"


def no_answer(client: LarsClient, modid: int, cmdid: int, *, refused: bool) -> NoReturn:
    cause = (
        "nothing listens there (port unreachable)"
        if refused
        else f"no reply within {client.config.timeout:g} s"
    )
    address = agent_address(client, modid, cmdid)
    why = _which_port(client, modid, cmdid)
    raise NotAnswering(f"agent {address} does not answer: {cause}{why}")


def _which_port(client: LarsClient, modid: int, cmdid: int) -> str:
    """Where a port past the base comes from: with --agent-port 9999, module 9:9 is asked
    on 10001, which reads like a typo unless the message says so."""
    shard = shard_of(modid, cmdid)
    if client.config.ports is not None or shard == 0:
        return ""
    port = client.config.base_port + shard
    return f" (port {port} = agent port {client.config.base_port} + ({modid} + {cmdid}) % 3)"


def fetch_route(
    client: LarsClient,
    modid: int,
    cmdid: int,
    *,
    attempts: int,
    delay: float,
    clock: Any = time.monotonic,
) -> None:
    """Let the agent fetch the module (like reg_init) but stop as soon as the answer is
    final: hosts, no agent, or a lars agent's reason that waiting will not change."""
    unreachable_since: float | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(delay)
        route = client.get_route(modid, cmdid)
        if route.retcode is not RetCode.NOEXIST:
            return
        probe = client.get_host(modid, cmdid)  # only a GetHostResponse carries the reason
        if probe.retcode is RetCode.SYSTEM_ERROR or probe.reason in _FINAL:
            return
        if probe.retcode is not RetCode.NOEXIST:  # the route arrived meanwhile: ask again
            continue
        if probe.reason == NoHostReason.ROUTE_SERVICE_UNREACHABLE:
            now = clock()
            unreachable_since = now if unreachable_since is None else unreachable_since
            if now - unreachable_since >= UNREACHABLE_GRACE:
                return
        else:
            unreachable_since = None


def check_host(client: LarsClient, result: HostResult) -> None:
    """Return for a host; raise NotAnswering or NoHost (with the reason) otherwise."""
    if result.ok:
        return
    if result.retcode is RetCode.SYSTEM_ERROR and (result.timed_out or result.refused):
        no_answer(client, result.modid, result.cmdid, refused=result.refused)
    message = f"module {result.modid}:{result.cmdid}: {result.why}"
    if result.reason == NoHostReason.ROUTE_SERVICE_UNREACHABLE:
        raise NotAnswering(message)
    raise NoHost(message)


def route_outcome(client: LarsClient, route: RouteResult) -> HostResult:
    """A route answer as a HostResult for check_host; for an empty route a get_host
    probe asks the agent why (only GetHostResponse has the reason field)."""
    modid, cmdid = route.modid, route.cmdid
    if route.ok:
        return HostResult(RetCode.SUCC, modid, cmdid)
    if route.retcode is RetCode.SYSTEM_ERROR:
        return HostResult(
            route.retcode, modid, cmdid, timed_out=route.timed_out, refused=route.refused
        )
    probe = client.get_host(modid, cmdid)
    if probe.retcode in (RetCode.NOEXIST, RetCode.SYSTEM_ERROR):
        return probe
    return HostResult(RetCode.NOEXIST, modid, cmdid)


def check_report(client: LarsClient, modid: int, cmdid: int, ip: str, port: int) -> None:
    """After a report: does the agent answer, and does it hold the host (else it
    ignored the report, as the spec says)? Raises NotAnswering or NoHost."""
    route = client.get_route(modid, cmdid)
    if route.retcode is RetCode.SYSTEM_ERROR:
        no_answer(client, modid, cmdid, refused=route.refused)
    if not any(h.ip == ip and h.port == port for h in route.hosts):
        raise NoHost(
            f"module {modid}:{cmdid}: the agent holds no host {ip}:{port}, "
            "so it ignored the report"
        )


def host_json(result: HostResult) -> dict[str, Any]:
    return {
        "modid": result.modid,
        "cmdid": result.cmdid,
        "retcode": result.retcode.name,
        "ip": result.ip or None,
        "port": result.port or None,
        "reason": _reason_name(result.reason),
        "answer": result.why,
        "timed_out": result.timed_out,
        "refused": result.refused,
    }


def route_json(route: RouteResult, outcome: HostResult) -> dict[str, Any]:
    return {
        "modid": route.modid,
        "cmdid": route.cmdid,
        "retcode": route.retcode.name,
        "hosts": [{"ip": h.ip, "port": h.port} for h in route.hosts],
        "reason": _reason_name(outcome.reason),
        "answer": "SUCC" if route.ok else outcome.why,
        "timed_out": route.timed_out,
        "refused": route.refused,
    }


def _reason_name(reason: int) -> str | None:
    if not reason:
        return None
    try:
        return NoHostReason(reason).name
    except ValueError:
        return str(reason)
