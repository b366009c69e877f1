"""The agent's `[register]` section: check defaults, limits and where registrations live.

```
[register]
check_interval = 1      ; seconds between checks (0.05..3600)
check_timeout = 0.5     ; seconds a tcp/http check may take (0.01..60)
fail_after = 2          ; failures in a row that make an instance failing (1..100)
pass_after = 1          ; successes in a row that make it passing (1..100)
max_instances = 10000   ; registrations this agent holds at most (1..1000000)
max_checks = 256        ; tcp/http checks in flight at once (1..10000)
path = /var/lib/lars/agent.registrations.json   ; the registrations file (`.N` added
                        ; per shard process with --mode processes)
```

Each registration may set its own interval/timeout/fail_after/pass_after (within the
same ranges); these are the defaults. The registrations file defaults to the route cache
path plus `.registrations` when the agent has a cache, else to
`~/.local/state/lars/agent-<base_port>.registrations.json`; an agent on ephemeral ports
(base port 0, tests) keeps them in memory only unless a path is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lars.agent.checks import CheckSettings
from lars.config import IniFile, check_ranges, ranged
from lars.protocol.checks import (
    DEFAULT_FAIL_AFTER,
    DEFAULT_INTERVAL,
    DEFAULT_PASS_AFTER,
    DEFAULT_TIMEOUT,
    FAIL_AFTER_RANGE,
    INTERVAL_RANGE,
    PASS_AFTER_RANGE,
    TIMEOUT_RANGE,
    Check,
)

__all__ = ["RegisterConfig", "registrations_path"]

DEFAULT_MAX_INSTANCES = 10_000
DEFAULT_MAX_CHECKS = 256
SECTION = "register"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterConfig:
    # Check defaults
    check_interval: float = ranged(
        DEFAULT_INTERVAL, *INTERVAL_RANGE, name="[register] check_interval", unit="s"
    )
    check_timeout: float = ranged(
        DEFAULT_TIMEOUT, *TIMEOUT_RANGE, name="[register] check_timeout", unit="s"
    )
    fail_after: int = ranged(DEFAULT_FAIL_AFTER, *FAIL_AFTER_RANGE, name="[register] fail_after")
    pass_after: int = ranged(DEFAULT_PASS_AFTER, *PASS_AFTER_RANGE, name="[register] pass_after")
    # Limits
    max_instances: int = ranged(
        DEFAULT_MAX_INSTANCES, 1, 1_000_000, name="[register] max_instances"
    )
    max_checks: int = ranged(DEFAULT_MAX_CHECKS, 1, 10_000, name="[register] max_checks")
    # Storage: None = the default described above
    path: str | None = None

    def __post_init__(self) -> None:
        check_ranges(self)

    @classmethod
    def from_ini(cls, ini: IniFile) -> RegisterConfig:
        base = cls()
        path = ini.get(SECTION, "path", "")
        return cls(
            check_interval=ini.get(SECTION, "check_interval", base.check_interval),
            check_timeout=ini.get(SECTION, "check_timeout", base.check_timeout),
            fail_after=ini.get(SECTION, "fail_after", base.fail_after),
            pass_after=ini.get(SECTION, "pass_after", base.pass_after),
            max_instances=ini.get(SECTION, "max_instances", base.max_instances),
            max_checks=ini.get(SECTION, "max_checks", base.max_checks),
            path=path or None,
        )

    def settings_for(self, check: Check) -> CheckSettings:
        """The check's own settings where it has them, these defaults elsewhere."""
        return CheckSettings(
            interval=self.check_interval if check.interval is None else check.interval,
            timeout=self.check_timeout if check.timeout is None else check.timeout,
            fail_after=self.fail_after if check.fail_after is None else check.fail_after,
            pass_after=self.pass_after if check.pass_after is None else check.pass_after,
            ttl=check.ttl,
        )


def registrations_path(
    config: RegisterConfig,
    cache_path: str | None,
    base_port: int,
    shard: int | None = None,
    home: Path | None = None,
) -> Path | None:
    """Where the agent keeps its registrations (None: in memory only).

    `shard` is set in a `--mode processes` child, which owns the registrations of its
    shard's modules only: its file gets a `.<shard>` suffix (its cache path has one
    already), so the three children never share a file.
    """
    tail = "" if shard is None else f".{shard}"
    if config.path:
        return Path(config.path + tail).expanduser()
    if cache_path:
        return Path(f"{cache_path}.registrations")
    if base_port == 0:
        return None
    root = (home or Path.home()) / ".local" / "state" / "lars"
    return root / f"agent-{base_port}{tail}.registrations.json"
