"""`lars dns --processes N`: N route services on one port, so a push uses every core.

Why: a push costs one write syscall per subscriber (~10 us on loopback, most of it the
kernel's), and one CPython process makes them on one core: 10,000 subscribers take ~100
ms. N processes each push to their own share of the connections at once.

Each child is a whole route service (poller, guard, registrations, engines): `lars dns`
with the parent's own arguments plus `--processes 1 --reuse-port --port P` and, when the
metrics listener has a fixed port, its own port (metrics_port). Several route services on one
database are a supported layout already; the children share only the port, through
SO_REUSEPORT, and the kernel spreads new connections across them by a hash of the peer.

The parent listens on nothing. It resolves port 0 once (bind, read, close), waits until
every child says it listens (one byte on an inherited pipe named by READY_ENV), prints one
line, forwards SIGHUP, restarts a child that exits (after RESTART_INITIAL s, doubling to
RESTART_MAX; a child that ran STABLE_AFTER s starts the count again) and on SIGTERM stops
them all (SIGTERM, then SIGKILL after STOP_GRACE s). A child asks the kernel for SIGTERM
when the parent dies, so a killed parent leaves no route service behind. Linux only.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lars.errors import NetworkError

__all__ = [
    "READY_ENV",
    "ChildSpec",
    "ProcessGroup",
    "announce_ready",
    "child_argv",
    "metrics_port",
    "process_of",
    "restart_delay",
]

log = logging.getLogger(__name__)

READY_ENV = "LARS_DNS_READY_FD"  # the write end of the parent's pipe, in a child
PARENT_ENV = "LARS_DNS_PARENT_PID"  # the parent's pid, in a child
PROCESS_ENV = "LARS_DNS_PROCESS"  # "index/count", in a child (its /status names it)
# Timeouts
READY_TIMEOUT = 600.0  # a first load of a large table from a cold database takes a while
RESTART_INITIAL = 1.0
RESTART_MAX = 30.0
STABLE_AFTER = 60.0
STOP_GRACE = 30.0
WATCH_INTERVAL = 0.2

METRICS_OFFSET = 100
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start the children: the parent's arguments and what each overrides."""

    argv: tuple[str, ...]  # the parent's command line after the program name
    port: int
    metrics: tuple[str, int] | None  # the parent's metrics listener (None: off)
    python: str = sys.executable


def child_argv(spec: ChildSpec, index: int) -> list[str]:
    """The command line of child `index`: later flags override the parent's own."""
    argv = [spec.python, "-m", "lars", *spec.argv]
    argv += ["--processes", "1", "--reuse-port", "--port", str(spec.port)]
    if spec.metrics is None:
        argv += ["--metrics", "off"]
    else:
        host, port = spec.metrics
        argv += ["--metrics", f"{host}:{metrics_port(port, index)}"]
    return argv


def metrics_port(port: int, index: int) -> int:
    """Child 0 keeps the metrics port; the others take port + METRICS_OFFSET + index - 1
    (7881, 7882... from 7781: the ports right after it are the reporter's and agent's)."""
    if port == 0 or index == 0:
        return port
    return port + METRICS_OFFSET + index - 1


def restart_delay(previous: float, ran: float) -> float:
    """The wait before restarting a child that ran `ran` seconds after waiting `previous`."""
    if ran >= STABLE_AFTER:
        return RESTART_INITIAL
    return min(max(previous * 2, RESTART_INITIAL), RESTART_MAX)


def resolve_port(ip: str, port: int) -> int:
    """Port 0 becomes a free port, chosen once for every child."""
    if port:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def announce_ready(environ: dict[str, str] | os._Environ[str]) -> None:
    """In a child: tell the parent it listens (no-op outside a group)."""
    fd = environ.get(READY_ENV)
    if not fd:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except (OSError, ValueError):
        log.warning("dns: cannot tell the parent process that this one listens", exc_info=True)


def process_of(environ: dict[str, str] | os._Environ[str]) -> tuple[int, int] | None:
    """In a child: (index, count) of the group; None outside one (or a garbled value)."""
    text = environ.get(PROCESS_ENV, "")
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        return None
    return int(index), int(count)


