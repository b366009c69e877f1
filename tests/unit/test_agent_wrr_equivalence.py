"""With every weight equal, the weighted balancer answers exactly as spec section 8 did.

The reference is the balancer as it was before weights (balancer_before_weights.py, a
verbatim copy). A hypothesis state machine drives it and four weighted balancers with
the same random stream of get_host, report (successes, failures, unknown hosts), route
updates (hosts added, removed, reordered, the module emptied) and clock steps:
- `fast`: default weights, the uniform fast path (what production runs);
- `swrr`: default weights, the smooth weighted round robin arithmetic forced on;
- `fast_w` and `swrr_w`: every host at the same weight W, W redrawn on every route
  update (2..MAX_WEIGHT), on both paths.
After every step all five must have given the same answer and hold the same lists in
the same order with the same counters.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lars.agent.balancer import ModuleBalancer
from lars.agent.config import BalancerConfig
from lars.protocol.weight import MAX_WEIGHT
from tests.unit.balancer_before_weights import ReferenceBalancer

KEYS = [(ip, port) for ip in (-1062731343, 1, 2) for port in (80, 81)]
CFG = BalancerConfig(
    probe_num=3,
    init_succ_cnt=6,
    init_err_cnt=2,
    err_rate=0.2,
    succ_rate=0.5,
    contin_err_limit=4,
    contin_succ_limit=3,
    window_err_rate=0.6,
    idle_timeout=5,
    overload_timeout=7,
    update_timeout=4,
)


def state(b: ReferenceBalancer | ModuleBalancer) -> tuple[object, ...]:
    def counters(lst: object) -> list[tuple[object, ...]]:
        return [
            (h.ip, h.port, h.vsucc, h.verr, h.rsucc, h.rerr, h.contin_succ, h.contin_err,
             h.idle_ts, h.overload_ts, h.state.value)
            for h in lst  # type: ignore[attr-defined]
        ]  # fmt: skip

    return (
        counters(b.idle),
        counters(b.overload),
        b.access_cnt,
        b.route_state.value,
        sorted(b.hosts),
        b.waiting,
        b.updated_at,
    )


class SideBySide(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.weight = 3
        self.ref = ReferenceBalancer(1, 1, CFG)
        self.fast = ModuleBalancer(1, 1, CFG)
        self.swrr = ModuleBalancer(1, 1, CFG, fast_uniform=False)
        self.fast_w = ModuleBalancer(1, 1, CFG)
        self.swrr_w = ModuleBalancer(1, 1, CFG, fast_uniform=False)
        self.default = (self.fast, self.swrr)
        self.weighted = (self.fast_w, self.swrr_w)
        self.picks = 0

    @rule(hosts=st.lists(st.sampled_from(KEYS), unique=True), weight=st.integers(2, MAX_WEIGHT))
    def routes(self, hosts: list[tuple[int, int]], weight: int) -> None:
        self.weight = weight
        self.ref.update_routes(hosts, self.now)
        for b in self.default:
            b.update_routes(hosts, self.now)
        for b in self.weighted:
            b.update_routes(hosts, self.now, dict.fromkeys(hosts, weight))

    @rule(times=st.integers(1, 12))
    def get_host(self, times: int) -> None:
        for _ in range(times):
            code, host = self.ref.pick()
            expected = (code, None if host is None else (host.ip, host.port))
            for b in (*self.default, *self.weighted):
                code, got = b.pick()
                assert (code, None if got is None else (got.ip, got.port)) == expected
            self.picks += expected[1] is not None

    @rule(key=st.sampled_from([*KEYS, (9, 9)]), retcode=st.sampled_from([0, 0, 0, 1, 2, 3]))
    def report(self, key: tuple[int, int], retcode: int) -> None:
        known = self.ref.report(key[0], key[1], retcode, self.now)
        for b in (*self.default, *self.weighted):
            assert b.report(key[0], key[1], retcode, self.now) == known

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 3.0, 5.0, 8.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def same_state(self) -> None:
        expected = state(self.ref)
        for b in (*self.default, *self.weighted):
            assert state(b) == expected

    @invariant()
    def weights_are_uniform(self) -> None:
        for b in self.default:
            assert b.uniform and all(h.weight == 1 for h in b.hosts.values())
        for b in self.weighted:
            assert b.uniform and all(h.weight == self.weight for h in b.hosts.values())


SideBySide.TestCase.settings = settings(max_examples=400, stateful_step_count=80, deadline=None)
TestEqualWeightsMatchSpec8 = SideBySide.TestCase
