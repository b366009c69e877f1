"""Settings on real daemons (issue 19, items 2 and 6): a value outside its range stops the
start with exit 2 and one line naming the setting and its range; on SIGHUP it is refused
with one log line and the running value kept; a changed `[metrics] listen` is named as
waiting for a restart instead of being ignored."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_agent_process import free_udp_base
from tests.integration.agent_fakes import FakeReporter, FakeRouteService
from tests.integration.dns_wire import RouteConn

pytestmark = pytest.mark.e2e


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LARS_METRICS_LISTEN"}
    return {**env, **extra}


class Proc:
    """A `lars` daemon whose log goes to a file."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "w", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", *args],
                stdout=subprocess.DEVNULL,
                stderr=fh,
                env=env if env is not None else _env(LARS_METRICS_LISTEN="127.0.0.1:0"),
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_for(self, pattern: str, deadline: float = 60.0) -> re.Match[str]:
        regex = re.compile(pattern)
        end = time.monotonic() + deadline
        while True:
            match = regex.search(self.text())
            if match:
                return match
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.text()}"
            assert time.monotonic() < end, f"no line matching {pattern!r} in: {self.text()}"
            time.sleep(0.05)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        assert code == 0, self.text()
        assert "Traceback" not in self.text()
        return self.text()


def run_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else _env(LARS_METRICS_LISTEN="off"),
    )


