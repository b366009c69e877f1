"""The agent's pick (get_host) cost with and without weights, in-process, no sockets.

Times `ModuleBalancer.pick()` (lars/agent/balancer.py) for a module of N idle hosts:
the pre-weights balancer (tests/unit/balancer_before_weights.py, a verbatim copy), the
weighted balancer with every weight 1 (the uniform fast path: plain rotation), and with
one host weighted (smooth weighted round robin over the idle list).

    python benchmarks/wrr_pick.py --hosts 5,50 --picks 200000
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lars.agent.balancer import ModuleBalancer
from lars.agent.config import BalancerConfig
from tests.unit.balancer_before_weights import ReferenceBalancer


def per_pick_ns(pick: Callable[[], object], picks: int, repeat: int) -> float:
    return min(timeit.repeat(pick, number=picks, repeat=repeat)) / picks * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="5,50", help="comma-separated module sizes")
    parser.add_argument("--picks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cfg = BalancerConfig()
    print("hosts  before-weights  weights-all-1  one-host-weighted  (ns per pick, best of)")
    for n in (int(x) for x in args.hosts.split(",")):
        keys = [(i, 80) for i in range(n)]
        before = ReferenceBalancer(1, 1, cfg)
        before.update_routes(keys, 0.0)
        uniform = ModuleBalancer(1, 1, cfg)
        uniform.update_routes(keys, 0.0)
        weighted = ModuleBalancer(1, 1, cfg)
        weighted.update_routes(keys, 0.0, {keys[0]: 3})
        row = [per_pick_ns(b.pick, args.picks, args.repeat) for b in (before, uniform, weighted)]
        print(f"{n:>5}  {row[0]:>14.0f}  {row[1]:>13.0f}  {row[2]:>17.0f}")


if __name__ == "__main__":
    main()
