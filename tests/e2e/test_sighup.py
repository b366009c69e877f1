"""SIGHUP on real daemons (issue 12, item 4): after the -c file is edited, each daemon
logs what it reloaded and what needs a restart, and keeps serving; it never dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lars.client import LarsClient, RetCode
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_agent_process import free_udp_base
from tests.integration.agent_fakes import FakeReporter, FakeRouteService
from tests.integration.dns_wire import RouteConn

pytestmark = pytest.mark.e2e


class Proc:
    """A `lars` daemon without --log-level (so the file's [log] level applies), its log
    in a file (a pipe could fill and block it)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "w", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", *args], stdout=subprocess.DEVNULL, stderr=fh
            )

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, self.log.read_text(encoding="utf-8")


def wait_for(proc: Proc, pattern: str, deadline: float = 60.0) -> re.Match[str]:
    """The first log line matching `pattern` (the process must stay alive meanwhile)."""
    regex = re.compile(pattern)
    end = time.monotonic() + deadline
    while True:
        text = proc.log.read_text(encoding="utf-8")
        match = regex.search(text)
        if match:
            return match
        assert proc.proc.poll() is None, f"exited {proc.proc.returncode}: {text}"
        assert time.monotonic() < end, f"no line matching {pattern!r} in: {text}"
        time.sleep(0.05)


def stop_cleanly(proc: Proc) -> str:
    code, log = proc.stop(signal.SIGTERM)
    assert code == 0, log
    assert "Traceback" not in log
    return log


