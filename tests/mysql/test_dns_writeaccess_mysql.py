"""WriteAccess on MariaDB: a writable database is found writable (the probe's SELECT left
a transaction open, so its rolled-back DELETE failed with InvalidRequestError and no
route service on MariaDB ever wrote: no guard state, no audit rows)."""

from __future__ import annotations

import pytest

from lars.dbengine import init_schema, make_engine
from lars.dns.writeaccess import WriteAccess

pytestmark = pytest.mark.mysql


def test_a_writable_mariadb_is_found_writable(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    try:
        init_schema(engine)
        access = WriteAccess(engine, separate=False, where="test")
        assert access.probe() is True and access.writable and access.describe() == "writable"
    finally:
        engine.dispose()