@pytest.mark.parametrize(
    ("command", "conf", "flags", "line"),
    [
        ("dns", "[dns]\npoll_interval = inf\n", [],
         "lars dns: [dns] poll_interval = inf: out of range, expected 0.001..3600 s"),
        ("dns", "[dns]\npoll_interval = 9300000000\n", [],
         "lars dns: [dns] poll_interval = 9300000000: out of range, expected 0.001..3600 s"),
        ("dns", "[dns]\nreload_interval = 1e-9\n", [],
         "lars dns: [dns] reload_interval = 1e-09: out of range, expected 1..86400 s"),
        ("dns", "", ["--poll-interval", "nan"],
         "lars dns: [dns] poll_interval = nan: out of range, expected 0.001..3600 s"),
        ("agent", "[loadbalance]\ninit_succ_cnt = 100000000000000000000\n", [],
         "lars agent: [loadbalance] init_succ_cnt = 100000000000000000000: out of range, "
         "expected 0..1000000000"),
        ("agent", "[loadbalance]\nidle_timeout = nan\n", [],
         "lars agent: [loadbalance] idle_timeout = nan: out of range, expected 0..86400 s"),
        ("agent", "", ["--report-interval", "nan"],
         "lars agent: [agent] report_interval = nan: out of range, expected 0.01..3600 s"),
        ("reporter", "[repoter]\nbatch_ms = -5\n", [],
         "lars reporter: [repoter] batch_ms = -5: out of range, expected 0..3600000 ms"),
        ("console", "[console]\nstale_after = inf\n", [],
         "lars console: [console] stale_after = inf: out of range, expected 0.1..86400 s"),
    ],
)  # fmt: skip
def test_a_setting_out_of_range_stops_the_start_with_exit_2_and_one_line(
    tmp_path: Path, command: str, conf: str, flags: list[str], line: str
) -> None:
    path = tmp_path / "lars.conf"
    path.write_text(conf, encoding="utf-8")
    extra = ["--db", f"sqlite:///{tmp_path / 'x.db'}"] if command in ("dns", "reporter") else []
    env = _env(LARS_METRICS_LISTEN="off", LARS_CONSOLE_PASSWORD="x" * 12)
    result = run_once(command, "-c", str(path), *extra, *flags, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [line]


def test_dns_refuses_an_out_of_range_value_on_sighup_and_keeps_polling(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dns.db'}"
    engine = make_engine(db)
    init_schema(engine)
    admin = RouteAdmin(engine)
    admin.add_host(1, 1, "10.0.0.1", 80)
    port = free_port()
    head = f"[reactor]\nip = 127.0.0.1\nport = {port}\n"
    conf = tmp_path / "lars_dns.conf"
    conf.write_text(head + "[dns]\npoll_interval = 0.2\n")
    dns = Proc(tmp_path / "dns.log", "dns", "-c", str(conf), "--db", db)
    try:
        dns.wait_for(r"lars dns: listening on port")
        for bad in ("inf", "nan", "9300000000", "-1"):
            conf.write_text(head + f"[dns]\npoll_interval = {bad}\n")
            dns.proc.send_signal(signal.SIGHUP)
            dns.wait_for(
                r"dns: SIGHUP: \S+ not reloaded, running settings kept: \[dns\] poll_interval = "
                + re.escape(bad if bad != "9300000000" else "9300000000")
                + r": out of range, expected 0\.001\.\.3600 s"
            )
        # The poll thread still runs at the old interval: an edit is served.
        admin.add_host(1, 1, "10.0.0.2", 80)
        end = time.monotonic() + 60
        while True:
            with RouteConn(port) as conn:
                hosts = sorted(conn.get(1, 1))
            if hosts == [("10.0.0.1", 80), ("10.0.0.2", 80)]:
                break
            assert time.monotonic() < end, hosts
            time.sleep(0.2)
        conf.write_text(head + "[dns]\npoll_interval = 0.3\n")  # the old value was kept
        dns.proc.send_signal(signal.SIGHUP)
        dns.wait_for(r"dns: SIGHUP: reloaded from \S+: poll_interval 0\.2 -> 0\.3")
    finally:
        engine.dispose()
        log = dns.stop()
    assert log.count("not reloaded, running settings kept") == 4


def test_agent_refuses_nan_report_interval_on_sighup(tmp_path: Path) -> None:
    route, reporter = FakeRouteService().start(), FakeReporter().start()
    try:
        base = free_udp_base()
        head = (
            f"[dnsserver]\nip = 127.0.0.1\nport = {route.address[1]}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {reporter.address[1]}\n"
            f"[agent]\nbase_port = {base}\n"
        )
        conf = tmp_path / "lars_lb_agent.conf"
        conf.write_text(head)
        agent = Proc(tmp_path / "agent.log", "agent", "-c", str(conf))
        try:
            agent.wait_for(r"agent listening on")
            conf.write_text(head + "report_interval = nan\n")
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for(
                r"agent: SIGHUP: \S+ not reloaded, running settings kept: "
                r"\[agent\] report_interval = nan: out of range"
            )
            conf.write_text(head + "[loadbalance]\nidle_timeout = inf\n")
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for(
                r"running settings kept: \[loadbalance\] idle_timeout = inf: out of range"
            )
            conf.write_text(head + "[loadbalance]\nidle_timeout = 20\n")
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for(r"agent: SIGHUP: reloaded from \S+: balancer.idle_timeout 15.0 -> 20.0")
        finally:
            agent.stop()
    finally:
        route.stop()
        reporter.stop()


@pytest.mark.parametrize("command", ["dns", "reporter", "agent"])
def test_sighup_names_a_changed_metrics_listen_as_waiting_for_a_restart(
    tmp_path: Path, command: str
) -> None:
    route, reporter = FakeRouteService().start(), FakeReporter().start()
    try:
        first, second = free_port(), free_port()
        port = free_port()
        head = {
            "dns": f"[reactor]\nip = 127.0.0.1\nport = {port}\n",
            "reporter": f"[reactor]\nip = 127.0.0.1\nport = {port}\n",
            "agent": f"[dnsserver]\nip = 127.0.0.1\nport = {route.address[1]}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {reporter.address[1]}\n"
            f"[agent]\nbase_port = {free_udp_base()}\n",
        }[command]
        conf = tmp_path / "lars.conf"
        conf.write_text(head + f"[metrics]\nlisten = 127.0.0.1:{first}\n")
        db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"] if command != "agent" else []
        proc = Proc(tmp_path / "d.log", command, "-c", str(conf), *db, env=_env())
        try:
            proc.wait_for(
                {
                    "dns": "listening on port",
                    "reporter": "reporter on port",
                    "agent": "agent listening on",
                }[command]
            )
            conf.write_text(head + f"[metrics]\nlisten = 127.0.0.1:{second}\n")
            proc.proc.send_signal(signal.SIGHUP)
            proc.wait_for(
                rf"{command}: SIGHUP: changed in \S+ but kept until a restart: \[metrics\] listen "
                rf"http://127\.0\.0\.1:{first} -> http://127\.0\.0\.1:{second}"
            )
        finally:
            proc.stop()
    finally:
        route.stop()
        reporter.stop()


def test_agent_supervisor_names_a_changed_metrics_listen(tmp_path: Path) -> None:
    """--mode processes: the children's listeners come from the supervisor's setting."""
    route, reporter = FakeRouteService().start(), FakeReporter().start()
    try:
        head = (
            f"[dnsserver]\nip = 127.0.0.1\nport = {route.address[1]}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {reporter.address[1]}\n"
            f"[agent]\nbase_port = {free_udp_base()}\nmode = processes\n"
        )
        conf = tmp_path / "lars_lb_agent.conf"
        conf.write_text(head + "[metrics]\nlisten = 127.0.0.1:0\n")
        agent = Proc(tmp_path / "agent.log", "agent", "-c", str(conf), env=_env())
        try:
            end = time.monotonic() + 60
            while agent.text().count("agent listening on") < 3:
                assert agent.proc.poll() is None and time.monotonic() < end, agent.text()
                time.sleep(0.05)
            second = free_port()
            conf.write_text(head + f"[metrics]\nlisten = 127.0.0.1:{second}\n")
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for(
                r"agent: SIGHUP: changed in \S+ but kept until a restart: \[metrics\] listen "
                rf"http://127\.0\.0\.1:0 -> http://127\.0\.0\.1:{second}"
            )
        finally:
            agent.stop()
    finally:
        route.stop()
        reporter.stop()
