"""The order in which admin commands pick a database (lars/dbselect.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lars.dbselect import DB_ENV, Selection, select_admin_db
from lars.errors import ConfigError

MYSQL_INI = "[mysql]\ndb_host = 10.1.2.3\ndb_name = routes\n"


def _select(
    tmp: Path,
    db: str | None = None,
    config: str | None = None,
    env: dict[str, str] | None = None,
    default: Path | None = None,
) -> Selection:
    return select_admin_db(
        db, config, env or {}, tmp / "cwd", default_config=default or tmp / "none.conf"
    )


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "cwd").mkdir()
    return tmp_path


def test_nothing_selects_nothing_and_creates_nothing(tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"no database selected.*--db.*LARS_DB"):
        _select(tmp)
    assert list((tmp / "cwd").iterdir()) == []


def test_flag_wins_over_everything(tmp: Path) -> None:
    conf = tmp / "a.conf"
    conf.write_text(MYSQL_INI)
    (tmp / "cwd" / "lars.db").touch()
    s = _select(tmp, db="sqlite:///x.db", config=str(conf), env={DB_ENV: "sqlite:///e.db"})
    assert (s.url, s.source, s.announce) == ("sqlite:///x.db", "--db", False)


def test_config_file_with_mysql_comes_next(tmp: Path) -> None:
    conf = tmp / "a.conf"
    conf.write_text(MYSQL_INI)
    s = _select(tmp, config=str(conf), env={DB_ENV: "sqlite:///e.db"})
    assert s.url.startswith("mysql+pymysql://root@10.1.2.3:3306/routes")
    assert s.source == f"-c {conf}"


def test_config_file_without_mysql_selects_nothing(tmp: Path) -> None:
    conf = tmp / "a.conf"
    conf.write_text("[reactor]\nport = 1\n")
    assert _select(tmp, config=str(conf), env={DB_ENV: "sqlite:///e.db"}).source == DB_ENV
    with pytest.raises(ConfigError):
        _select(tmp, config=str(conf))


def test_environment_then_default_config_then_local_file(tmp: Path) -> None:
    default = tmp / "lars.conf"
    default.write_text(MYSQL_INI)
    (tmp / "cwd" / "lars.db").touch()
    assert _select(tmp, env={DB_ENV: " sqlite:///e.db "}, default=default).url == "sqlite:///e.db"
    assert _select(tmp, env={DB_ENV: ""}, default=default).source == str(default)
    default.write_text("[agent]\n")  # no [mysql]: falls through to ./lars.db
    s = _select(tmp, default=default)
    assert s.url == f"sqlite:///{tmp / 'cwd' / 'lars.db'}" and s.announce
