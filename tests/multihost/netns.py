"""Test hosts on one machine: Linux network namespaces on a bridge, with faults per link.

One `Network` per test session owns, all named with its prefix `lt<pid>-` (so parallel runs
and other engineers never collide, and leftovers of a crashed run can be found):
- a bridge `<p>br` in the root namespace with the first address of one private /24 that
  exists only here (10.213.N.0/24, N picked free under a lock); servers that run in the
  root namespace (route services, reporter) get further addresses on it (`server_ip()`);
- per host a namespace `<p>NAME` whose `eth0` (one end of a veth pair) has the host's
  address and a default route via the bridge, so the agent's "primary address" is the
  host's own; the root end of that pair is joined to a second veth pair on the bridge by
  the userspace wire (`wire.py`), which applies the delay/loss/drop faults;
- the wire process (one for all links).

Every process a run starts carries LARS_MULTIHOST_RUN=<prefix> in its environment and
gets SIGKILL when the test process dies (PR_SET_PDEATHSIG). `close()` kills every process
of the run and whatever is left in the namespaces, deletes namespaces and links and stops
the wire; `remove_leftovers()` does the same for prefixes whose owner process is gone.
Every command that fails raises with its stderr.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

__all__ = ["Host", "Network", "die_with_parent", "netns_problem", "remove_leftovers", "run"]

WIRE = Path(__file__).with_name("wire.py")
LOCK = Path("/run/lars-multihost.lock")
_PREFIX_RE = re.compile(r"^lt(\d+)-")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def netns_problem() -> str | None:
    """None when this process can build namespaces, else why not (for a loud skip)."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_NET_ADMIN)"
    for tool in ("ip", "tc"):
        if run("sh", "-c", f"command -v {tool}", check=False).returncode != 0:
            return f"no `{tool}` (install iproute2)"
    probe = f"lt{os.getpid()}-probe"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


def kernel_netem() -> bool:
    """Whether this kernel has sch_netem (informational: the wire does its job anyway)."""
    name = f"lt{os.getpid()}-nq"
    made = run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p", check=False)
    if made.returncode != 0:
        return False
    try:
        return run("tc", "qdisc", "add", "dev", name, "root", "netem", check=False).returncode == 0
    finally:
        run("ip", "link", "del", name, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(ns: str) -> None:
    pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), sig)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(int(p))]
            time.sleep(0.05)
    run("ip", "netns", "del", ns, check=False)


RUN_ENV = "LARS_MULTIHOST_RUN"  # set to the prefix in every process a run starts


def run_processes(prefix: str) -> list[int]:
    """Pids of the processes a run started (its RUN_ENV), wherever they live."""
    tag = f"{RUN_ENV}={prefix}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if tag in environ.split(b"\0"):
            pids.append(int(entry))
    return pids


