"""The agent's mass-empty guard on the push path (issue 18 item 4), in-process.

Times what lars/agent/route_client.py does per route answer (parse the GetRouteResponse,
build the host list, deliver to a no-op) three ways, in one run, for steady pushes with
hosts (the common case) over `--modules` modules of 3 hosts:
  none    no guard at all;
  before  the EmptyGuard of git revision `--before` (it only noticed, it never held);
  after   this tree's EmptyGuard (answer + deliver + the timer's deadline check).
Each is the best of 7 repeats of `--number` answers; the rounds alternate the order.
Then the one-off costs: a mass empty of every module (the hold, with the last hosts of
the ones emptied before the threshold re-delivered) and its release by hosts.

    python benchmarks/agent_empty_guard.py --modules 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import timeit
import types
from collections.abc import Callable
from pathlib import Path

from lars.agent.emptyguard import EmptyGuard
from lars.protocol import lars_pb2

ROOT = Path(__file__).resolve().parent.parent


def old_guard_class(rev: str) -> type:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:lars/agent/emptyguard.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("old_emptyguard")
    sys.modules["old_emptyguard"] = module  # dataclasses/enum look the module up
    exec(compile(source, "old_emptyguard.py", "exec"), module.__dict__)
    cls: type = module.EmptyGuard
    return cls


def bodies(modules: int) -> list[bytes]:
    out = []
    for m in range(modules):
        msg = lars_pb2.GetRouteResponse(modid=m + 1, cmdid=1)
        for i in range(3):
            msg.host.add(ip=0x0A000000 + m * 4 + i, port=9000 + i)
        out.append(msg.SerializeToString())
    return out


def runner(kind: str, old_cls: type, data: list[bytes]) -> Callable[[], None]:
    sink: list[object] = []
    deliver = sink.append
    clock = time.monotonic
    parse = lars_pb2.GetRouteResponse.FromString
    new_guard = EmptyGuard()
    old_guard = old_cls()

    def none() -> None:
        for body in data:
            msg = parse(body)
            hosts = [(h.ip, h.port) for h in msg.host]
            weights: dict[tuple[int, int], int] = {}  # RouteClient builds it every time
            deliver(((msg.modid, msg.cmdid), hosts, weights))
        sink.clear()

    def before() -> None:
        for body in data:
            msg = parse(body)
            hosts = [(h.ip, h.port) for h in msg.host]
            weights: dict[tuple[int, int], int] = {}
            answers, _ = old_guard.answer((msg.modid, msg.cmdid), hosts, clock())
            for key, module_hosts in answers:
                deliver((key, module_hosts, weights))
        sink.clear()

    def after() -> None:
        for body in data:
            msg = parse(body)
            hosts = [(h.ip, h.port) for h in msg.host]
            weights: dict[tuple[int, int], int] = {}
            out = new_guard.answer((msg.modid, msg.cmdid), hosts, clock(), weights)
            for key, module_hosts, module_weights in out.deliver:
                deliver((key, module_hosts, module_weights))
            new_guard.deadline()  # RouteClient._arm
        sink.clear()

    return {"none": none, "before": before, "after": after}[kind]


def one_offs(modules: int) -> tuple[float, float]:
    g = EmptyGuard()
    for m in range(modules):
        g.answer((m, 1), [(m, 1), (m, 2), (m, 3)], 0.0)
    t0 = time.perf_counter()
    for m in range(modules):
        g.answer((m, 1), [], 1.0)
    hold = time.perf_counter() - t0
    assert g.holding and len(g.held) == modules
    t0 = time.perf_counter()
    out = g.answer((0, 1), [(0, 9)], 2.0)
    release = time.perf_counter() - t0
    assert len(out.reask) == modules - 1
    return hold, release


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--number", type=int, default=20, help="passes over the modules per repeat")
    ap.add_argument("--before", default="7baaf69", help="git revision of the old guard")
    args = ap.parse_args()
    old_cls = old_guard_class(args.before)
    data = bodies(args.modules)
    kinds = ["none", "before", "after"]
    best: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            fn = runner(kind, old_cls, data)
            t = min(timeit.repeat(fn, number=args.number, repeat=7))
            best[kind].append(t / (args.number * args.modules) * 1e9)
    base = statistics.median(best["none"])
    for kind in kinds:
        med = statistics.median(best[kind])
        print(
            f"{kind:7s} ns/answer: min {min(best[kind]):7.0f}  median {med:7.0f}  "
            f"(+{med - base:5.0f} ns, {100 * (med - base) / base:+5.1f} % vs none)"
        )
    for modules in (args.modules, 20_000):
        hold, release = one_offs(modules)
        print(
            f"mass empty of {modules} modules: every answer + hold {hold * 1e3:.1f} ms "
            f"({hold / modules * 1e9:.0f} ns/answer), release {release * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
