"""Which database an admin command edits: it never guesses.

`lars route ...` and `lars console user|token ...` change routes and accounts, so an
empty SQLite file made by accident in the wrong folder is worse than an error. They take
the database from, in order:

1. `--db URL`;
2. `-c FILE` with a `[mysql]` section (a file without one selects nothing);
3. the `LARS_DB` environment variable;
4. the default config file `/etc/lars/lars.conf`, when it has a `[mysql]` section;
5. an existing `./lars.db` (the embedded default of `lars up`), whose path is then
   printed on stderr so nobody edits it unknowingly.

With none of these they stop with one line saying how to point them at a database and
create nothing. The daemons, `lars up` and `lars initdb` keep their documented default
(`sqlite:///lars.db`) and print the database they use at start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lars.config import IniFile, db_url_from_ini
from lars.errors import ConfigError

__all__ = [
    "DB_ENV",
    "DEFAULT_CONFIG_PATH",
    "Selection",
    "select_admin_db",
]

DB_ENV = "LARS_DB"
DEFAULT_CONFIG_PATH = Path("/etc/lars/lars.conf")
LOCAL_SQLITE = "lars.db"

HOW = (
    "no database selected: give --db URL, -c FILE with a [mysql] section, set LARS_DB, "
    f"or write {DEFAULT_CONFIG_PATH}; run it where `lars up` keeps lars.db to edit that one"
)


@dataclass(frozen=True, slots=True)
class Selection:
    """The URL an admin command uses and where it came from (for the stderr note)."""

    url: str
    source: str  # "--db", "-c FILE", "LARS_DB", "/etc/lars/lars.conf" or "./lars.db"

    @property
    def announce(self) -> bool:
        """True when the command should say which database it picked."""
        return self.source == f"./{LOCAL_SQLITE}"


def select_admin_db(
    db: str | None,
    config: str | None,
    environ: Mapping[str, str],
    cwd: Path,
    *,
    default_config: Path = DEFAULT_CONFIG_PATH,
    load_ini: Callable[[str | None], IniFile] = IniFile.load,
) -> Selection:
    """The database per the order above; ConfigError (exit 2) when nothing selects one."""
    if db:
        return Selection(db, "--db")
    if config:
        ini = load_ini(config)
        if ini.has_section("mysql"):
            return Selection(db_url_from_ini(ini), f"-c {config}")
    from_env = environ.get(DB_ENV, "").strip()
    if from_env:
        return Selection(from_env, DB_ENV)
    if default_config.is_file():
        ini = load_ini(str(default_config))
        if ini.has_section("mysql"):
            return Selection(db_url_from_ini(ini), str(default_config))
    local = cwd / LOCAL_SQLITE
    if local.is_file():
        return Selection(f"sqlite:///{local}", f"./{LOCAL_SQLITE}")
    raise ConfigError(HOW)
