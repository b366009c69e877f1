"""Review findings on the reporter's Writer, each shown by a failing test first."""

from __future__ import annotations

import itertools
import time

from lars.dbengine import make_engine
from lars.reporter.writer import Writer
from tests.conftest import free_port
from tests.integration.test_reporter_service import wait_for


def test_new_rows_do_not_cut_the_retry_backoff_short(no_leaks: None) -> None:
    """While the database is down, every submit used to wake the writer out of its
    backoff, so under load it retried (and reconnected) once per report."""
    engine = make_engine(f"mysql+pymysql://root@127.0.0.1:{free_port()}/lars")  # refused
    writer = Writer(
        0,
        engine,
        batch_rows=1,
        batch_interval=0.0,
        flush_timeout=0.0,
        backoff_factory=lambda: itertools.repeat(3600.0),
    )
    writer.start()
    try:
        writer.submit([(0, 1, 1, 80, 1, 0, 0, 1, "0")])
        wait_for(lambda: writer.stats().db_errors >= 1, what="the first failed write")
        for modid in range(1, 101):
            writer.submit([(modid, 1, 1, 80, 1, 0, 0, 1, "0")])
            time.sleep(0.005)  # let a woken writer run, as a live reactor would
        assert writer.stats().db_errors == 1  # still backing off: one hour
        assert writer.stats().pending == 101  # nothing lost meanwhile
    finally:
        writer.stop()
        engine.dispose()
    assert writer.stats().lost == 101  # stop() cut the backoff short and gave up at once
