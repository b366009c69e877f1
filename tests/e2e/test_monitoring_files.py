"""The shipped monitoring files work as shipped: the Grafana dashboard loads imported or
provisioned (no `__inputs`, a `$datasource` variable, `$job`/`$instance` filters on every
query, aggregated fleet panels, one valid unit per panel), the Prometheus alert rules
pass `promtool check rules`, and every metric either file names exists in a real
exposition of the daemon that owns it."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lars.client import LarsClient, RetCode
from tests.e2e.test_obs_status import Daemon, stack  # noqa: F401  (the fixture)
from tests.obs_util import get, names, scrape

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "lars.json"
ALERTS = ROOT / "deploy" / "prometheus" / "lars-alerts.yml"

# Grafana's unit ids used here (valid ones; "rowsps" is not a Grafana unit).
VALID_UNITS = {"short", "none", "bool", "s", "ms", "reqps", "ops", "cps", "pps", "bytes",
               "percentunit"}  # fmt: skip
METRIC = re.compile(r"\b((?:lars|process|python)_[a-z_]+)(\{[^}]*\})?")
SHARED = ("lars_ready", "lars_build_info", "process_", "python_")


def _dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _queries() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]


def _alert_rules() -> list[dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _base(metric: str) -> str:
    return re.sub(r"_(bucket|sum|count|created)$", "", metric)


def test_dashboard_works_imported_and_provisioned() -> None:
    text = DASHBOARD.read_text(encoding="utf-8")
    doc = _dashboard()
    assert "__inputs" not in doc and "${DS_" not in text
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"]
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit in VALID_UNITS, (panel["title"], unit)
        # One unit per panel: no override gives a series another unit.
        for override in panel["fieldConfig"]["overrides"]:
            props = {p["id"] for p in override.get("properties", [])}
            assert "unit" not in props, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_dashboard_query_filters_by_job_and_instance_and_aggregates() -> None:
    queries = _queries()
    assert len(queries) >= 25
    for expr in queries:
        selectors = METRIC.findall(expr)
        assert selectors, expr
        for name, labels in selectors:
            assert 'job=~"$job"' in labels and 'instance=~"$instance"' in labels, (name, expr)
        # A fleet has thousands of agents: a series per instance only through topk, or
        # for the few route services and reporters.
        if "by (instance)" in expr and "lars_agent_" in expr:
            assert expr.startswith("topk("), expr
        if "lars_agent_" in expr and "count(" not in expr:
            assert expr.startswith(("sum", "topk(", "max", "min", "histogram_quantile")), expr


def test_alert_rules_cover_the_failures_an_operator_must_hear_about() -> None:
    rules = _alert_rules()
    by_metric = {m for r in rules for m, _ in METRIC.findall(r["expr"])}
    for metric in ("lars_dns_table_held", "lars_dns_database_up", "lars_reporter_database_up",
                   "lars_agent_route_service_up", "lars_reporter_queue_depth",
                   "lars_reporter_rows_dropped_total", "lars_ready"):  # fmt: skip
        assert metric in by_metric, metric
    names_ = [r["alert"] for r in rules]
    assert len(names_) == len(set(names_))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="NO PROMTOOL: Debian's prometheus")
def test_promtool_accepts_the_rules() -> None:
    r = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in r.stdout


@pytest.fixture
def console(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "console.log"
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "console", "--db", f"sqlite:///{tmp_path / 'c.db'}",
             "--port", "0"],
            stdout=subprocess.DEVNULL, stderr=fh,
            env={**__import__("os").environ, "LARS_CONSOLE_PASSWORD": "a-long-enough-password"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"listening on (http://[\d.]+:\d+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_every_metric_the_files_name_is_exported_by_its_daemon(
    stack: tuple[Daemon, Daemon, Daemon],  # noqa: F811
    console: str,
) -> None:
    dns, reporter, agent = stack
    ports = [int(p) for p in agent.port().split(",")]
    with LarsClient(ports=ports, timeout=1.0) as client:  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while (r := client.get_host(1, 2)).retcode != RetCode.SUCC:  # per-module families
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.report(1, 2, r.ip, r.port, 0)
    deadline = time.monotonic() + 60
    while "lars_reporter_last_commit_age_seconds" not in names(scrape(reporter.url)):
        assert time.monotonic() < deadline, "the reporter never committed the agent's report"
        time.sleep(0.2)
    get(console + "/login")  # the console's request and login families need one of each
    req = urllib.request.Request(
        console + "/api/login", data=b'{"password": "wrong"}', method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=10).close()
    exported = {
        "dns": {_base(n) for n in names(scrape(dns.url))},
        "reporter": {_base(n) for n in names(scrape(reporter.url))},
        "agent": {_base(n) for n in names(scrape(agent.url))},
        "console": {_base(n) for n in names(scrape(console))},
    }
    named = {m for e in _queries() for m, _ in METRIC.findall(e)}
    named |= {m for r in _alert_rules() for m, _ in METRIC.findall(r["expr"])}
    missing = []
    for metric in sorted(named):
        if metric.startswith(SHARED):
            owners = ["dns", "reporter", "agent"]
        else:
            owners = [metric.split("_")[1]]
        missing += [f"{metric} ({o})" for o in owners if _base(metric) not in exported[o]]
    assert missing == []
