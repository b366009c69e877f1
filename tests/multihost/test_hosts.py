"""Scenarios 1 and 6 of issue 14: three app hosts on one route service and reporter.

1. Every agent serves its host's business client, and ServerCallStatus.caller holds each
   host's own address (not 127.0.0.1, not a placeholder).
6. A client whose agent is down gets SYSTEM_ERROR within its timeout (frozen agent: a
   timeout; killed agent: at once), never a hang, while the other hosts see nothing.
The two share one set-up (the fleet); 6 runs last because it takes an agent down.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.multihost.netns import Host
from tests.multihost.platform import MODULES, AppHost, Platform, call_status, wait_for

pytestmark = pytest.mark.e2e

HOSTS = ("h1", "h2", "h3")
TIMEOUT = 0.2  # the business clients' get_host timeout (the library default)


@pytest.fixture(scope="module")
def fleet(platform: Platform) -> Iterator[list[AppHost]]:
    _, dns = platform.start_dns()
    _, reporter = platform.start_reporter()
    apps = [platform.add_app(name) for name in HOSTS]
    for app in apps:
        app.start_agent([dns], reporter)
    for app in apps:
        app.start_client(rate=50, timeout=TIMEOUT)
    for app in apps:
        wait_for(f"{app.host.name} serving", lambda a=app: len(a.clients[0].seconds()) >= 2, 60)
    yield apps


def test_every_agent_serves_and_reports_its_own_address(fleet: list[AppHost]) -> None:
    platform = fleet[0].platform
    ips = {app.ip for app in fleet}
    assert len(ips) == 3 and all(not ip.startswith("127.") for ip in ips)
    want = {(m, c, ip) for m, c in MODULES for ip in ips}

    def reported() -> bool:
        rows = call_status(platform.db_url)
        return want <= {(r[0], r[1], r[4]) for r in rows}

    wait_for("a ServerCallStatus row per module and host", reported, 30)
    rows = call_status(platform.db_url)
    callers = {r[4] for r in rows}
    assert callers == ips, f"callers {callers}, hosts {ips}"
    for app in fleet:
        assert app.agent is not None and f"caller {app.ip}" in app.agent.text()
        client = app.clients[0]
        seconds = client.seconds()
        ok = sum(s["ok"] for s in seconds)
        assert ok >= 50, f"{app.host.name}: only {ok} successful get_host"
        assert client.failures() == [], f"{app.host.name}: {client.failures()[:5]}"
        mine = [r for r in rows if r[4] == app.ip]
        assert sum(r[5] for r in mine) > 0 and all(r[6] == 0 for r in mine)
        print(f"scenario 1: {app.host.name} {app.ip}: {ok} get_host ok, 0 failed, "
              f"{len(mine)} ServerCallStatus rows with caller {app.ip}")  # fmt: skip


def test_a_down_agent_gives_timeouts_not_hangs_and_others_see_nothing(
    fleet: list[AppHost],
) -> None:
    down, others = fleet[2], fleet[:2]
    agent = down.agent
    assert agent is not None
    client = down.clients[0]
    time.sleep(1.5)
    t0 = time.time()
    agent.proc.send_signal(signal.SIGSTOP)  # frozen: datagrams queue, nothing answers
    time.sleep(4)
    t1 = time.time()
    agent.proc.send_signal(signal.SIGKILL)  # gone: the port is closed
    agent.proc.send_signal(signal.SIGCONT)
    agent.proc.wait(10)
    time.sleep(4)
    t2 = time.time()
    time.sleep(1.5)  # let the last second's line be written

    frozen, killed = client.window(t0, t1), client.window(t1, t2)
    for name, w in (("frozen", frozen), ("killed", killed)):
        print(f"scenario 6: agent {name}: {w}")
        assert w["ok"] == 0, f"{name}: {w}"
        assert w["failed"] > 0 and set(w["by_code"]) == {"SYSTEM_ERROR"}, w
        # a timeout answer, never a hang: no call waited much past its timeout
        assert w["max_ms"] <= TIMEOUT * 1000 + 150, w
        assert w["seconds"] >= 2, f"the client stopped calling: {w}"
    assert frozen["failed"] >= 10, frozen  # about 1 / TIMEOUT timeouts a second
    assert killed["failed"] >= 3 * 40, killed  # refused at once: the steady rate goes on
    for app in others:
        w = app.clients[0].window(t0, t2)
        print(f"scenario 6: {app.host.name} meanwhile: {w}")
        assert w["failed"] == 0 and w["ok"] >= 6 * 40, w


def test_link_down_cuts_only_that_host(fleet: list[AppHost]) -> None:
    """The harness's `ip link set down` fault: h1 cannot reach the bridge, h2 still can."""
    h1, h2 = fleet[0].host, fleet[1].host
    probe = "import socket,sys; socket.create_connection((sys.argv[1], 9), timeout=1)"

    def reaches(host: Host) -> str:
        out = subprocess.run(host.python(["-c", probe, host.net.gateway]), capture_output=True,
                             text=True, timeout=10)  # fmt: skip
        return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "connected"

    assert "ConnectionRefusedError" in reaches(h1)  # up: the gateway answers (RST on port 9)
    h1.link_down()
    try:
        assert "ConnectionRefusedError" not in reaches(h1)  # down: no route, nothing answers
        assert "ConnectionRefusedError" in reaches(h2)
    finally:
        h1.link_up()
    assert "ConnectionRefusedError" in reaches(h1)
