"""A hypothesis state machine over the guard and the poller (issue 18): random adds,
deletes of hosts and modules, replacements, purges over random gaps, version-only bumps,
restarts (a new poller built from the saved state and the database), releases and
restores. The invariant: the served table never loses more than max_drop_ratio of the
window's baseline without a release, and every hold, release and restore is recorded.

The baseline is recomputed here from the history of served tables (not from
lars.dns.baseline's queues): per module, the highest count served within the window
before the guard's time (the hold's start while held, when the baseline does not age).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lars.dns.guard import GuardPolicy
from lars.dns.poller import Poller, Step
from lars.dns.table import Key
from tests.unit.dns_fakes import FakeStore
from tests.unit.guard_fakes import AuditWithIds, Clock, MemoryState, poller

RATIO, MIN_DROP, WINDOW = 0.5, 3, 600.0
MODULES = [(m, 1) for m in range(1, 9)]


def counts_of(rows: list[tuple[int, int, int, int]]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for m, c, _ip, _port in set(rows):
        out[(m, c)] = out.get((m, c), 0) + 1
    return out


class GuardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.store = FakeStore()
        self.audit = AuditWithIds(self.store)
        self.state = MemoryState()
        self.policy = GuardPolicy(max_drop_ratio=RATIO, min_drop_hosts=MIN_DROP, window=WINDOW)
        self.p: Poller
        self.next_ip = 1
        # served history since the last release: (start time, end time or None, counts)
        self.history: list[tuple[float, float | None, dict[Key, int]]] = []
        self.releases = 0
        self.restores = 0
        self.restore_rows: list[int] = []  # versions of the 'restore' rows written

    # --- helpers ---

    def _host(self) -> tuple[int, int]:
        self.next_ip += 1
        return self.next_ip, 80

    def _served_counts(self) -> dict[Key, int]:
        table = self.p.table
        assert table is not None
        return {k: len(table.hosts(k)) for k in table}

    def _baseline(self, at: float) -> dict[Key, int]:
        peaks: dict[Key, int] = {}
        for start, end, counts in self.history:
            if start > at or (end is not None and end < at - WINDOW):
                continue
            for k, n in counts.items():
                peaks[k] = max(peaks.get(k, 0), n)
        return peaks

    def _poll(self) -> None:
        before = self._served_counts()
        hold_before = self.p.hold
        at = hold_before.since if hold_before is not None else self.clock.now
        base = self._baseline(at)
        self.p.poll(self.clock.now)
        after = self._served_counts()
        if after != before:
            self._served(after)
            loss = sum(max(0, n - after.get(k, 0)) for k, n in base.items())
            assert loss <= RATIO * sum(base.values()) or loss < MIN_DROP, (base, after, loss)

    def _served(self, counts: dict[Key, int]) -> None:
        now = self.clock.now
        if self.history:
            start, _end, old = self.history[-1]
            self.history[-1] = (start, now, old)
        self.history.append((now, None, counts))

    def _edit(self) -> None:
        self.store.version += 1
        self._poll()

    # --- rules ---

    @initialize(hosts=st.lists(st.integers(1, 5), min_size=len(MODULES), max_size=len(MODULES)))
    def start(self, hosts: list[int]) -> None:
        self.store.routes = [
            (m, c, *self._host())
            for (m, c), n in zip(MODULES, hosts, strict=True)
            for _ in range(n)
        ]
        _pub, self.p = poller(self.store, self.audit, self.state, self.clock, self.policy)
        self.p.load(self.clock.now)
        self._served(self._served_counts())

    @rule(gap=st.sampled_from([0.0, 0.05, 0.15, 0.3, 5.0, 120.0, 700.0]))
    def wait(self, gap: float) -> None:
        self.clock.advance(gap)
        self._poll()

    @rule(module=st.sampled_from(MODULES), n=st.integers(1, 3))
    def add(self, module: Key, n: int) -> None:
        self.store.routes += [(*module, *self._host()) for _ in range(n)]
        before = self.p.hold
        served = self._served_counts()
        self._edit()
        if before is None:  # additions are never held
            assert self.p.hold is None and self._served_counts() != served

    @rule(module=st.sampled_from(MODULES), n=st.integers(1, 3))
    def delete_hosts(self, module: Key, n: int) -> None:
        mine = [r for r in self.store.routes if (r[0], r[1]) == module][:n]
        self.store.routes = [r for r in self.store.routes if r not in mine]
        self._edit()

    @rule(module=st.sampled_from(MODULES))
    def delete_module(self, module: Key) -> None:
        self.store.routes = [r for r in self.store.routes if (r[0], r[1]) != module]
        self._edit()

    @rule(module=st.sampled_from(MODULES))
    def replace(self, module: Key) -> None:
        mine = [r for r in self.store.routes if (r[0], r[1]) == module]
        if not mine:
            return
        self.store.routes = [r for r in self.store.routes if r != mine[0]]
        self.store.routes.append((*module, *self._host()))
        before = self.p.hold
        self._edit()
        if before is None:  # a rolling replacement keeps the counts: never held
            assert self.p.hold is None

    @rule(
        fraction=st.sampled_from([0.2, 0.4, 1.0]),
        gaps=st.lists(st.sampled_from([0.0, 0.15, 0.3, 10.0]), min_size=1, max_size=8),
    )
    def purge(self, fraction: float, gaps: list[float]) -> None:
        for gap in gaps:
            cut = max(1, int(len(self.store.routes) * fraction))
            self.store.routes = self.store.routes[cut:]
            self.clock.advance(gap)
            self._edit()

    @rule()
    def version_bump(self) -> None:
        self._edit()

    @rule(gap=st.sampled_from([0.0, 1.0, 900.0]))
    def restart(self, gap: float) -> None:
        """A new route service process: only the database and the saved state survive."""
        held_before = self.p.hold
        self.clock.advance(gap)
        published, self.p = poller(self.store, self.audit, self.state, self.clock, self.policy)
        served_before = self.history[-1][2]
        at = held_before.since if held_before is not None else self.clock.now
        base = self._baseline(at)
        self.p.load(self.clock.now)
        assert published.calls  # it serves at once: the good table or a table that passes
        after = self._served_counts()
        if after != served_before:
            self._served(after)
        loss = sum(max(0, n - after.get(k, 0)) for k, n in base.items())
        assert loss <= RATIO * sum(base.values()) or loss < MIN_DROP

    @precondition(lambda self: self.p.hold is not None)
    @rule()
    def release(self) -> None:
        hold = self.p.hold
        assert hold is not None and hold.audit_id in self.audit.hold_ids  # recorded
        self.audit.release()
        assert self.p.check(self.clock.now) is Step.RELEASE
        self.p.run(Step.RELEASE, self.clock.now)
        assert self.p.hold is None
        assert self.audit.rows[-1][0] == "apply" and self.audit.rows[-1][2].startswith("released")
        self.releases += 1
        self.history = []  # the operator accepted the table: the baseline starts again
        self._served(self._served_counts())

    @precondition(lambda self: self.p.hold is not None)
    @rule()
    def restore(self) -> None:
        """`lars route restore`: the saved served table back into RouteData, a bump."""
        saved = self.state.load()
        assert saved is not None and saved.held is not None
        self.store.routes = [
            (m, c, ip, port) for (m, c), hosts in saved.routes.items() for ip, port, _ in hosts
        ]
        self.restore_rows.append(self.store.version + 1)
        self._edit()
        assert self.p.hold is None
        assert self.audit.rows[-1][0] == "apply"
        self.restores += 1

    # --- invariants ---

    @invariant()
    def every_hold_is_recorded_and_saved(self) -> None:
        hold = self.p.hold
        saved = self.state.load()
        assert saved is not None
        table = self.p.table
        assert table is not None
        assert saved.version == table.version and saved.hosts == table.host_count
        if hold is None:
            assert saved.held is None
        else:
            assert hold.audit_id in self.audit.hold_ids
            assert saved.held is not None and saved.held.audit_id == hold.audit_id
            assert saved.held.since == hold.since


GuardMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestGuardMachine = GuardMachine.TestCase
