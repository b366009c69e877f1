"""The lars platform on test hosts: real `python -m lars` processes in namespaces.

`Platform(net, db_url, workdir)` starts route services and the reporter in the root
namespace on their own bridge addresses (so they reach the local MariaDB over loopback,
and a fault "towards the reporter" is a wire rule on that address), and app hosts: a
namespace with one `lars agent` (UDP 127.0.0.1:8888-8890 inside the host: every host has
its own port space) and any number of business clients (`business.py`). Every process
logs to a file in `workdir`; `close()` stops them all (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lars.db import server_call_status
from lars.dbengine import make_engine
from lars.protocol import uint_to_dotted
from tests.conftest import free_port
from tests.multihost.netns import Host, Network, die_with_parent

__all__ = ["AppHost", "Platform", "Proc", "call_status", "log_times", "wait_for"]

MODULES = ((1, 1), (1, 2), (2, 2))  # one per agent shard: (modid + cmdid) % 3 = 2, 0, 1
WATCHED = (9, 1)  # the module route changes are made in (push-latency probe)


def wait_for(what: str, fn: Callable[[], Any], timeout: float, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def call_status(db_url: str) -> list[tuple[int, int, str, int, str, int, int, int]]:
    """ServerCallStatus rows: (modid, cmdid, ip, port, caller, succ, err, ts)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(server_call_status)).all()
    finally:
        engine.dispose()
    return [
        (r.modid, r.cmdid, uint_to_dotted(r.ip), r.port, uint_to_dotted(r.caller),
         r.succ_cnt, r.err_cnt, r.ts)
        for r in rows
    ]  # fmt: skip


