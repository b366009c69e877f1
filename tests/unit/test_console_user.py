"""The console user: the actor of console edits and releases in RouteAudit."""

from __future__ import annotations

import pytest

from lars.config import IniFile
from lars.console.config import DEFAULT_USER, ConsoleConfig
from lars.errors import ConfigError


def test_console_user_defaults_and_comes_from_the_file() -> None:
    assert ConsoleConfig.from_ini(IniFile.empty(), {}).user == DEFAULT_USER == "console"
    ini = IniFile.from_string("[console]\nuser = ops-team\n")
    assert ConsoleConfig.from_ini(ini, {}).user == "ops-team"


def test_an_empty_console_user_is_refused() -> None:
    with pytest.raises(ConfigError, match="console user"):
        ConsoleConfig.from_ini(IniFile.from_string("[console]\nuser =  \n"), {})
