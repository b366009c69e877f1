"""The balancer of spec section 8, transition by transition."""

from __future__ import annotations

import itertools

import pytest

from lars.agent.balancer import HostState, ModuleBalancer, RouteState
from lars.agent.config import BalancerConfig
from lars.errors import ConfigError
from lars.protocol import RetCode

SUCC = int(RetCode.SUCC)
OVERLOAD = int(RetCode.OVERLOAD)
NOEXIST = int(RetCode.NOEXIST)
FAIL = int(RetCode.SYSTEM_ERROR)

A, B, C = (1, 80), (2, 80), (3, 80)


def make(*hosts: tuple[int, int], now: float = 0.0, **cfg: float) -> ModuleBalancer:
    mod = ModuleBalancer(1, 2, BalancerConfig(**cfg))  # type: ignore[arg-type]
    if hosts:
        mod.update_routes(hosts, now)
    return mod


def picks(mod: ModuleBalancer, n: int) -> list[tuple[int, tuple[int, int] | None]]:
    out: list[tuple[int, tuple[int, int] | None]] = []
    for _ in range(n):
        code, host = mod.pick()
        out.append((code, None if host is None else (host.ip, host.port)))
    return out


def state(mod: ModuleBalancer, key: tuple[int, int]) -> HostState:
    return mod.hosts[key].state


def overload(mod: ModuleBalancer, key: tuple[int, int], now: float = 0.0) -> None:
    """Drive one host to overload with consecutive failures."""
    for _ in range(mod.config.contin_err_limit):
        mod.report(*key, FAIL, now)
        if state(mod, key) is HostState.OVERLOAD:
            return
    raise AssertionError("host did not overload")


# -- module and route states ----------------------------------------------------------


def test_new_module_has_no_hosts_and_needs_a_route() -> None:
    mod = make()
    assert mod.route_state is RouteState.NEW
    assert mod.pick() == (NOEXIST, None)
    assert mod.needs_route(0.0)
    mod.asked(0.0)
    assert mod.waiting and not mod.needs_route(100.0)


def test_new_host_starts_idle_with_initialised_counters() -> None:
    mod = make(A, now=50.0)
    h = mod.hosts[A]
    assert h.state is HostState.IDLE
    assert (h.vsucc, h.verr, h.rsucc, h.rerr, h.contin_succ, h.contin_err) == (180, 0, 0, 0, 0, 0)
    assert h.idle_ts == 50.0 and h.overload_ts == 50.0
    assert mod.route_state is RouteState.READY and not mod.waiting


def test_first_error_of_a_new_host_does_not_overload_it() -> None:
    """Spec section 11: uninitialised timestamps put a host straight into overload."""
    mod = make(A, now=1_000_000.0)
    mod.report(*A, FAIL, 1_000_000.0)
    assert state(mod, A) is HostState.IDLE


def test_refresh_after_update_timeout_only() -> None:
    mod = make(A, now=10.0)
    assert not mod.needs_route(25.0)  # older than update_timeout, not as old
    assert mod.needs_route(25.1)
    mod.asked(25.0)
    assert not mod.needs_route(100.0)
    mod.update_routes([A], 30.0)
    assert not mod.needs_route(45.0) and mod.needs_route(45.1)


def test_empty_reply_keeps_module_known_empty() -> None:
    mod = make()
    mod.asked(0.0)
    mod.update_routes([], 1.0)
    assert mod.route_state is RouteState.EMPTY
    assert mod.pick() == (NOEXIST, None)
    assert not mod.needs_route(16.0)
    assert mod.needs_route(16.1)


def test_empty_reply_removes_every_host() -> None:
    mod = make(A, B)
    overload(mod, B)
    mod.update_routes([], 1.0)
    assert mod.route_state is RouteState.EMPTY
    assert not mod.hosts and not mod.idle and not mod.overload
    assert mod.pick() == (NOEXIST, None)
    mod.update_routes([C], 2.0)
    assert picks(mod, 2) == [(SUCC, C), (SUCC, C)]


def test_update_keeps_surviving_state_and_drops_removed_hosts() -> None:
    mod = make(A, B, C)
    overload(mod, B)
    mod.report(*A, SUCC, 0.0)
    mod.update_routes([A, B, (4, 90)], 5.0)
    assert set(mod.hosts) == {A, B, (4, 90)}
    assert state(mod, B) is HostState.OVERLOAD
    assert mod.hosts[A].rsucc == 1
    assert all(h.ip != 3 for h in mod.idle) and all(h.ip != 3 for h in mod.overload)
    assert mod.hosts[(4, 90)].idle_ts == 5.0


