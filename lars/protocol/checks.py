"""The health check of a registration: its text form (Instance.check) and its settings.

A registration names one check, as the CLI and the wire write it:

- `tcp`: the agent connects to the instance's ip:port (the default);
- `http://HOST:PORT/PATH`: the agent sends a GET; any 2xx status passes;
- `ttl:SECONDS`: the instance itself sends heartbeats; one must arrive within SECONDS.

`Check` is that choice plus the per-registration settings (interval, timeout,
fail_after, pass_after), each None for "the agent's `[register]` default". It is shared
by the client (which sends it), the agent (which runs it) and the route service (which
shows it); it imports nothing but the error tree, so the client-only install carries it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from lars.errors import ValidationError

__all__ = [
    "CHECK_TEXT_MAX",
    "DEFAULT_FAIL_AFTER",
    "DEFAULT_INTERVAL",
    "DEFAULT_PASS_AFTER",
    "DEFAULT_TIMEOUT",
    "FAIL_AFTER_RANGE",
    "INTERVAL_RANGE",
    "PASS_AFTER_RANGE",
    "TIMEOUT_RANGE",
    "TTL_RANGE",
    "Check",
    "CheckKind",
    "parse_check",
]

# Defaults (issue 20): a check a second, 0.5 s to answer, failing after 2 misses in a row,
# passing again after 1 success: a killed process leaves within about 2-3 s.
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 0.5
DEFAULT_FAIL_AFTER = 2
DEFAULT_PASS_AFTER = 1
# Ranges (also the agent's [register] ranges): (lo, hi), both included.
INTERVAL_RANGE = (0.05, 3600.0)  # seconds between checks
TIMEOUT_RANGE = (0.01, 60.0)  # seconds a tcp/http check may take
FAIL_AFTER_RANGE = (1, 100)  # consecutive failures that make a passing instance failing
PASS_AFTER_RANGE = (1, 100)  # consecutive successes that make it passing
TTL_RANGE = (0.1, 86400.0)  # seconds a ttl check waits for a heartbeat
CHECK_TEXT_MAX = 512  # characters of the check text (an http URL)


class CheckKind(enum.Enum):
    TCP = "tcp"
    HTTP = "http"
    TTL = "ttl"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One registration's check. Build with `Check()` (tcp), `Check.http(url)`,
    `Check.ttl_of(seconds)` or `parse_check(text)`; ValidationError on bad values."""

    kind: CheckKind = CheckKind.TCP
    url: str = ""  # http: the full URL
    ttl: float = 0.0  # ttl: seconds
    # Per registration; None: the agent's [register] default.
    interval: float | None = None
    timeout: float | None = None
    fail_after: int | None = None
    pass_after: int | None = None

    def __post_init__(self) -> None:
        if self.kind is CheckKind.HTTP:
            _http_target(self.url)
        elif self.url:
            raise ValidationError(f"a {self.kind.value} check has no URL")
        if self.kind is CheckKind.TTL:
            _in_range("ttl", self.ttl, TTL_RANGE)
        elif self.ttl:
            raise ValidationError(f"a {self.kind.value} check has no TTL")
        if self.interval is not None:
            _in_range("interval", self.interval, INTERVAL_RANGE)
        if self.timeout is not None:
            _in_range("timeout", self.timeout, TIMEOUT_RANGE)
        if self.fail_after is not None:
            _in_range("fail_after", self.fail_after, FAIL_AFTER_RANGE, integer=True)
        if self.pass_after is not None:
            _in_range("pass_after", self.pass_after, PASS_AFTER_RANGE, integer=True)

    @classmethod
    def http(cls, url: str, **settings: float | int | None) -> Check:
        return cls(kind=CheckKind.HTTP, url=url, **settings)  # type: ignore[arg-type]

    @classmethod
    def ttl_of(cls, seconds: float, **settings: float | int | None) -> Check:
        return cls(kind=CheckKind.TTL, ttl=float(seconds), **settings)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """The wire and CLI form: `tcp`, the URL, or `ttl:SECONDS`."""
        if self.kind is CheckKind.HTTP:
            return self.url
        if self.kind is CheckKind.TTL:
            return f"ttl:{self.ttl:g}"
        return "tcp"

    def http_target(self) -> tuple[str, int, str]:
        """(host, port, path with query) of an http check."""
        return _http_target(self.url)

    def with_settings(
        self,
        *,
        interval: float | None = None,
        timeout: float | None = None,
        fail_after: int | None = None,
        pass_after: int | None = None,
    ) -> Check:
        """A copy with the given settings (None keeps this check's)."""
        return Check(
            kind=self.kind,
            url=self.url,
            ttl=self.ttl,
            interval=self.interval if interval is None else interval,
            timeout=self.timeout if timeout is None else timeout,
            fail_after=self.fail_after if fail_after is None else fail_after,
            pass_after=self.pass_after if pass_after is None else pass_after,
        )


def parse_check(value: str | Check | None) -> Check:
    """A Check from its text (`tcp`, `http://HOST:PORT/PATH`, `ttl:SECONDS`), a Check
    (returned as is) or None (tcp). Raises ValidationError naming what is wrong."""
    if value is None:
        return Check()
    if isinstance(value, Check):
        return value
    if not isinstance(value, str):
        raise ValidationError(f"check must be a string or a Check, got {value!r}")
    text = value.strip()
    if len(text) > CHECK_TEXT_MAX:
        raise ValidationError(f"check is longer than {CHECK_TEXT_MAX} characters")
    if text in ("", "tcp"):
        return Check()
    if text.lower().startswith("http://"):
        return Check.http(text)
    if text.startswith("ttl:"):
        try:
            seconds = float(text[4:])
        except ValueError:
            raise ValidationError(f"check {text!r}: ttl:SECONDS needs a number") from None
        return Check.ttl_of(seconds)
    raise ValidationError(f"check {text!r}: expected tcp, http://HOST:PORT/PATH or ttl:SECONDS")


def _http_target(url: str) -> tuple[str, int, str]:
    if len(url) > CHECK_TEXT_MAX:
        raise ValidationError(f"check URL is longer than {CHECK_TEXT_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"check URL {url!r}: {exc}") from None
    if parts.scheme.lower() != "http":
        raise ValidationError(f"check URL {url!r}: only http:// is supported")
    host = parts.hostname
    if not host or any(c.isspace() for c in url):
        raise ValidationError(f"check URL {url!r}: expected http://HOST:PORT/PATH")
    if port == 0:
        raise ValidationError(f"check URL {url!r}: port must be in 1..65535")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port or 80, path


def _in_range(
    name: str, value: float, bounds: tuple[float, float], *, integer: bool = False
) -> None:
    lo, hi = bounds
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(f"check {name} = {value!r}: expected {lo:g}..{hi:g}")