def die_with_parent(environ: dict[str, str] | os._Environ[str]) -> None:
    """In a child: SIGTERM when the parent process dies (Linux prctl), and at once if it
    already has."""
    parent = environ.get(PARENT_ENV)
    if not parent:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("dns: cannot tie this process's life to its parent's", exc_info=True)
    if str(os.getppid()) != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(slots=True)
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = 0.0  # the wait before the last restart
    due: float = 0.0  # when a dead child is started again
    ready_fd: int = -1  # the read end while the child has not said it listens


class ProcessGroup:
    """The children of `lars dns --processes N`, and the thread that restarts them."""

    def __init__(
        self,
        spec: ChildSpec,
        count: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if count < 1:
            raise ValueError("a process group needs at least one process")
        self.spec = spec
        self._children = [_Child(i) for i in range(count)]
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [c.proc.pid for c in self._children if c.proc is not None]

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start every child and return once all listen; raise NetworkError (and stop the
        others) when one exits first or `timeout` passes."""
        with self._lock:
            for child in self._children:
                self._spawn(child)
        deadline = self._clock() + timeout
        waiting = {c.ready_fd: c for c in self._children}
        try:
            while waiting:
                left = deadline - self._clock()
                if left <= 0 or self._stopping.is_set():
                    raise NetworkError(f"{len(waiting)} route service process(es) not ready")
                readable, _, _ = select.select(list(waiting), [], [], min(left, 0.5))
                for fd in readable:
                    child = waiting.pop(fd)
                    said = os.read(fd, 1)
                    self._close_ready(child)
                    if not said:  # EOF: the child exited without listening
                        code = child.proc.wait() if child.proc is not None else -1
                        raise NetworkError(
                            f"route service process {child.index} exited with {code} "
                            "before listening (its error is above)"
                        )
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._watch, name="dns-processes", daemon=True)
        self._thread.start()

    def reload(self) -> None:
        """SIGHUP to every child: each reloads its own settings and logs what it did."""
        self._signal_all(signal.SIGHUP)

    def request_stop(self) -> None:
        """Safe in a signal handler: sets an event."""
        self._stopping.set()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM every child, SIGKILL what is left after `grace` s; twice is safe."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._signal_all(signal.SIGTERM)
        deadline = self._clock() + grace
        with self._lock:
            for child in self._children:
                self._close_ready(child)
                proc = child.proc
                if proc is None:
                    continue
                try:
                    proc.wait(max(deadline - self._clock(), 0.01))
                except subprocess.TimeoutExpired:
                    log.warning("dns: process %d did not stop in %gs: killed", child.index, grace)
                    proc.kill()
                    proc.wait()

    def _watch(self) -> None:
        """Restart children that exit until stop() (the group's own thread)."""
        while not self._stopping.wait(WATCH_INTERVAL):
            with self._lock:
                for child in self._children:
                    self._tend(child)

    def _tend(self, child: _Child) -> None:
        now = self._clock()
        proc = child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                if child.ready_fd >= 0 and _readable(child.ready_fd):
                    self._close_ready(child)  # listening again after a restart
                return
            self._close_ready(child)
            child.proc = None
            child.delay = restart_delay(child.delay, now - child.started)
            child.due = now + child.delay
            log.error(
                "dns: route service process %d (pid %d) exited with %d; restarting in %gs",
                child.index,
                proc.pid,
                code,
                child.delay,
            )
            return
        if now >= child.due and not self._stopping.is_set():
            self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(
            os.environ,
            **{
                READY_ENV: str(write_fd),
                PARENT_ENV: str(os.getpid()),
                PROCESS_ENV: f"{child.index}/{len(self._children)}",
            },
        )
        try:
            child.proc = subprocess.Popen(
                child_argv(self.spec, child.index), env=env, pass_fds=(write_fd,)
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        child.ready_fd = read_fd
        child.started = self._clock()

    def _close_ready(self, child: _Child) -> None:
        if child.ready_fd >= 0:
            os.close(child.ready_fd)
            child.ready_fd = -1

    def _signal_all(self, sig: int) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def group_spec(
    argv: Sequence[str], ip: str, port: int, metrics: tuple[str, int] | None
) -> ChildSpec:
    """The children's ChildSpec from the parent's command line and settings."""
    return ChildSpec(argv=tuple(argv), port=resolve_port(ip, port), metrics=metrics)
