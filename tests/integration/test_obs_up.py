"""`lars up`'s one listener: every part's families, console counters, readiness; and the
Grafana dashboard names only metrics that this real exposition has."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.client import LarsClient, RetCode
from lars.obs.status import render_status
from lars.up import UpConfig, UpStack
from tests.obs_util import Samples, get, get_json, names, scrape, value

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "lars.json"
PASSWORD = "a-long-enough-password"


def post_login(base: str, password: str) -> int:
    req = urllib.request.Request(
        base + "/api/login",
        data=json.dumps({"password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as rsp:
            return int(rsp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Samples]]:
    db = tmp_path_factory.mktemp("up") / "lars.db"
    stack = UpStack(
        UpConfig(
            db_url=f"sqlite:///{db}",
            demo=True,
            dns_port=0,
            reporter_port=0,
            agent_port=0,
            console_port=0,
            console_password=PASSWORD,
            metrics=("127.0.0.1", 0),
        )
    )
    stack.start()
    try:
        assert stack.metrics is not None and stack.agent is not None
        assert f"metrics {stack.metrics.url}/metrics" in stack.describe()
        with LarsClient(ports=stack.agent.ports, timeout=1.0) as client:  # type: ignore[arg-type]
            client.reg_init(1, 1)
            deadline = time.monotonic() + 20
            while (r := client.get_host(1, 1)).retcode != RetCode.SUCC:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            for _ in range(20):
                client.report(1, 1, r.ip, r.port, 1)  # errors: overload, transitions
        assert stack.console is not None
        console = stack.console.url
        for _ in range(2):
            assert post_login(console, "wrong password") == 401
        deadline = time.monotonic() + 20
        while True:  # the reporter commits the agent's first report within a few seconds
            samples = scrape(stack.metrics.url)
            if ("lars_reporter_last_commit_age_seconds", frozenset()) in samples:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield stack, samples
    finally:
        stack.stop()


def test_up_serves_every_part_on_one_listener(up: tuple[UpStack, Samples]) -> None:
    stack, samples = up
    assert stack.metrics is not None
    prefixes = {n.split("_")[1] for n in names(samples) if n.startswith("lars_")}
    assert {"dns", "reporter", "agent", "console"} <= prefixes
    assert value(samples, "lars_console_login_failures_total") == 2
    assert value(samples, "lars_console_http_requests_total",
                 method="POST", route="/api/login", status="401") == 2  # fmt: skip
    assert value(samples, "lars_agent_host_transitions_total",
                 transition="idle_to_overload") >= 1  # fmt: skip
    assert value(samples, "lars_dns_table_loaded") == 1
    code, ready = get_json(stack.metrics.url + "/readyz")
    assert code == 200 and ready["daemon"] == "up", ready
    code, status = get_json(stack.metrics.url + "/status")
    assert code == 200 and set(status) >= {"dns", "reporter", "agent", "ready"}
    text = render_status(status)
    assert text.startswith("lars up: ready")
    for part in ("lars dns: ready", "lars reporter: ready", "lars agent: ready"):
        assert f"  {part}" in text, text
    code, view = get_json(stack.metrics.url + "/debug/module?modid=1&cmdid=1")
    assert code == 200 and len(view["hosts"]) == 3
    # the console answers its own scrape too
    code, _, body = get(stack.console.url + "/metrics")  # type: ignore[union-attr]
    assert code == 200 and b"lars_console_login_failures_total 2.0" in body


def _dashboard_metrics() -> set[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in doc["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs, "the dashboard has no queries"
    return {m for e in exprs for m in re.findall(r"\blars_[a-z_]+\b", e)}


def test_dashboard_names_only_metrics_the_daemons_export(up: tuple[UpStack, Samples]) -> None:
    _, samples = up
    exported = names(samples)
    used = _dashboard_metrics()
    assert len(used) >= 10
    missing = sorted(used - exported)
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " ".join(p["title"].lower() for p in doc["panels"])
    for topic in ("throughput", "error", "overload", "push", "reporter"):
        assert topic in titles, topic


def test_readme_table_lists_every_exported_family(up: tuple[UpStack, Samples]) -> None:
    _, samples = up
    readme = (DASHBOARD.parents[2] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(lars_[a-z_]+)` \|", readme, re.M))
    families = {re.sub(r"_(bucket|sum|count|created)$", "", n) for n in names(samples)}
    missing = sorted(f for f in families if f.startswith("lars_") and f not in documented)
    assert not missing, f"exported but not in the README metric table: {missing}"


def test_standard_process_python_and_build_families(up: tuple[UpStack, Samples]) -> None:
    import lars

    _, samples = up
    present = {name for name, _ in samples}
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_start_time_seconds", "python_info",
                   "python_gc_collections_total"):  # fmt: skip
        assert family in present, family
    builds = [dict(labels) for name, labels in samples if name == "lars_build_info"]
    assert len(builds) == 1
    assert builds[0]["version"] == lars.__version__ and builds[0]["daemon"] == "up"
