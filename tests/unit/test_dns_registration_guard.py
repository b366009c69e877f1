"""The poller over registered instances (fake store, no database): a registration mark
change loads, the served table is the union, expiries are host removals for the guard
(one applied, a mass expiry held), and registrations added during a hold are served."""

from __future__ import annotations

import dataclasses

from lars.dns.instances import InstanceRow
from lars.dns.poller import Poller, Step
from lars.dns.store import PollMark, Snapshot
from tests.unit.dns_fakes import FakeStore, Published


def inst(modid: int, ip: int, *, passing: bool = True) -> InstanceRow:
    return InstanceRow(ip, modid, 1, ip, 80, f"10.0.0.{ip}:8888", "tcp", passing, 1, 1, 1)


class RegStore(FakeStore):
    """FakeStore plus RouteInstance rows and the mark every change raises."""

    def __init__(self) -> None:
        super().__init__()
        self.routes = []
        self.instances: list[InstanceRow] = []
        self.mark = 0

    def set_instances(self, rows: list[InstanceRow]) -> None:
        self.instances = rows
        self.mark += 1

    def poll(self, release_after: int | None = None) -> PollMark:
        return dataclasses.replace(super().poll(release_after), instance_mark=self.mark)

    def load(self, *after: int | None) -> Snapshot:  # (the change-row mark, if given)
        snap = super().load(*after)
        return dataclasses.replace(
            snap, instances=list(self.instances), instance_mark=self.mark, registrations=True
        )


def setup() -> tuple[RegStore, Published, Poller]:
    store, published = RegStore(), Published()
    poller = Poller(store, published, reload_interval=1000.0, wall=lambda: 1_700_000_000.0)
    # 5 modules x 4 registered instances, nothing in RouteData
    store.set_instances([inst(m, 10 * m + i) for m in range(1, 6) for i in range(4)])
    poller.load(0.0)
    return store, published, poller


def test_a_registration_change_alone_loads_and_pushes_its_module() -> None:
    store, published, poller = setup()
    assert published.table.host_count == 20 and published.table.registrations
    assert poller.check(0.1) is Step.NOTHING
    store.set_instances([*store.instances, inst(1, 19)])  # no RouteVersion bump
    assert poller.check(0.2) is Step.LOAD
    poller.run(Step.LOAD, 0.2)
    table, pushed = published.calls[-1]
    assert pushed == {(1, 1)} and (19, 80) in table.hosts((1, 1))


def test_one_expiry_is_applied_and_a_failing_check_removes_the_host() -> None:
    store, published, poller = setup()
    store.set_instances([r for r in store.instances if r.ip != 10])  # one expired
    poller.poll(0.1)
    assert poller.hold is None and published.table.host_count == 19
    failing = [dataclasses.replace(r, passing=False) if r.ip == 11 else r for r in store.instances]
    store.set_instances(failing)
    poller.poll(0.2)
    assert poller.hold is None and (11, 80) not in published.table.hosts((1, 1))


def test_a_mass_expiry_is_held_and_new_registrations_still_served() -> None:
    store, published, poller = setup()
    survivors = [r for r in store.instances if r.ip % 10 == 0]  # 15 of 20 expire
    store.set_instances(survivors)
    poller.poll(0.1)
    assert poller.hold is not None
    assert published.table.host_count == 20  # nothing removed was pushed
    pushes = len(published.calls)
    store.set_instances([*survivors, inst(6, 61)])  # a deploy registers during the hold
    poller.poll(0.2)
    table, pushed = published.calls[-1]
    assert len(published.calls) == pushes + 1 and pushed == {(6, 1)}
    assert table.hosts((6, 1)) == ((61, 80),) and table.host_count == 21
    assert poller.hold is not None  # the removals stay held
    # the agents come back (their syncs re-register everything): the hold ends
    store.set_instances([inst(m, 10 * m + i) for m in range(1, 6) for i in range(4)]
                        + [inst(6, 61)])  # fmt: skip
    poller.poll(0.3)
    assert poller.hold is None and published.table.host_count == 21
