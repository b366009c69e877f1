"""`lars route restore` and the saved guard state on MariaDB (issue 18): the same checks
as tests/integration/test_dns_restore.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_dns_restore import (
    check_restart_serves_the_last_good_table,
    check_restore_undoes_a_held_delete_and_drain,
)

pytestmark = pytest.mark.mysql


def test_restore_undoes_a_held_delete_and_drain_mysql(mysql_url: str) -> None:
    check_restore_undoes_a_held_delete_and_drain(mysql_url)


def test_restart_serves_the_last_good_table_mysql(mysql_url: str, tmp_path: Path) -> None:
    check_restart_serves_the_last_good_table(mysql_url, tmp_path)