def die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the test process dies (even by SIGKILL)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _remove_prefix(prefix: str) -> None:
    for pid in run_processes(prefix):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for ns in run("ip", "netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(prefix):
            _kill_namespace(name)
    links = run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            run("ip", "link", "del", name, check=False)


def remove_leftovers() -> list[str]:
    """Remove namespaces, links and wires of earlier runs whose owner process is gone."""
    names = run("ip", "netns", "list", check=False).stdout.split()
    names += [
        line.split(":")[1].strip().split("@")[0]
        for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines()
    ]
    stale = sorted(
        {m.group(0) for n in names if (m := _PREFIX_RE.match(n)) and not _alive(int(m.group(1)))}
    )
    for prefix in stale:
        _remove_prefix(prefix)
    return stale


class Host:
    """One test host: a namespace with `eth0` at `ip`, joined to the bridge by the wire."""

    def __init__(self, net: Network, name: str, ip: str) -> None:
        self.net = net
        self.name = name
        self.ns = net.prefix + name
        self.ip = ip

    def command(self, args: Sequence[str]) -> list[str]:
        """argv that runs `args` inside this host."""
        return ["ip", "netns", "exec", self.ns, *args]

    def python(self, args: Sequence[str]) -> list[str]:
        return self.command([sys.executable, *args])

    # faults on this host's link (both directions), all through the wire

    def impair(self, *, delay: float = 0.0, loss: float = 0.0, peer: str | None = None) -> None:
        """Delay (seconds, each direction) and lose (0..1) frames; `peer` limits it to
        packets from/to that address (a server on the bridge)."""
        self.net.wire("set", name=self.name, delay=delay, loss=loss, peer=peer)

    def drop(self, peer: str | None = None) -> None:
        """Silent partition: packets vanish, nothing is refused or reset."""
        self.impair(loss=1.0, peer=peer)

    def heal(self) -> None:
        self.net.wire("clear", name=self.name)

    def peers(self) -> set[str]:
        """`ip:port` of every established TCP peer of this host (what `ss` sees)."""
        out = run(*self.command(["ss", "-Htn", "state", "established"])).stdout
        return {line.split()[-1] for line in out.splitlines() if line.strip()}

    def link_down(self) -> None:
        run("ip", "-n", self.ns, "link", "set", "eth0", "down")

    def link_up(self) -> None:
        run("ip", "-n", self.ns, "link", "set", "eth0", "up")
        run("ip", "-n", self.ns, "route", "replace", "default", "via", self.net.gateway)


class Network:
    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"lt{os.getpid()}-"
        self.bridge = self.prefix + "br"
        self.hosts: dict[str, Host] = {}
        self._next_host = 11
        self._next_server = 2
        self._wire: subprocess.Popen[str] | None = None
        if any(n.startswith(self.prefix) for n in run("ip", "netns", "list").stdout.split()):
            raise RuntimeError(f"a network with prefix {self.prefix} is still up")
        try:
            self._build()
        except BaseException:
            self.close()  # a half-built network must not outlive the failure
            raise

    def _build(self) -> None:
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = self._free_subnet()
            self.gateway = str(self.subnet.network_address + 1)
            run("ip", "link", "add", self.bridge, "type", "bridge")
            run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        self._disable_ipv6(self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        self._wire = subprocess.Popen(
            [sys.executable, str(WIRE), "--prefix", self.prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env(),
            preexec_fn=die_with_parent,
        )

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = run("ip", "-4", "-o", "addr", "show").stdout
        for third in [47, *range(48, 255), *range(1, 47)]:
            net = ipaddress.IPv4Network(f"10.213.{third}.0/24")
            if f" 10.213.{third}." not in used:
                return net
        raise RuntimeError("no free 10.213.N.0/24")

    @staticmethod
    def _disable_ipv6(iface: str, ns: str | None = None) -> None:
        """No router solicitations or DAD chatter on test links: only the test's traffic."""
        path = f"/proc/sys/net/ipv6/conf/{iface}/disable_ipv6"  # absent without IPv6: fine
        cmd = ["sh", "-c", f"[ ! -e {path} ] || echo 1 > {path}"]
        run(*(["ip", "netns", "exec", ns, *cmd] if ns else cmd), check=False)

    def env(self) -> dict[str, str]:
        """The environment of every process of this run (PYTHONPATH kept), tagged."""
        return {**os.environ, RUN_ENV: self.prefix}

    def wire(self, op: str, **args: object) -> str:
        import json

        wire = self._wire
        assert wire is not None and wire.stdin is not None and wire.stdout is not None
        wire.stdin.write(json.dumps({"op": op, **args}) + "\n")
        wire.stdin.flush()
        reply = wire.stdout.readline().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"wire {op} {args}: {reply or 'wire exited'}")
        return reply[2:].strip()

    def server_ip(self) -> str:
        """A further address on the bridge for a server in the root namespace."""
        ip = str(self.subnet.network_address + self._next_server)
        self._next_server += 1
        run("ip", "addr", "add", f"{ip}/24", "dev", self.bridge)
        return ip

    def add_host(self, name: str) -> Host:
        p = self.prefix
        ip = str(self.subnet.network_address + self._next_host)
        self._next_host += 1
        host = Host(self, name, ip)
        a, inner, b, port = f"{p}{name}a", f"{p}{name}n", f"{p}{name}b", f"{p}{name}p"
        run("ip", "netns", "add", host.ns)
        self.hosts[name] = host
        run("ip", "link", "add", a, "type", "veth", "peer", "name", inner)
        run("ip", "link", "set", inner, "netns", host.ns)
        run("ip", "-n", host.ns, "link", "set", inner, "name", "eth0")
        self._disable_ipv6("eth0", host.ns)
        run("ip", "-n", host.ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", host.ns, "link", "set", "lo", "up")
        run("ip", "-n", host.ns, "link", "set", "eth0", "up")
        run("ip", "-n", host.ns, "route", "add", "default", "via", self.gateway)
        run("ip", "link", "add", b, "type", "veth", "peer", "name", port)
        for iface in (a, b, port):
            self._disable_ipv6(iface)
        run("ip", "link", "set", port, "master", self.bridge)
        for iface in (a, b, port):
            run("ip", "link", "set", iface, "up")
        self.wire("link", name=name, a=a, b=b)
        return host

    def stats(self) -> str:
        return self.wire("stats")

    def close(self) -> None:
        for host in self.hosts.values():
            _kill_namespace(host.ns)
        wire = self._wire
        if wire is not None:
            if wire.stdin is not None:
                with suppress(OSError):
                    wire.stdin.close()
            try:
                wire.wait(timeout=5)
            except subprocess.TimeoutExpired:
                wire.kill()
                wire.wait()
            if wire.stdout is not None:
                wire.stdout.close()
            self._wire = None
        _remove_prefix(self.prefix)
