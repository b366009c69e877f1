"""deploy/systemd: one unit per daemon, checked by systemd's own `systemd-analyze verify`.

verify exits 0 on unknown keys and unparsable values (it only warns), so any output at
all fails the test. Without systemd-analyze the test skips loudly, except under CI
(CI=true), where .ci/run installs it and a skip would hide a broken unit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
LARS = "/opt/lars/venv/bin/lars"
DAEMONS = {"dns": "lars_dns.conf", "reporter": "lars_reporter.conf",
           "agent": "lars_lb_agent.conf", "console": "lars_dns.conf"}  # fmt: skip
RELOADS = {"dns", "reporter", "agent", "console"}  # all reload on SIGHUP (lars.reload)


def unit(daemon: str) -> str:
    return (UNITS / f"lars-{daemon}.service").read_text()


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_one_unit_per_daemon() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(
        f"lars-{d}.service" for d in DAEMONS
    )


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_unit_runs_the_daemon_unprivileged_and_sandboxed(daemon: str) -> None:
    d = directives(unit(daemon))
    (start,) = d["ExecStart"]
    assert start.startswith(f"{LARS} {daemon} -c /etc/lars/{DAEMONS[daemon]}")
    assert d["User"] == ["lars"] and d["Restart"] == ["on-failure"]
    sandbox = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
               "SystemCallFilter", "RestrictAddressFamilies", "CapabilityBoundingSet")  # fmt: skip
    assert [key for key in sandbox if key not in d] == [], daemon
    assert d["ProtectSystem"] == ["strict"] and d["CapabilityBoundingSet"] == [""]
    if daemon in RELOADS:
        assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    else:  # without a SIGHUP handler a reload would kill the daemon
        assert "ExecReload" not in d


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing under CI: install systemd (.ci/run does)")
        pytest.skip("NO systemd-analyze: the systemd units are NOT verified (install systemd)")
    # verify also checks that ExecStart's program exists: point it at one that does.
    for daemon in DAEMONS:
        name = f"lars-{daemon}.service"
        (tmp_path / name).write_text(unit(daemon).replace(LARS, sys.executable))
    out = subprocess.run(
        [tool, "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_verify_would_catch_a_bad_unit(tmp_path: Path) -> None:
    """The check above is not vacuous: a typo in a unit produces output."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("NO systemd-analyze (see test_systemd_analyze_verify)")
    bad = tmp_path / "lars-dns.service"
    bad.write_text(unit("dns").replace(LARS, sys.executable).replace("Restart=", "Restrat="))
    out = subprocess.run([tool, "verify", str(bad)], capture_output=True, text=True, timeout=60,
                         check=False)  # fmt: skip
    assert "Restrat" in out.stderr
