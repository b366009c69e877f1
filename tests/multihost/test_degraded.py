"""Scenarios 4 and 5 of issue 14: slow, lossy and silent links.

One route service and one reporter; three app hosts, each with an agent and a business
client (get_host + report at 50/s over MODULES, watching WATCHED).

4. 50 ms delay (each direction) and 2 % loss on every app host's link for 60 s of load,
   with a route change every 0.5 s: every change reaches every agent (by itself, or in a
   later push when two fall in one poll) and the last one is served; the share of changes
   served within the poll interval + 300 ms is at least 90 % of the share measured on
   clean links in the same run (20 s just before; 2 % loss alone delays a few pushes by
   a retransmission); once the links are clean every
   reported key is in ServerCallStatus with its latest value; no process dies and no RSS
   grows past a bound.
5. The reporter's link goes silent for 30 s (packets vanish, nothing is reset): the agents
   keep serving, keep the latest report per module (bounded: one per module) and deliver
   it after healing. How long each agent took to notice and to recover is printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lars.dbengine import make_engine
from lars.dns.service import DEFAULT_POLL_INTERVAL
from lars.routes.admin import RouteAdmin
from tests.multihost.platform import (
    MODULES,
    WATCHED,
    AppHost,
    Platform,
    Proc,
    call_status,
    log_times,
    wait_for,
)

pytestmark = pytest.mark.e2e

LOAD = 60.0
CLEAN = 20.0  # changes on clean links first: the baseline of the same run
DELAY, LOSS = 0.05, 0.02
PUSH_P99 = DEFAULT_POLL_INTERVAL + 0.3
CHANGE_EVERY = 0.5
RSS_GROWTH_KIB = 16 * 1024  # over the 60 s of load
SILENCE = 30.0
RATE = 50
# get_host timeout of the business clients here: the agent answers from memory in well under
# 1 ms, so a slower answer is the shared VM starving a process (seen at load 14: 1.2 s
# stalls), not the fault under test; scenario 6 keeps the 0.2 s default on purpose.
CLIENT_TIMEOUT = 1.0


@dataclass
class Fleet:
    platform: Platform
    dns: Proc
    reporter: Proc
    reporter_ip: str
    apps: list[AppHost]


@pytest.fixture(scope="module")
def fleet(platform: Platform) -> Iterator[Fleet]:
    dns, dns_addr = platform.start_dns()
    reporter, rep_addr = platform.start_reporter()
    apps = [platform.add_app(name) for name in ("h1", "h2", "h3")]
    for app in apps:
        app.start_agent([dns_addr], rep_addr)
        app.start_client(rate=RATE, timeout=CLIENT_TIMEOUT)
    for app in apps:
        wait_for(f"{app.host.name} serving", lambda a=app: len(a.clients[0].seconds()) >= 2, 60)
    yield Fleet(platform, dns, reporter, rep_addr.split(":")[0], apps)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def reported_keys(fleet: Fleet) -> set[tuple[int, int, str, int, str]]:
    """Every (modid, cmdid, ip, port, caller) the business clients report."""
    rows = {(r[0], r[1], r[2], r[3]) for r in call_status(fleet.platform.db_url)}
    hosts = {k for k in rows if (k[0], k[1]) in MODULES}
    return {(*k, app.ip) for k in hosts for app in fleet.apps}


def change_routes(db_url: str, prefix: str, old: str, seconds: float) -> dict[str, float]:
    """Replace WATCHED's host every CHANGE_EVERY s for `seconds`, starting from `old`;
    {new host: commit wall time}, in commit order."""
    engine = make_engine(db_url)
    admin = RouteAdmin(engine)
    commits: dict[str, float] = {}
    start = time.time()
    try:
        i = 0
        while time.time() - start < seconds:
            i += 1
            new = f"{prefix}.{i // 250}.{i % 250 + 1}"
            admin.replace_host(*WATCHED, old, 9000, new, 9000)
            commits[new] = time.time()
            old = new
            time.sleep(max(0.0, start + i * CHANGE_EVERY - time.time()))
    finally:
        engine.dispose()
    return commits


def push_latencies(app: AppHost, commits: dict[str, float]) -> list[float | None]:
    """Per commit: from its commit until the agent served it or a later change (the route
    service pushes its current table: two commits inside one poll are one push, and the
    earlier host is never served by itself); None: neither ever reached the agent."""
    first_seen: dict[str, float] = {}
    for line in app.clients[0].routes():
        for ip, _ in line["route"]:
            first_seen.setdefault(ip, line["t"])
    out: list[float | None] = []
    reached: float | None = None
    for ip, t in reversed(commits.items()):
        seen = first_seen.get(ip)
        if seen is not None and (reached is None or seen < reached):
            reached = seen
        out.append(None if reached is None else reached - t)
    return out[::-1]


def test_delay_and_loss_pushes_reports_and_memory(fleet: Fleet) -> None:
    """Counts and ratios measured in one run, not absolute latency: every change reaches
    every agent (itself, or merged into a later push), the last one is served by every
    agent, and the share of changes served within PUSH_P99 under 50 ms delay and 2 % loss
    is at least 90 % of that share on the clean links just before, on the same machine at
    the same load (a load average of 3.5 once pushed a fixed p99 bound over: 0.466 s;
    the "9-11 pushes not seen" then were changes merged into the next push)."""
    db = fleet.platform.db_url
    procs = [fleet.dns, fleet.reporter, *(a.agent for a in fleet.apps if a.agent)]
    clean = change_routes(db, "10.96", "10.98.0.1", CLEAN)
    time.sleep(2)
    rss0 = {p.log.stem: p.rss_kib() for p in procs}
    for app in fleet.apps:
        app.host.impair(delay=DELAY, loss=LOSS)
    start = time.time()
    commits = change_routes(db, "10.97", next(reversed(clean)), LOAD)
    loaded = time.time()
    rss1 = {p.log.stem: p.rss_kib() for p in procs}
    for app in fleet.apps:
        app.host.heal()
    last = next(reversed(commits))

    def serving_last() -> bool:
        return all(
            any(ip == last for line in a.clients[0].routes() for ip, _ in line["route"])
            for a in fleet.apps
        )

    try:
        wait_for("every agent serving the last change", serving_last, 60)
    except AssertionError:
        tails = {a.host.name: a.clients[0].routes()[-3:] for a in fleet.apps}
        raise AssertionError(
            f"last change {last} not served: {tails}; dns: {fleet.dns.text()[-3000:]}"
        ) from None

    figures: dict[str, dict[str, object]] = {}
    for name, changes in (("clean", clean), ("impaired", commits)):
        per_app = {app.host.name: push_latencies(app, changes) for app in fleet.apps}
        every = [x for v in per_app.values() for x in v if x is not None]
        lost = {n: sum(1 for x in v if x is None) for n, v in per_app.items()}
        merged = {
            app.host.name: sum(
                1 for ip in changes
                if not any(ip == h for line in app.clients[0].routes() for h, _ in line["route"])
            )
            for app in fleet.apps
        }  # fmt: skip
        figures[name] = {
            "changes": len(changes),
            "lost": lost,
            "merged": merged,
            "within": round(sum(1 for x in every if x <= PUSH_P99) / max(1, len(every)), 4),
            "p50": round(pct(every, 0.5), 3),
            "p99": round(pct(every, 0.99), 3),
        }
    calls = {app.host.name: app.clients[0].window(start, loaded) for app in fleet.apps}
    print(f"scenario 4: {DELAY * 1000:.0f} ms delay, {LOSS:.0%} loss, {LOAD:.0f} s: push "
          f"latency {figures} (share within {PUSH_P99:.2f} s); calls {calls}; RSS KiB "
          f"before {rss0} after {rss1}")  # fmt: skip
    for name in ("clean", "impaired"):
        assert all(n == 0 for n in figures[name]["lost"].values()), figures  # type: ignore[attr-defined]
    impaired, baseline = figures["impaired"]["within"], figures["clean"]["within"]
    assert impaired >= 0.90 * baseline, figures  # type: ignore[operator]
    for name, w in calls.items():
        assert w["failed"] == 0, f"{name}: {w}"
    for name in rss0:
        assert rss1[name] - rss0[name] <= RSS_GROWTH_KIB, (name, rss0[name], rss1[name])
    for proc in procs:
        assert proc.alive, f"{proc.log.stem} died: {proc.text()[-2000:]}"
        assert "Traceback" not in proc.text(), f"{proc.log.stem}: {proc.text()[-3000:]}"

    # reports: with the links clean, every key's row is fresh (its latest value)
    since = int(time.time())
    want = reported_keys(fleet)
    assert len(want) == len(MODULES) * 2 * len(fleet.apps), want

    def fresh() -> bool:
        rows = {(r[0], r[1], r[2], r[3], r[4]): r[7] for r in call_status(fleet.platform.db_url)}
        return all(rows.get(k, 0) >= since for k in want)

    wait_for("every key's latest report in ServerCallStatus", fresh, 10)
    print(f"scenario 4: all {len(want)} reported keys fresh in ServerCallStatus after the "
          f"links were clean")  # fmt: skip


def test_silent_reporter_link_keeps_latest_reports_and_delivers_them(fleet: Fleet) -> None:
    t0 = time.time()
    for app in fleet.apps:
        app.host.drop(peer=fleet.reporter_ip)
    time.sleep(SILENCE - 10)
    stopped = {}
    for app in fleet.apps:  # the last calls: what must reach the table after healing
        app.clients[0].stop()
        stopped[app.host.name] = time.time()
    time.sleep(max(0.0, t0 + SILENCE - time.time()))
    healed = time.time()
    for app in fleet.apps:
        app.host.heal()
    want = reported_keys(fleet)

    def delivered() -> float | bool:
        rows = {(r[0], r[1], r[2], r[3], r[4]): r[7] for r in call_status(fleet.platform.db_url)}
        ok = all(rows.get(k, 0) >= int(stopped[n]) for n in stopped
                 for k in want if k[4] == fleet.platform.apps[n].ip)  # fmt: skip
        return ok and time.time()

    at = wait_for("the kept reports in ServerCallStatus", delivered, 30, every=0.1)
    figures = {}
    for app in fleet.apps:
        assert app.agent is not None
        text = app.agent.text()
        lost = [t for t in log_times(text, "agent-reporter: connection to") if t >= t0]
        kept = [t for t in log_times(text, "report(s) kept while disconnected") if t >= healed]
        kept_lines = [ln for ln in text.splitlines() if "kept while disconnected" in ln]
        figures[app.host.name] = {
            "noticed_s": round(lost[0] - t0, 2) if lost else None,
            "resent_after_heal_s": round(kept[0] - healed, 2) if kept else None,
            "kept": kept_lines[-1].split("sending ")[1].split(" ")[0] if kept_lines else None,
        }
        calls = app.clients[0].window(t0, stopped[app.host.name])
        assert calls["failed"] == 0, f"{app.host.name}: {calls}"
    print(f"scenario 5: reporter link silent {healed - t0:.1f} s; per agent {figures}; every "
          f"key's latest report in the table {at - healed:.2f} s after healing")  # fmt: skip
    for name, f in figures.items():
        assert f["noticed_s"] is not None, f"{name} never noticed the silent reporter"
        # bounded: the latest request per module, one per module with calls
        assert f["kept"] is not None and int(f["kept"]) <= len(MODULES), (name, f)
