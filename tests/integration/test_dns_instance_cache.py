"""InstanceCache: a load that reads only the instances changed since the last one gives
exactly what a full read gives, after any mix of registrations, deregistrations, state
changes and expiries (SQLite, which reuses row ids, and MariaDB)."""

from __future__ import annotations

import random

import pytest
import sqlalchemy

from lars.dbengine import init_schema, make_engine
from lars.dns.instance_reads import InstanceCache, read_mark, read_served
from lars.dns.instances import Instance
from lars.dns.leases import Batch
from lars.dns.regstore import InstanceStore


def check_partial_reads_equal_full_reads(url: str, seed: int) -> None:
    engine = make_engine(url)
    init_schema(engine)
    store = InstanceStore(engine)
    cache = InstanceCache(clock=lambda: 0.0)  # never old enough for a timed full read
    rng = random.Random(seed)
    now = 1_000
    try:
        for _step in range(40):
            now += rng.randint(0, 4)
            batch = Batch()
            for agent in rng.sample([f"a{n}" for n in range(5)], rng.randint(0, 3)):
                batch.changes[agent] = frozenset(
                    Instance(
                        rng.randint(1, 3), 1, rng.randint(1, 6), 80, passing=rng.random() < 0.7
                    )
                    for _ in range(rng.randint(0, 4))
                )
            batch.expire = rng.random() < 0.3
            store.write(batch, now, 5.0)
            with engine.connect() as conn:
                partial = sorted(cache.read(conn, read_mark(conn)))
                full = sorted(read_served(conn))
            cache.commit()
            assert partial == full
        assert cache.partial_reads > 10 and cache.full_reads == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_partial_reads_equal_full_reads(sqlite_url: str, seed: int) -> None:
    check_partial_reads_equal_full_reads(sqlite_url, seed)


@pytest.mark.mysql
def test_partial_reads_equal_full_reads_mysql(mysql_url: str) -> None:
    check_partial_reads_equal_full_reads(mysql_url, 4)


def test_a_failed_load_reads_in_full_next_time(sqlite_url: str) -> None:
    engine: sqlalchemy.Engine = make_engine(sqlite_url)
    init_schema(engine)
    store = InstanceStore(engine)
    cache = InstanceCache(clock=lambda: 0.0)
    try:
        store.write(Batch(changes={"a": frozenset({Instance(1, 1, 1, 80)})}), 1, 5.0)
        with engine.connect() as conn:
            cache.read(conn, read_mark(conn))
        cache.commit()
        store.write(Batch(changes={"b": frozenset({Instance(1, 1, 2, 80)})}), 2, 5.0)
        with engine.connect() as conn:
            cache.read(conn, read_mark(conn))
        cache.forget()  # the snapshot failed after the read
        with engine.connect() as conn:
            assert len(cache.read(conn, read_mark(conn))) == 2
        assert cache.full_reads == 2
    finally:
        engine.dispose()
