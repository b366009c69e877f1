"""Hypothesis state machine: the balancer against a literal model of spec section 8."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lars.agent.balancer import HostState, ModuleBalancer, RouteState
from lars.agent.config import BalancerConfig

KEYS = [(ip, port) for ip in (-5, 1, 2) for port in (80, 81)]
CFG = BalancerConfig(
    probe_num=3,
    init_succ_cnt=8,
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


@dataclass
class MHost:
    key: tuple[int, int]
    over: bool = False
    vs: int = CFG.init_succ_cnt
    ve: int = 0
    rs: int = 0
    re: int = 0
    cs: int = 0
    ce: int = 0
    its: float = 0.0
    ots: float = 0.0


@dataclass
class Model:
    hosts: dict[tuple[int, int], MHost] = field(default_factory=dict)
    idle: list[MHost] = field(default_factory=list)
    over: list[MHost] = field(default_factory=list)
    access: int = 0

    def to_idle(self, h: MHost, now: float) -> None:
        h.over, h.vs, h.ve, h.rs, h.re, h.cs, h.ce, h.its = (
            False,
            CFG.init_succ_cnt,
            0,
            0,
            0,
            0,
            0,
            now,
        )

    def to_over(self, h: MHost, now: float) -> None:
        h.over, h.vs, h.ve, h.rs, h.re, h.cs, h.ce, h.ots = (
            True,
            0,
            CFG.init_err_cnt,
            0,
            0,
            0,
            0,
            now,
        )

    def pick(self) -> tuple[int, tuple[int, int] | None]:
        def take(lst: list[MHost]) -> tuple[int, tuple[int, int] | None]:
            h = lst.pop(0)
            lst.append(h)
            return 0, h.key

        if not self.idle and not self.over:
            return 3, None
        if not self.idle:
            if self.access >= CFG.probe_num:
                self.access = 0
                return take(self.over)
            self.access += 1
            return 1, None
        if not self.over:
            return take(self.idle)
        if self.access >= CFG.probe_num:
            self.access = 0
            return take(self.over)
        self.access += 1
        return take(self.idle)

    def report(self, key: tuple[int, int], code: int, now: float) -> None:
        h = self.hosts.get(key)
        if h is None:
            return
        if code == 0:
            h.vs, h.rs, h.cs, h.ce = h.vs + 1, h.rs + 1, h.cs + 1, 0
        else:
            h.ve, h.re, h.ce, h.cs = h.ve + 1, h.re + 1, h.ce + 1, 0
        if not h.over and code != 0:
            if h.ve / (h.vs + h.ve) > CFG.err_rate or h.ce >= CFG.contin_err_limit:
                self.to_over(h, now)
                self.idle.remove(h)
                self.over.append(h)
                return
        elif h.over and code == 0:  # noqa: SIM102 - mirrors the spec's wording
            if h.vs / (h.vs + h.ve) > CFG.succ_rate or h.cs >= CFG.contin_succ_limit:
                self.to_idle(h, now)
                self.over.remove(h)
                self.idle.append(h)
                return
        if not h.over:
            if now - h.its >= CFG.idle_timeout:
                if h.rs + h.re > 0 and h.re / (h.rs + h.re) >= CFG.window_err_rate:
                    self.to_over(h, now)
                    self.idle.remove(h)
                    self.over.append(h)
                else:
                    self.to_idle(h, now)
        elif now - h.ots >= CFG.overload_timeout:
            self.to_idle(h, now)
            self.over.remove(h)
            self.idle.append(h)

    def update(self, keys: list[tuple[int, int]], now: float) -> None:
        for k in list(self.hosts):
            if k not in keys:
                h = self.hosts.pop(k)
                (self.over if h.over else self.idle).remove(h)
        for k in keys:
            if k not in self.hosts:
                h = MHost(k, its=now, ots=now)
                self.hosts[k] = h
                self.idle.append(h)
        if not self.hosts:
            self.access = 0


class BalancerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.real = ModuleBalancer(7, 8, CFG)
        self.model = Model()
        self.now = 0.0

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 3.0, 5.0, 7.0, 20.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(keys=st.lists(st.sampled_from(KEYS), max_size=6))
    def update(self, keys: list[tuple[int, int]]) -> None:
        self.real.update_routes(keys, self.now)
        self.model.update(list(dict.fromkeys(keys)), self.now)
        expected = RouteState.READY if keys else RouteState.EMPTY
        assert self.real.route_state is expected
        assert not self.real.waiting and not self.real.needs_route(self.now)

    @rule()
    def pick(self) -> None:
        code, host = self.real.pick()
        assert (code, None if host is None else (host.ip, host.port)) == self.model.pick()

    @precondition(lambda self: bool(self.model.hosts))
    @rule(data=st.data(), code=st.sampled_from([0, 0, 0, 1, 2, 3]))
    def report_known(self, data: st.DataObject, code: int) -> None:
        key = data.draw(st.sampled_from(sorted(self.model.hosts)))
        assert self.real.report(*key, code, self.now)
        self.model.report(key, code, self.now)

    @rule(key=st.sampled_from(KEYS), code=st.sampled_from([0, 2]))
    def report_any(self, key: tuple[int, int], code: int) -> None:
        known = key in self.model.hosts
        assert self.real.report(*key, code, self.now) == known
        self.model.report(key, code, self.now)

    @invariant()
    def same_state(self) -> None:
        real, model = self.real, self.model
        assert [(h.ip, h.port) for h in real.idle] == [h.key for h in model.idle]
        assert [(h.ip, h.port) for h in real.overload] == [h.key for h in model.over]
        assert set(real.hosts) == set(model.hosts)
        assert real.access_cnt == model.access
        for key, h in real.hosts.items():
            m = model.hosts[key]
            assert h.state is (HostState.OVERLOAD if m.over else HostState.IDLE)
            got = (h.vsucc, h.verr, h.rsucc, h.rerr, h.contin_succ, h.contin_err)
            assert got == (m.vs, m.ve, m.rs, m.re, m.cs, m.ce)
            assert (h.idle_ts, h.overload_ts) == (m.its, m.ots)
        # every host is on exactly one list, matching its state
        listed = [*real.idle, *real.overload]
        assert len(listed) == len(real.hosts) == len({id(h) for h in listed})
        assert all(not h.overloaded for h in real.idle)
        assert all(h.overloaded for h in real.overload)


BalancerMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None
)
TestBalancerMachine = BalancerMachine.TestCase
