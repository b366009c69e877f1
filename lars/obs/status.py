"""`lars status`: ask a running daemon's metrics/health listener how it is doing.

Standard library only (urllib, json): the client-only install has it. It reads
`GET /status` (or, for one module of an agent, `GET /debug/module`) and prints a short
summary, or the JSON itself with --json. Exit codes: 0 the daemon answers and is ready,
1 it answers but is not ready, 3 it does not answer (lars.boundary), 4 with --module:
the agent does not hold that module.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from lars.boundary import ExitCode
from lars.errors import NoHost, NotAnswering
from lars.obs.listen import DEFAULT_PORTS, parse_listen

__all__ = ["fetch", "register", "render_module", "render_status"]

_DAEMONS = ("agent", "dns", "reporter", "up")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status",
        help="ask a running daemon how it is doing (through its metrics listener)",
        description="Print a running daemon's summary from its metrics/health listener. "
        "Exit 0 ready, 1 not ready, 3 no answer, 4 (--module) module not held.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--metrics", metavar="ADDR:PORT", help="the daemon's metrics listener")
    where.add_argument(
        "--daemon", choices=_DAEMONS,
        help="the daemon on this host, at its default port (agent 7783, dns and up 7781, "
        "reporter 7782); default: the agent, else a `lars up` of this host",
    )  # fmt: skip
    p.add_argument(
        "--module", nargs=2, type=int, metavar=("MODID", "CMDID"),
        help="the agent's own view of one module: its hosts, states and window counters",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the JSON the daemon sent")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    p.set_defaults(func=run)


def base_urls(args: argparse.Namespace) -> list[str]:
    """The listeners to ask, in order. Named by neither --metrics nor --daemon: this
    host's agent, and when nothing listens there a `lars up` (whose one endpoint is the
    route service's port), so `lars status` right after `lars up` answers."""
    if args.metrics:
        listen = parse_listen(args.metrics)
        if listen is None:
            raise NotAnswering("--metrics off: there is no listener to ask")
        host, port = listen
        return [f"http://{host}:{port}"]
    daemons = [args.daemon] if args.daemon else ["agent", "up"]
    return [f"http://127.0.0.1:{DEFAULT_PORTS[d]}" for d in daemons]


def first_answer(
    bases: list[str], path: str, timeout: float, get: Any = None
) -> tuple[str, int, Any]:
    """(base, HTTP status, JSON) of the first listener that answers; the first
    listener's NotAnswering when none does."""
    get = get or fetch
    failure: NotAnswering | None = None
    for base in bases:
        try:
            code, doc = get(f"{base}{path}", timeout)
        except NotAnswering as exc:
            failure = failure or exc
            continue
        return base, code, doc
    assert failure is not None  # bases is never empty
    raise failure