class Proc:
    """One child process; stderr to `log` (a pipe could fill and block it)."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.argv = list(argv)
        self.log = log
        with open(log, "a", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,
            )
        self.pid = self.proc.pid  # `ip netns exec` execs, so this is the program itself

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self.pid}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def log_times(text: str, needle: str) -> list[float]:
    """Wall times (time.time scale) of the log lines containing `needle`."""
    out = []
    for line in text.splitlines():
        if needle in line:
            try:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            except ValueError:
                continue
            out.append(stamp.timestamp())
    return out


class Business:
    """A business client in a host; `lines()` parses what it wrote so far."""

    def __init__(self, proc: Proc, out: Path) -> None:
        self.proc = proc
        self.out = out

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        text = self.out.read_text(encoding="utf-8")
        return [json.loads(x) for x in text.splitlines() if x.endswith("}")]

    def seconds(self) -> list[dict[str, Any]]:
        return [x for x in self.lines() if "ok" in x and "done" not in x]

    def failures(self) -> list[dict[str, Any]]:
        return [x for x in self.lines() if "failed" in x and "done" not in x]

    def routes(self) -> list[dict[str, Any]]:
        return [x for x in self.lines() if "route" in x]

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        """Calls made between wall times t0 and t1: failures by their own time, `ok` from
        the per-second lines whose whole second lies inside the window."""
        secs = [x for x in self.seconds() if x["t"] - 1.05 >= t0 and x["t"] <= t1 + 0.05]
        fails = [x for x in self.failures() if t0 <= x["t"] <= t1]
        by_code: dict[str, int] = {}
        for f in fails:
            by_code[f["retcode"]] = by_code.get(f["retcode"], 0) + 1
        return {
            "ok": sum(x["ok"] for x in secs),
            "failed": len(fails),
            "by_code": by_code,
            "max_ms": max([x["max"] for x in secs] + [f["ms"] for f in fails], default=0.0),
            "seconds": len(secs),
        }

    def summary(self) -> dict[str, Any]:
        done = [x for x in self.lines() if x.get("done")]
        assert done, f"business client did not finish: {self.proc.text()[-2000:]}"
        return done[-1]

    def stop(self) -> dict[str, Any]:
        code = self.proc.stop()
        assert code == 0, f"business client exit {code}: {self.proc.text()[-2000:]}"
        return self.summary()


class AppHost:
    def __init__(self, platform: Platform, host: Host) -> None:
        self.platform = platform
        self.host = host
        self.agent: Proc | None = None
        self.clients: list[Business] = []

    @property
    def ip(self) -> str:
        return self.host.ip

    def start_agent(self, dns: Sequence[str], reporter: str, *extra: str) -> Proc:
        # Every agent has its own registrations file in the run's folder: the default
        # (~/.local/state/lars/agent-8888.registrations.json) is one file for every test
        # host, and across runs, so one test's registrations came back in the next.
        registrations = self.platform.workdir / f"{self.host.name}.registrations.json"
        argv = [
            "agent", "--ip", "127.0.0.1", "--base-port", "8888", "--dns", ",".join(dns),
            "--reporter", reporter, "--report-interval", "1",
            "--registrations", str(registrations), *extra,
        ]  # fmt: skip
        agent = self.platform.spawn(self.host.name + "-agent", argv, host=self.host)
        self.agent = agent

        def listening() -> bool:
            assert agent.alive, f"agent on {self.host.name} exited: {agent.text()[-2000:]}"
            return "agent listening on" in agent.text()

        wait_for(f"the agent on {self.host.name}", listening, 60)
        return agent

    def start_client(self, modules: Sequence[tuple[int, int]] = MODULES, *, rate: float = 50,
                     watch: tuple[int, int] | None = WATCHED, seconds: float = 3600,
                     timeout: float = 0.2) -> Business:  # fmt: skip
        n = len(self.clients)
        out = self.platform.workdir / f"{self.host.name}-client{n}.jsonl"
        argv = [
            "-m", "tests.multihost.business", "--out", str(out), "--rate", str(rate),
            "--seconds", str(seconds), "--timeout", str(timeout),
            "--modules", ",".join(f"{m}:{c}" for m, c in modules),
        ]  # fmt: skip
        if watch is not None:
            argv += ["--watch", f"{watch[0]}:{watch[1]}"]
        log = self.platform.workdir / f"{self.host.name}-client{n}.log"
        client = Business(Proc(self.host.python(argv), log, self.platform.net.env()), out)
        self.platform.procs.append(client.proc)
        self.clients.append(client)
        return client


class Platform:
    def __init__(self, net: Network, db_url: str, workdir: Path) -> None:
        self.net = net
        self.db_url = db_url
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.apps: dict[str, AppHost] = {}

    def spawn(self, name: str, argv: Sequence[str], host: Host | None = None) -> Proc:
        lars = [sys.executable, "-m", "lars", "--log-level", "INFO", *argv]
        argv = host.command(lars) if host else lars
        proc = Proc(argv, self.workdir / f"{name}.log", self.net.env())
        self.procs.append(proc)
        return proc

    def start_dns(self, name: str = "dns", *extra: str) -> tuple[Proc, str]:
        """A route service on its own bridge address; returns it and its `ip:port`."""
        ip, port = self.net.server_ip(), free_port()
        proc = self.spawn(name, ["dns", "--db", self.db_url, "--ip", ip, "--port", str(port),
                                 *extra])  # fmt: skip
        self._listening(proc, ip, port)
        return proc, f"{ip}:{port}"

    def start_reporter(self, name: str = "reporter", *extra: str) -> tuple[Proc, str]:
        ip, port = self.net.server_ip(), free_port()
        argv = ["reporter", "--db-url", self.db_url, "--ip", ip, "--port", str(port), *extra]
        proc = self.spawn(name, argv)
        self._listening(proc, ip, port)
        return proc, f"{ip}:{port}"

    @staticmethod
    def _listening(proc: Proc, ip: str, port: int) -> None:
        def up() -> bool:
            assert proc.alive, f"{proc.argv} exited: {proc.text()[-2000:]}"
            try:
                socket.create_connection((ip, port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_for(f"{proc.argv[3]} on {ip}:{port}", up, 60)

    def add_app(self, name: str) -> AppHost:
        app = AppHost(self, self.net.add_host(name))
        self.apps[name] = app
        return app

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=10)