def test_removed_overloaded_host_is_never_answered() -> None:
    """Spec section 11: a removed host left a dangling entry that was answered later."""
    mod = make(A, B, probe_num=1)
    overload(mod, B)
    mod.update_routes([A], 1.0)
    answers = picks(mod, 20)
    assert all(host == A for _, host in answers)
    mod.report(*B, FAIL, 1.0)  # unknown now: ignored
    assert set(mod.hosts) == {A}


def test_duplicate_hosts_in_reply_count_once() -> None:
    mod = make(A, A, B)
    assert len(mod.hosts) == 2 and len(mod.idle) == 2


# -- get_host --------------------------------------------------------------------------


def test_idle_only_rotates_round_robin() -> None:
    mod = make(A, B, C)
    assert [h for _, h in picks(mod, 6)] == [A, B, C, A, B, C]
    assert mod.access_cnt == 0


def test_probe_overload_every_probe_num_requests() -> None:
    mod = make(A, B, probe_num=3)
    overload(mod, B)
    got = [h for _, h in picks(mod, 8)]
    assert got == [A, A, A, B, A, A, A, B]


def test_all_overloaded_answers_overload_then_probes() -> None:
    mod = make(A, B, probe_num=2)
    overload(mod, A)
    overload(mod, B)
    assert picks(mod, 7) == [
        (OVERLOAD, None),
        (OVERLOAD, None),
        (SUCC, A),
        (OVERLOAD, None),
        (OVERLOAD, None),
        (SUCC, B),
        (OVERLOAD, None),
    ]


def test_probe_num_zero_always_probes() -> None:
    mod = make(A, B, probe_num=0)
    overload(mod, B)
    assert [h for _, h in picks(mod, 3)] == [B, B, B]


# -- report ----------------------------------------------------------------------------


def test_unknown_host_report_is_ignored() -> None:
    mod = make(A)
    assert not mod.report(9, 9, SUCC, 0.0)
    assert not mod.dirty


def test_success_and_failure_counters() -> None:
    mod = make(A)
    mod.report(*A, SUCC, 0.0)
    mod.report(*A, SUCC, 0.0)
    h = mod.hosts[A]
    assert (h.vsucc, h.rsucc, h.contin_succ, h.contin_err) == (182, 2, 2, 0)
    mod.report(*A, FAIL, 0.0)
    assert (h.verr, h.rerr, h.contin_err, h.contin_succ) == (1, 1, 1, 0)
    assert mod.dirty


def test_any_nonzero_retcode_is_a_failure() -> None:
    mod = make(A)
    for code in (1, 2, 3, 99, -1):
        mod.report(*A, code, 0.0)
    assert mod.hosts[A].rerr == 5


def test_error_rate_overloads_idle_host() -> None:
    # verr / (vsucc + verr) > err_rate: 180 successes virtual, limit 0.1 -> 21st error
    mod = make(A, B, contin_err_limit=1000)
    for i in range(20):
        mod.report(*A, FAIL, 0.0)
        if i % 2:
            mod.report(*A, SUCC, 0.0)
    h = mod.hosts[A]
    assert h.state is HostState.IDLE  # 20 / (190 + 20) <= 0.1
    mod.report(*A, FAIL, 0.0)  # 21 / 211 < 0.1
    assert h.state is HostState.IDLE
    mod.report(*A, FAIL, 0.0)  # 22 / 212 > 0.1
    assert (h.vsucc, h.verr, h.rsucc, h.rerr) == (0, 5, 0, 0)
    assert list(mod.overload) == [h] and h not in mod.idle


def test_exact_error_rate_boundary() -> None:
    mod = make(A, init_succ_cnt=9, err_rate=0.1, contin_err_limit=100)
    mod.report(*A, FAIL, 0.0)  # 1/10 = 0.1, not > 0.1
    assert state(mod, A) is HostState.IDLE
    mod.report(*A, FAIL, 0.0)  # 2/11 > 0.1
    assert state(mod, A) is HostState.OVERLOAD


def test_consecutive_errors_overload_idle_host() -> None:
    mod = make(A, init_succ_cnt=100_000, contin_err_limit=3)
    mod.report(*A, FAIL, 0.0)
    mod.report(*A, FAIL, 0.0)
    mod.report(*A, SUCC, 0.0)  # breaks the run
    mod.report(*A, FAIL, 0.0)
    mod.report(*A, FAIL, 0.0)
    assert state(mod, A) is HostState.IDLE
    mod.report(*A, FAIL, 0.0)
    assert state(mod, A) is HostState.OVERLOAD
    assert mod.hosts[A].overload_ts == 0.0


def test_success_rate_returns_overloaded_host_to_idle() -> None:
    mod = make(A, init_err_cnt=5, succ_rate=0.5, contin_succ_limit=100)
    overload(mod, A, now=3.0)
    for _ in range(5):  # 5/10 = 0.5, not > 0.5
        mod.report(*A, SUCC, 3.0)
    assert state(mod, A) is HostState.OVERLOAD
    mod.report(*A, SUCC, 3.0)  # 6/11
    h = mod.hosts[A]
    assert h.state is HostState.IDLE and h.vsucc == 180 and h.idle_ts == 3.0
    assert list(mod.idle) == [h] and not mod.overload


