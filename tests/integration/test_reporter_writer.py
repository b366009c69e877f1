"""A Writer thread on SQLite: batch sizes, coalescing before a write, stop without rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from lars.dbengine import init_schema, make_engine
from lars.reporter.writer import Writer
from tests.integration.test_reporter_service import table_rows, wait_for


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def test_rows_queued_before_start_go_out_in_full_batches(engine: Engine) -> None:
    writer = Writer(0, engine, batch_rows=1000, batch_interval=0.0)
    writer.submit([(m, 1, 1, 80, 1, m, 0, 1, "0") for m in range(2500)])
    writer.start()
    try:
        wait_for(lambda: writer.stats().written == 2500, what="2500 rows written")
    finally:
        writer.stop()
    stats = writer.stats()
    assert (stats.batches, stats.pending, stats.received) == (3, 0, 2500)
    assert len(table_rows(engine)) == 2500


def test_rows_of_one_key_coalesce_while_waiting(engine: Engine) -> None:
    writer = Writer(0, engine)
    refused = writer.submit([(5, 5, 5, 5, 5, n, n, n, "1") for n in range(1, 501)])
    assert refused == 0
    assert writer.stats().pending == 1
    writer.start()
    writer.stop()
    stats = writer.stats()
    assert (stats.written, stats.coalesced, stats.batches) == (1, 499, 1)
    assert table_rows(engine) == {(5, 5, 5, 5, 5): (500, 500, 500, "1")}


def test_a_batch_waits_for_the_interval_unless_it_is_full(engine: Engine) -> None:
    writer = Writer(0, engine, batch_rows=10, batch_interval=3600.0)
    writer.start()
    try:
        writer.submit([(m, 1, 1, 80, 1, 0, 0, 1, "0") for m in range(25)])
        wait_for(lambda: writer.stats().written == 20, what="two full batches")
        assert writer.stats().pending == 5  # the rest waits for more rows or the interval
    finally:
        writer.stop()
    assert writer.stats().written == 25


def test_stop_of_an_idle_or_unstarted_writer_returns(engine: Engine) -> None:
    Writer(0, engine).stop()
    writer = Writer(1, engine)
    writer.start()
    writer.stop()
    writer.stop()
    with pytest.raises(RuntimeError):
        writer.start()
    assert writer.stats().written == 0