def test_dns_reloads_poll_interval_guard_and_log_level_and_keeps_serving(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dns.db'}"
    engine = make_engine(db)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
    engine.dispose()
    port = free_port()
    conf = tmp_path / "lars_dns.conf"
    conf.write_text(f"[reactor]\nip = 127.0.0.1\nport = {port}\n[dns]\npoll_interval = 1.0\n")
    dns = Proc(tmp_path / "dns.log", "dns", "-c", str(conf), "--db", db)
    try:
        wait_for(dns, r"lars dns: listening on port")
        conf.write_text(
            f"[reactor]\nip = 127.0.0.1\nport = {port}\nthreadNum = 2\n"
            "[dns]\npoll_interval = 0.5\nmax_drop_ratio = 0.25\n[log]\nlevel = DEBUG\n"
        )
        dns.proc.send_signal(signal.SIGHUP)
        wait_for(
            dns,
            r"dns: SIGHUP: reloaded from \S+lars_dns.conf: poll_interval 1.0 -> 0.5, "
            r"max_drop_ratio 0.5 -> 0.25, log level INFO -> DEBUG",
        )
        wait_for(
            dns, r"dns: SIGHUP: changed in \S+ but kept until a restart: reactor.threads 0 -> 2"
        )
        with RouteConn(port) as conn:  # still serving, on the same port
            assert conn.get(1, 1) == [("10.0.0.1", 80)]
        conf.write_text("[dns]\npoll_interval = often\n")  # a broken edit: kept running
        dns.proc.send_signal(signal.SIGHUP)
        wait_for(dns, r"dns: SIGHUP: \S+ not reloaded, running settings kept: .*poll_interval")
        with RouteConn(port) as conn:
            assert conn.get(1, 1) == [("10.0.0.1", 80)]
    finally:
        stop_cleanly(dns)


def test_agent_reloads_loadbalance_on_its_shards_and_keeps_answering(tmp_path: Path) -> None:
    route, reporter = FakeRouteService().start(), FakeReporter().start()
    try:
        route.routes[(1, 1)] = [(167772161, 80)]  # 10.0.0.1:80
        base = free_udp_base()
        lb = "[loadbalance]\nprobe_num = 10\nerr_rate = 0.1\n"
        head = (
            f"[dnsserver]\nip = 127.0.0.1\nport = {route.address[1]}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {reporter.address[1]}\n"
            f"[agent]\nbase_port = {base}\n"
        )
        conf = tmp_path / "lars_lb_agent.conf"
        conf.write_text(head + lb)
        agent = Proc(tmp_path / "agent.log", "agent", "-c", str(conf))
        try:
            wait_for(agent, r"agent listening on")
            conf.write_text(
                head.replace(f"base_port = {base}", f"base_port = {base}\nmax_modules = 50")
                + "[loadbalance]\nprobe_num = 3\nerr_rate = 0.2\n"
            )
            agent.proc.send_signal(signal.SIGHUP)
            wait_for(
                agent,
                r"agent: SIGHUP: reloaded from \S+: balancer.probe_num 10 -> 3, "
                r"balancer.err_rate 0.1 -> 0.2",
            )
            wait_for(agent, r"kept until a restart: max_modules 20000 -> 50")
            with LarsClient("127.0.0.1", base, timeout=5) as client:
                assert client.reg_init(1, 1, attempts=50, delay=0.1) is RetCode.SUCC
                assert str(client.get_host(1, 1).host) == "10.0.0.1:80"
        finally:
            stop_cleanly(agent)
    finally:
        route.stop()
        reporter.stop()


def test_reporter_reloads_stats_interval_and_survives(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "lars_reporter.conf"
    conf.write_text(f"[reactor]\nip = 127.0.0.1\nport = {port}\n[repoter]\nstats_interval = 10\n")
    rep = Proc(tmp_path / "reporter.log", "reporter", "-c", str(conf),
               "--db", f"sqlite:///{tmp_path / 'r.db'}")  # fmt: skip
    try:
        wait_for(rep, r"reporter on port")
        conf.write_text(
            f"[reactor]\nip = 127.0.0.1\nport = {port}\n[repoter]\nstats_interval = 2.5\n"
            "db_thread_cnt = 5\n"
        )
        rep.proc.send_signal(signal.SIGHUP)
        wait_for(rep, r"reporter: SIGHUP: reloaded from \S+: stats_interval 10.0 -> 2.5")
        wait_for(rep, r"kept until a restart: writers 3 -> 5")
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass  # still listening
    finally:
        stop_cleanly(rep)


@pytest.mark.parametrize("command", ["up", "console"])
def test_up_and_console_survive_sighup(tmp_path: Path, command: str) -> None:
    env = {**os.environ, "LARS_CONSOLE_PASSWORD": "x" * 20}
    db = f"sqlite:///{tmp_path / 'u.db'}"
    args = {
        "up": ["up", "--no-console", "--db", db, "--dns-port", "0", "--reporter-port", "0",
               "--agent-port", "0"],
        "console": ["console", "--db", db, "--port", "0"],
    }[command]  # fmt: skip
    log = tmp_path / "out.log"
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lars", *args], stdout=fh, stderr=subprocess.STDOUT, env=env
        )
    try:
        ready = "lars up: route service" if command == "up" else "lars console: listening"
        end = time.monotonic() + 60
        while ready not in log.read_text():
            assert proc.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 30
        while "SIGHUP" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()


def test_agent_supervisor_forwards_sighup_to_its_shard_processes(tmp_path: Path) -> None:
    route, reporter = FakeRouteService().start(), FakeReporter().start()
    try:
        base = free_udp_base()
        head = (
            f"[dnsserver]\nip = 127.0.0.1\nport = {route.address[1]}\n"
            f"[reporter]\nip = 127.0.0.1\nport = {reporter.address[1]}\n"
            f"[agent]\nbase_port = {base}\nmode = processes\n"
        )
        conf = tmp_path / "lars_lb_agent.conf"
        conf.write_text(head + "[loadbalance]\nprobe_num = 10\n")
        agent = Proc(tmp_path / "agent.log", "agent", "-c", str(conf))
        try:
            end = time.monotonic() + 60
            while agent.log.read_text().count("agent listening on") < 3:
                assert agent.proc.poll() is None and time.monotonic() < end, agent.log.read_text()
                time.sleep(0.05)
            conf.write_text(head + "[loadbalance]\nprobe_num = 4\n[log]\nlevel = DEBUG\n")
            agent.proc.send_signal(signal.SIGHUP)
            line = "agent: SIGHUP: reloaded from"
            end = time.monotonic() + 60
            while agent.log.read_text().count(line) < 3:  # one per shard process
                assert agent.proc.poll() is None and time.monotonic() < end, agent.log.read_text()
                time.sleep(0.05)
            assert agent.log.read_text().count("balancer.probe_num 10 -> 4") == 3
            # the children were not pinned by a --log-level of the supervisor's
            assert agent.log.read_text().count("log level INFO -> DEBUG") == 3
        finally:
            stop_cleanly(agent)
    finally:
        route.stop()
        reporter.stop()