def test_consecutive_successes_return_host_to_idle() -> None:
    mod = make(A, init_err_cnt=1000, contin_succ_limit=4)
    overload(mod, A)
    for _ in range(3):
        mod.report(*A, SUCC, 0.0)
    mod.report(*A, FAIL, 0.0)
    for _ in range(3):
        mod.report(*A, SUCC, 0.0)
    assert state(mod, A) is HostState.OVERLOAD
    mod.report(*A, SUCC, 0.0)
    assert state(mod, A) is HostState.IDLE


def test_failure_of_overloaded_host_keeps_it_overloaded() -> None:
    mod = make(A)
    overload(mod, A)
    mod.report(*A, FAIL, 1.0)
    assert state(mod, A) is HostState.OVERLOAD


def test_idle_window_with_high_real_error_rate_overloads() -> None:
    mod = make(A, err_rate=1.0, contin_err_limit=1000, window_err_rate=0.7, idle_timeout=15)
    for _ in range(7):
        mod.report(*A, FAIL, 1.0)
    for _ in range(2):
        mod.report(*A, SUCC, 1.0)
    assert state(mod, A) is HostState.IDLE
    mod.report(*A, SUCC, 15.0)  # window over: 7/10 >= 0.7
    assert state(mod, A) is HostState.OVERLOAD
    assert mod.hosts[A].overload_ts == 15.0


def test_idle_window_with_low_error_rate_resets_counters() -> None:
    mod = make(A, err_rate=1.0, contin_err_limit=1000, idle_timeout=15)
    for _ in range(6):
        mod.report(*A, FAIL, 1.0)
    for _ in range(3):
        mod.report(*A, SUCC, 1.0)
    mod.report(*A, SUCC, 15.0)  # 6/10 < 0.7
    h = mod.hosts[A]
    assert h.state is HostState.IDLE
    assert (h.vsucc, h.verr, h.rsucc, h.rerr, h.idle_ts) == (180, 0, 0, 0, 15.0)


def test_idle_window_not_over_changes_nothing() -> None:
    mod = make(A, idle_timeout=15)
    mod.report(*A, SUCC, 14.9)
    assert mod.hosts[A].rsucc == 1


def test_overload_timeout_returns_host_to_idle() -> None:
    mod = make(A, init_err_cnt=1000, overload_timeout=15)
    overload(mod, A, now=10.0)
    mod.report(*A, FAIL, 24.9)
    assert state(mod, A) is HostState.OVERLOAD
    mod.report(*A, FAIL, 25.0)
    assert state(mod, A) is HostState.IDLE
    assert mod.hosts[A].idle_ts == 25.0


def test_overloaded_host_probed_and_recovering() -> None:
    """The issue's scenario: 80% failures -> overload -> probed every probe_num -> idle."""
    mod = make(A, B, probe_num=10)
    for i in range(200):
        code, host = mod.pick()
        assert code == SUCC and host is not None
        if (host.ip, host.port) == A:
            mod.report(*A, FAIL if i % 5 else SUCC, 0.0)  # 80% failures
        else:
            mod.report(*B, SUCC, 0.0)
        if state(mod, A) is HostState.OVERLOAD:
            break
    assert state(mod, A) is HostState.OVERLOAD
    seen = [h for _, h in picks(mod, 33)]
    probes = [i for i, h in enumerate(seen) if h == A]
    assert probes and all(b - a == 11 for a, b in itertools.pairwise(probes))
    # A recovers: it succeeds on every probe until it is idle again
    for _ in range(200):
        code, host = mod.pick()
        assert host is not None
        mod.report(host.ip, host.port, SUCC, 1.0)
        if state(mod, A) is HostState.IDLE:
            break
    assert state(mod, A) is HostState.IDLE
    assert set(h for _, h in picks(mod, 4)) == {A, B}


def test_report_rows_and_dirty() -> None:
    mod = make(A, B)
    overload(mod, B)
    mod.report(*A, SUCC, 0.0)
    rows = mod.report_rows()
    assert sorted(rows) == [(1, 80, 1, 0, False), (2, 80, 0, 0, True)]
    assert not mod.dirty


@pytest.mark.parametrize(
    "kwargs",
    [
        {"probe_num": -1},
        {"err_rate": 1.5},
        {"succ_rate": -0.1},
        {"contin_err_limit": 0},
        {"idle_timeout": -1},
        {"init_succ_cnt": 0, "init_err_cnt": 0},
    ],
)
def test_invalid_config_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BalancerConfig(**kwargs)  # type: ignore[arg-type]
