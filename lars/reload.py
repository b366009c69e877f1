"""SIGHUP for the daemons: re-read the -c file, apply what is safe, name the rest.

A daemon's main() builds its config from the file and flags once; on SIGHUP it builds
it again the same way (same -c file, same flags, so flags still override the file) and
hands it to its service's `reload(new_config)`, which applies the settings it can change
while running and returns a ReloadResult: the changes applied and the changes that need a
restart. `SignalWaiter` is the main thread's wait: SIGINT/SIGTERM end it, SIGHUP runs the
reload on the main thread (never inside the signal handler), logs what happened, and
never lets a bad file or a bug end the daemon.

The log level is reloadable everywhere: `[log] level = DEBUG|INFO|WARNING|ERROR` in the
file, unless `--log-level` was given on the command line (a flag wins over the file).
A setting read once at start outside the service's config (`[metrics] listen`) is
reported through `restart_only()`, never ignored; a value out of its range fails the
rebuild (lars.config.check_ranges) and is logged like a broken file, old settings kept.
`SignalWaiter.fail()` ends the wait from any thread when the daemon cannot go on (a dead
thread, lars.threads): `wait()` raises DaemonFailed, exit 1. Standard library only.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, is_dataclass
from types import FrameType, TracebackType
from typing import Any

from lars.config import IniFile
from lars.errors import ConfigError, DaemonFailed

__all__ = [
    "LOG_LEVELS",
    "Change",
    "ReloadResult",
    "SignalWaiter",
    "diff",
    "file_log_level",
    "reload_log_level",
    "restart_only",
    "split",
]

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class Change:
    """One setting that differs: `name` is its dotted config path (balancer.probe_num)."""

    name: str
    old: object
    new: object

    def __str__(self) -> str:
        if "passw" in self.name:  # never log a secret
            return f"{self.name} (changed)"
        return f"{self.name} {_mask(self.old)} -> {_mask(self.new)}"


_URL_PASSWORD = re.compile(r"(//[^:/@\s]*):[^@/\s]*@")


def _mask(value: object) -> str:
    """A value for the log, with any password of a URL (user:secret@host) masked."""
    return _URL_PASSWORD.sub(r"\1:***@", str(value))


@dataclass(frozen=True, slots=True)
class ReloadResult:
    applied: tuple[Change, ...] = ()
    restart: tuple[Change, ...] = ()  # changed in the file, kept until a restart

    def __add__(self, other: ReloadResult) -> ReloadResult:
        return ReloadResult(self.applied + other.applied, self.restart + other.restart)

    def values(self, prefix: str = "") -> dict[str, Any]:
        """{field: new value} of the applied changes under `prefix` ("" = top level),
        ready for dataclasses.replace()."""
        out: dict[str, Any] = {}
        for change in self.applied:
            if change.name.startswith(prefix) and "." not in change.name[len(prefix) :]:
                out[change.name[len(prefix) :]] = change.new
        return out


def diff(old: object, new: object, prefix: str = "") -> list[Change]:
    """Every leaf field of two config dataclasses that differs (nested ones recursed)."""
    out: list[Change] = []
    if not (is_dataclass(old) and is_dataclass(new)) or type(old) is not type(new):
        return [Change(prefix.rstrip("."), old, new)] if old != new else []
    for f in fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if is_dataclass(a) and is_dataclass(b):
            out += diff(a, b, f"{prefix}{f.name}.")
        elif a != b:
            out.append(Change(prefix + f.name, a, b))
    return out


def split(changes: Iterable[Change], reloadable: Callable[[str], bool]) -> ReloadResult:
    applied: list[Change] = []
    restart: list[Change] = []
    for change in changes:
        (applied if reloadable(change.name) else restart).append(change)
    return ReloadResult(tuple(applied), tuple(restart))


def restart_only(name: str, old: object, new: object) -> ReloadResult:
    """A setting read once at start (such as `[metrics] listen`, whose listener is bound
    before the service starts): a change is reported as waiting for a restart, never
    ignored silently."""
    return ReloadResult() if old == new else ReloadResult(restart=(Change(name, old, new),))


def file_log_level(ini: IniFile) -> str | None:
    """`[log] level` of the file, upper-cased and checked; None when absent."""
    raw = ini.get("log", "level", "").strip().upper()
    if not raw:
        return None
    if raw not in LOG_LEVELS:
        raise ConfigError(f"{ini.source}: [log] level = {raw!r}: expected one of {LOG_LEVELS}")
    return raw


def reload_log_level(ini: IniFile, *, flag_given: bool) -> ReloadResult:
    """Apply the file's [log] level to the root logger (not when --log-level was given)."""
    level = file_log_level(ini)
    root = logging.getLogger()
    current = logging.getLevelName(root.level)
    if level is None or level == current:
        return ReloadResult()
    change = Change("log level", current, level)
    if flag_given:  # the command line wins, now as at start
        return ReloadResult(restart=(change,))
    root.setLevel(level)
    return ReloadResult(applied=(change,))


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalWaiter:
    """The daemon's main-thread wait. `with SignalWaiter(name, reload=...) as w: w.wait()`.

    SIGINT/SIGTERM end `wait()` (after calling `on_stop`, which must only set events);
    SIGHUP makes `wait()` call `reload()` on this thread and log its ReloadResult. The
    previous handlers are restored on exit.
    """

    def __init__(
        self,
        name: str,
        *,
        reload: Callable[[], ReloadResult] | None = None,
        on_stop: Callable[[], None] | None = None,
        source: str | None = None,
    ) -> None:
        self.name = name
        self._reload = reload
        self._on_stop = on_stop
        self._source = source
        self._wake = threading.Event()
        self._hup = False
        self.stopping = threading.Event()
        self.failure = ""  # set by fail(): why the daemon stops
        self.reloads = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGINT, SIGTERM and SIGHUP (main thread only)."""
        for sig in (*_STOP_SIGNALS, signal.SIGHUP):
            self._previous.setdefault(sig, signal.signal(sig, self._on_signal))

    def restore(self) -> None:
        """Give the signals back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> SignalWaiter:
        self.install()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        else:
            self.stopping.set()
            if self._on_stop is not None:
                self._on_stop()
        self._wake.set()

    def fail(self, reason: str) -> None:
        """Stop the daemon loudly from any thread (a thread of it died, lars.threads):
        `wait()` raises DaemonFailed(reason), which the command line's error boundary
        prints as its one line with exit 1. Only sets events: safe anywhere."""
        if not self.failure:
            self.failure = reason
        self.stopping.set()
        if self._on_stop is not None:
            self._on_stop()
        self._wake.set()

    def wait(self) -> None:
        """Block until SIGINT/SIGTERM, running a reload for every SIGHUP meanwhile;
        raise DaemonFailed after `fail()`."""
        while not self.stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._hup and not self.stopping.is_set():
                self._hup = False
                self.reload_now()
        if self.failure:
            raise DaemonFailed(f"{self.name} stops: {self.failure}")

    def reload_now(self) -> ReloadResult | None:
        """One reload, logged; a failure is logged and the running settings kept."""
        self.reloads += 1
        source = self._source or "no -c file"
        if self._reload is None:
            log.info("%s: SIGHUP: nothing to reload (%s)", self.name, source)
            return None
        try:
            result = self._reload()
        except Exception as exc:  # a bad file, or a bug: never fatal
            log.error(
                "%s: SIGHUP: %s not reloaded, running settings kept: %s",
                self.name,
                source,
                exc,
                exc_info=not isinstance(exc, ConfigError),
            )
            return None
        if result.applied:
            log.info(
                "%s: SIGHUP: reloaded from %s: %s",
                self.name,
                source,
                ", ".join(map(str, result.applied)),
            )
        if result.restart:
            log.warning(
                "%s: SIGHUP: changed in %s but kept until a restart: %s",
                self.name,
                source,
                ", ".join(map(str, result.restart)),
            )
        if not result.applied and not result.restart:
            log.info("%s: SIGHUP: %s re-read, nothing changed", self.name, source)
        return result
