"""`lars dns --processes N` as real processes: one port shared by N route services (each
pushing to its own connections), a child that dies is restarted, SIGHUP reaches every
child, SIGTERM stops them all and a killed parent leaves none behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.dns_wire import HEADER, RouteConn, hosts_of, wait_for

pytestmark = pytest.mark.e2e

DEADLINE = 60.0  # generous: the e2e suites run on a shared, loaded machine
LISTEN, ESTABLISHED = "0A", "01"
LOOPBACK = ("--ip", "127.0.0.1", "--port", "0", "--metrics", "off")


def lars(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


class Group:
    """`lars dns --processes N` in a child process; its stderr goes to a file."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.log = tmp / "dns.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "dns", *args],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=self._out,
        )
        wait_for(lambda: self.line() or self.proc.poll() is not None, DEADLINE, "the group")
        m = self.line()
        assert m is not None, self.text()
        self.port = int(m.group(1))

    def line(self) -> re.Match[str] | None:
        return re.search(r"lars dns: listening on port (\d+) with \d+ processes", self.text())

    def text(self) -> str:
        return self.log.read_text()

    def children(self) -> list[int]:
        return children_of(self.proc.pid)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._out.close()


def children_of(pid: int) -> list[int]:
    """The children of every thread of `pid` (a restarted child is the watcher thread's)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    kids: list[int] = []
    for tid in tids:
        try:
            kids += [int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except FileNotFoundError:
            pass
    return sorted(kids)


def sockets_on(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local `port` in `state` (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, st, inode = fields[1], fields[3], int(fields[9])
        if int(local.split(":")[1], 16) == port and st == state:
            inodes.add(inode)
    return inodes


def owned(pid: int, inodes: set[int]) -> int:
    """How many of `inodes` process `pid` holds."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                count += 1
    except FileNotFoundError:
        pass
    return count


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def metrics_ports() -> int:
    """A free port P whose P + 100 is free too (child 1's metrics port)."""
    for _ in range(50):
        port = free_port()
        if port + 100 < 65536:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 100))
                except OSError:
                    continue
            return port
    raise AssertionError("no pair of free ports")


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


@pytest.fixture
def routes(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'lars.db'}"
    assert lars("initdb", "--db", db, cwd=tmp_path).returncode == 0
    r = lars("route", "add", "1", "1", "127.0.0.1", "9101", "--db", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return db


def test_processes_share_the_port_and_each_pushes_to_its_own(tmp_path: Path, routes: str) -> None:
    metrics = metrics_ports()
    fast = ("--poll-interval", "0.05", "--metrics", f"127.0.0.1:{metrics}")
    group = Group(tmp_path, "--db", routes, *LOOPBACK, "--processes", "2", *fast)
    conns: list[RouteConn] = []
    try:
        kids = group.children()
        assert len(kids) == 2
        listening = sockets_on(group.port, LISTEN)
        assert [owned(pid, listening) for pid in kids] == [1, 1]  # one listener each
        assert owned(group.proc.pid, listening) == 0  # the parent accepts nothing
        for _ in range(40):
            conn = RouteConn(group.port)
            conns.append(conn)
            assert conn.get(1, 1) == [("127.0.0.1", 9101)]  # answered and subscribed
        established = sockets_on(group.port, ESTABLISHED)
        shares = [owned(pid, established) for pid in kids]
        assert sum(shares) == 40 and min(shares) >= 1, shares  # all on one: 2**-39
        statuses = [status(port) for port in (metrics, metrics + 100)]  # child 0, child 1
        assert [s["process"] for s in statuses] == [{"index": 0, "of": 2}, {"index": 1, "of": 2}]
        assert sorted(s["connections"] for s in statuses) == sorted(shares)

        r = lars("route", "add", "1", "1", "127.0.0.1", "9102", "--db", routes, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        for conn in conns:  # every connection, whichever process holds it, gets the push
            msgid, msg = conn.read(DEADLINE)
            assert msgid == 2 and hosts_of(msg) == [("127.0.0.1", 9101), ("127.0.0.1", 9102)]

        for conn in conns[:5]:  # garbage on the shared port: that connection is dropped
            conn.send_raw(HEADER.pack(1, 1 << 30) + b"\xff" * 64)
        for conn in conns[5:10]:
            assert conn.get(1, 1) == [("127.0.0.1", 9101), ("127.0.0.1", 9102)]
        assert sorted(group.children()) == sorted(kids)  # nobody crashed
    finally:
        for conn in conns:
            conn.close()
        code = group.stop()
    assert code == 0, group.text()
    assert not any(alive(pid) for pid in kids)


def test_a_dead_process_is_restarted_and_signals_reach_all(tmp_path: Path, routes: str) -> None:
    config = tmp_path / "lars_dns.conf"
    config.write_text("[dns]\npoll_interval = 0.1\nprocesses = 2\nsnapshot = off\n")
    group = Group(tmp_path, "-c", str(config), "--db", routes, *LOOPBACK)
    try:
        first = group.children()
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        wait_for(
            lambda: len(group.children()) == 2 and first[0] not in group.children(),
            DEADLINE,
            "a new process",
        )
        second = group.children()
        wait_for(
            lambda: all(owned(p, sockets_on(group.port, LISTEN)) for p in second),
            DEADLINE,
            "the new process listening",
        )
        exited = rf"route service process \d \(pid {first[0]}\) exited with -9; restarting"
        assert re.search(exited, group.text())
        with RouteConn(group.port) as conn:
            assert conn.get(1, 1) == [("127.0.0.1", 9101)]

        config.write_text("[dns]\npoll_interval = 0.2\nprocesses = 3\nsnapshot = off\n")
        group.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: group.text().count("poll_interval 0.1 -> 0.2") == 2,
            DEADLINE,
            "both processes reloading",
        )
        wait_for(
            lambda: "kept until a restart: [dns] processes 2 -> 3" in group.text(),
            DEADLINE,
            "the parent's restart-only warning",
        )
        assert group.children() == second  # a reload restarts nobody
    finally:
        code = group.stop()
    assert code == 0, group.text()
    assert not any(alive(pid) for pid in second)


def test_a_killed_parent_leaves_no_route_service(tmp_path: Path, routes: str) -> None:
    group = Group(tmp_path, "--db", routes, *LOOPBACK, "--processes", "2")
    kids = group.children()
    try:
        assert len(kids) == 2
        group.proc.kill()
        group.proc.wait()
        deadline = time.monotonic() + DEADLINE
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in kids)
    finally:
        for pid in kids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        group.stop()


def test_a_process_that_cannot_start_fails_the_group(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lars",
            "dns",
            "--db",
            "sqlite:////nonexistent/dir/x.db",
            "--port",
            "0",
            "--processes",
            "2",
            "--metrics",
            "off",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "before listening" in r.stderr or "database" in r.stderr
    assert "Traceback" not in r.stderr.split("lars dns:")[-1]


@pytest.mark.parametrize("value", ["0", "65", "x"])
def test_processes_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    r = lars(
        "dns", "--db", "sqlite:///x.db", "--processes", value, "--metrics", "off", cwd=tmp_path
    )
    assert r.returncode == 2, r.stderr
    assert "processes" in r.stderr and "Traceback" not in r.stderr
