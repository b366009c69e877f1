"""Scenarios 2 and 3 of issue 14: partitions between app hosts and route services.

Two route services (dns1, dns2, each on its own bridge address) and a reporter; three app
hosts whose agents list both route services; a business client on each calls get_host +
report at 50/s and watches the WATCHED module's host set.

2. h2 is cut off from both route services for 30 s (packets vanish): its client sees 0
   failed get_host; route changes made meanwhile reach h1 and h3 within the push target
   and h2 within 2 s of healing; h1 and h3 see no failure and no slowdown.
3. h1 is cut off from the route service it uses: its agent moves to the other one within
   2 s with 0 failed get_host, and the next change reaches it through the other one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lars.dbengine import make_engine
from lars.routes.admin import RouteAdmin
from tests.multihost.platform import WATCHED, AppHost, Business, Platform, wait_for

pytestmark = pytest.mark.e2e

PARTITION = 30.0
HEAL_TARGET = 2.0  # a change made during a partition reaches the host this soon after healing
MOVE_TARGET = 2.0  # an agent cut off from its route service uses the other one this soon
PUSH_TARGET = 0.5  # commit -> agent on an undisturbed host (issue 11: p99 150 ms, 1 k agents)
RATE = 50
# get_host timeout of the business clients here: the agent answers from memory in well under
# 1 ms, so a slower answer is the shared VM starving a process (seen at load 14: 1.2 s
# stalls), not the fault under test; scenario 6 keeps the 0.2 s default on purpose.
CLIENT_TIMEOUT = 1.0


@dataclass
class Fleet:
    platform: Platform
    apps: list[AppHost]
    dns: list[str]  # ip:port of dns1, dns2

    def change(self, ip: str) -> float:
        """Add host ip:9000 to WATCHED; the commit's wall time."""
        engine = make_engine(self.platform.db_url)
        try:
            RouteAdmin(engine).add_host(*WATCHED, ip, 9000)
            return time.time()
        finally:
            engine.dispose()


def seen_at(client: Business, ip: str, after: float) -> float | None:
    """When the client's watcher first saw `ip` in WATCHED's host set."""
    for line in client.routes():
        if line["t"] >= after - 1.0 and any(h[0] == ip for h in line["route"]):
            return float(line["t"])
    return None


def assert_undisturbed(app: AppHost, t0: float, t1: float) -> dict[str, object]:
    w = app.clients[0].window(t0, t1)
    seconds = [s for s in app.clients[0].seconds() if t0 + 1 < s["t"] <= t1]
    slowest = min((s["ok"] for s in seconds), default=0)
    assert w["failed"] == 0, f"{app.host.name}: {w}"
    assert slowest >= 0.8 * RATE, f"{app.host.name}: a second with only {slowest} calls"
    return {**w, "slowest_second": slowest}


@pytest.fixture(scope="module")
def fleet(platform: Platform) -> Iterator[Fleet]:
    _, dns1 = platform.start_dns("dns1")
    _, dns2 = platform.start_dns("dns2")
    _, reporter = platform.start_reporter()
    apps = [platform.add_app(name) for name in ("h1", "h2", "h3")]
    for app in apps:
        app.start_agent([dns1, dns2], reporter)
        app.start_client(rate=RATE, timeout=CLIENT_TIMEOUT)
    for app in apps:
        wait_for(f"{app.host.name} serving", lambda a=app: len(a.clients[0].seconds()) >= 2, 60)
    yield Fleet(platform, apps, [dns1, dns2])


def test_partitioned_host_keeps_serving_and_catches_up_after_healing(fleet: Fleet) -> None:
    h1, h2, h3 = fleet.apps
    dns_ips = [a.split(":")[0] for a in fleet.dns]
    t0 = time.time()
    for ip in dns_ips:
        h2.host.drop(peer=ip)
    time.sleep(5)
    changes = {}
    for i in range(3):  # three changes during the partition, 8 s apart
        ip = f"10.98.2.{i + 1}"
        changes[ip] = fleet.change(ip)
        time.sleep(8)
    time.sleep(max(0.0, t0 + PARTITION - time.time()))
    healed = time.time()
    h2.host.heal()
    last = max(changes, key=lambda ip: changes[ip])
    caught_up = wait_for("h2 catching up", lambda: seen_at(h2.clients[0], last, healed), 30)
    time.sleep(3)
    end = time.time()

    latencies = {
        app.host.name: [round(seen_at(app.clients[0], ip, t) - t, 3) for ip, t in changes.items()]
        for app in (h1, h3)
    }  # fmt: skip
    after_heal = round(caught_up - healed, 3)
    calls = h2.clients[0].window(t0, end)
    print(f"scenario 2: partition {healed - t0:.1f} s; h2 {calls}; h2 caught up "
          f"{after_heal} s after healing; push latency on h1/h3 (s): {latencies}")  # fmt: skip
    assert calls["failed"] == 0, calls
    assert calls["ok"] >= 0.8 * RATE * (end - t0), calls
    for name, values in latencies.items():
        assert max(values) <= PUSH_TARGET, f"{name}: {values}"
    for app in (h1, h3):
        print(f"scenario 2: {app.host.name} meanwhile: {assert_undisturbed(app, t0, end)}")
    assert after_heal <= HEAL_TARGET, f"h2 got the change {after_heal} s after healing"


def test_agent_moves_to_the_other_route_service(fleet: Fleet) -> None:
    h1 = fleet.apps[0]
    wait_for("h1 connected to a route service", lambda: set(fleet.dns) & h1.host.peers(), 30)
    (used,) = set(fleet.dns) & h1.host.peers()
    (other,) = set(fleet.dns) - {used}
    time.sleep(1)
    t0 = time.time()
    h1.host.drop(peer=used.split(":")[0])
    moved = wait_for(f"h1 using {other}", lambda: other in h1.host.peers() and time.time(), 30)
    change = fleet.change("10.98.3.1")
    seen = wait_for("the change on h1", lambda: seen_at(h1.clients[0], "10.98.3.1", change), 10)
    time.sleep(2)
    end = time.time()
    h1.host.heal()
    calls = h1.clients[0].window(t0, end)
    move = round(moved - t0, 3)
    print(f"scenario 3: h1 moved from {used} to {other} in {move} s; the next change "
          f"arrived {seen - change:.3f} s after its commit; h1 {calls}")  # fmt: skip
    assert calls["failed"] == 0, calls
    assert move <= MOVE_TARGET, f"h1 took {move} s to use {other}"
    assert seen - change <= PUSH_TARGET