def fetch(url: str, timeout: float) -> tuple[int, Any]:
    """(HTTP status, decoded JSON); NotAnswering when nothing (or not lars) answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as rsp:
            status, body = rsp.status, rsp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotAnswering(f"no answer from {url}: {reason}") from exc
    try:
        return status, json.loads(body)
    except ValueError as exc:
        raise NotAnswering(f"{url} answered, but not with lars status JSON") from exc


def run(args: argparse.Namespace) -> int:
    bases = base_urls(args)
    if args.module is not None:
        modid, cmdid = args.module
        path = f"/debug/module?modid={modid}&cmdid={cmdid}"
        base, code, doc = first_answer(bases, path, args.timeout)
        if code == 404 and "not held" in str(doc.get("error", "")):
            raise NoHost(str(doc["error"]))
        if code != 200:
            raise NotAnswering(f"{base} has no module view ({code}): is it an agent?")
        print(json.dumps(doc, indent=2) if args.json else render_module(doc))
        return int(ExitCode.OK)
    base, code, doc = first_answer(bases, "/status", args.timeout)
    if code != 200:
        raise NotAnswering(f"{base}/status answered {code}")
    print(json.dumps(doc, indent=2) if args.json else render_status(doc))
    ready = bool(doc.get("ready", {}).get("ready", False))
    return int(ExitCode.OK if ready else ExitCode.FAILURE)


def _ready_line(doc: dict[str, Any]) -> str:
    ready = doc.get("ready", {})
    if ready.get("ready"):
        return "ready"
    return "NOT READY: " + "; ".join(ready.get("reasons", []))


def _updown(flag: object) -> str:
    return "up" if flag else "DOWN"


def render_status(doc: dict[str, Any]) -> str:
    """A few lines for a person; the daemon's own keys decide what is shown."""
    daemon = doc.get("daemon", "?")
    lines = [f"lars {daemon}: {_ready_line(doc)}"]
    for t in doc.get("threads", []):  # dead ones are in the reasons already
        if not t.get("dead"):
            ago = f" {t['age']:.0f}s ago" if "age" in t else ""
            lines.append(
                f"  thread {t['thread']} restarted {t['restarts']}x, last error{ago}: {t['error']}"
            )
    if daemon == "agent":
        m, h = doc["modules"], doc["hosts"]
        lines += [
            f"  UDP ports {','.join(map(str, doc['ports']))} ({doc['mode']})",
            f"  route service {_updown(doc['route_service']['connected'])}, "
            f"reporter {_updown(doc['reporter']['connected'])} "
            f"(reports sent {doc['reporter']['sent']}, held {doc['reporter']['held']})",
            f"  modules: {m['ready']} ready, {m['empty']} empty, {m['new']} waiting; "
            f"hosts: {h['idle']} idle, {h['overload']} overloaded",
            f"  get_host {doc['get_host']}, reports {doc['reports']}, "
            f"dropped datagrams {doc['dropped_datagrams']}",
        ]
        held = doc["route_service"].get("held_modules", 0)
        if held:
            lines.append(
                f"  MASS-EMPTY HOLD: {held} modules still served their last hosts while the "
                "route service answers them empty (until hosts or [agent] mass_empty_delay)"
            )
        regs = doc.get("registrations") or {}
        if any(regs.values()):
            lines.append(
                f"  registered here: {regs.get('passing', 0)} passing, "
                f"{regs.get('failing', 0)} failing, {regs.get('pending', 0)} pending "
                "(lars status --module M C for each)"
            )
    elif daemon == "dns":
        age = doc.get("last_poll_age")
        lines += [
            f"  port {doc['port']}: version {doc['version']}, {doc['modules']} modules, "
            f"{doc['hosts']} hosts ({doc['invalid_rows']} invalid rows left out)",
            f"  database {_updown(doc['database_up'])}"
            + (f" (last successful poll {age:.1f}s ago)" if age is not None else "")
            + (f": {doc['last_error']}" if doc.get("last_error") else ""),
            f"  {doc['connections']} connections, {doc['subscribers']} subscribed; "
            f"reloads {doc['reloads']}, pushes {doc['pushes']}",
        ]
        held = doc.get("held")
        if held:
            lines.append(
                f"  HOLDING table version {held['version']} ({held['reason']}, "
                f"{held['removed_hosts']} hosts removed): `lars route release` applies it"
            )
    elif daemon == "reporter":
        age = doc.get("last_commit_age")
        lines += [
            f"  port {doc['port']}: {doc['connections']} connections; rows received "
            f"{doc['received']}, written {doc['written']}, dropped {doc['dropped']}",
            f"  database {_updown(doc['database_up'])}"
            + (f" ({doc['database_error']})" if doc.get("database_error") else "")
            + (f", last commit {age:.1f}s ago" if age is not None else ", no commit yet")
            + f"; queue per writer {doc['queue_depth']}",
        ]
    elif daemon == "up":
        for part in ("dns", "reporter", "agent"):
            if part in doc:
                sub = render_status(doc[part]).splitlines()
                lines += ["  " + line for line in sub]
    return "\n".join(lines)


def render_module(doc: dict[str, Any]) -> str:
    age = doc.get("route_age")
    refreshed = "never" if age is None else f"{age:.1f}s ago"
    lines = [
        f"module {doc['modid']}:{doc['cmdid']} (shard {doc['shard']}): {doc['route_state']}"
        + (", route request pending" if doc.get("waiting") else "")
        + f"; route last refreshed {refreshed}",
    ]
    if doc["hosts"]:
        lines.append(
            f"  {'host':<21} {'state':<8} {'weight':>6} {'vsucc':>6} {'verr':>5} "
            f"{'rsucc':>6} {'rerr':>5} {'contin':>7} {'window':>7}"
        )
    for h in doc["hosts"]:
        # +N: N successes in a row, -N: N failures in a row, 0: no call yet in this window
        if h["contin_succ"]:
            contin = f"+{h['contin_succ']}"
        else:
            contin = f"-{h['contin_err']}" if h["contin_err"] else "0"
        lines.append(
            f"  {h['ip'] + ':' + str(h['port']):<21} {h['state']:<8} {h.get('weight', 1):>6} "
            f"{h['vsucc']:>6} {h['verr']:>5} {h['rsucc']:>6} {h['rerr']:>5} {contin:>7} "
            f"{h['window_age']:>6.0f}s"
        )
    registered = doc.get("registrations") or []
    if registered:
        lines.append("  registered with this agent (check state):")
    for r in registered:
        why = f"  ({r['detail']})" if r.get("detail") else ""
        lines.append(
            f"  {r['ip'] + ':' + str(r['port']):<21} {r['check']:<8} {r['state']:<8} "
            f"for {r['since']:.1f}s{why}"
        )
    return "\n".join(lines)
