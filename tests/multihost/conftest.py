"""Fixtures of the multi-host tests: a network of namespaces and a scratch database.

Without root or iproute2 the tests skip with a loud reason; with LARS_REQUIRE_NETNS=1
(set by .ci/run) that skip is a failure instead, so CI cannot pass without them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.dbengine import init_schema, make_engine, scratch_database
from lars.routes.admin import RouteAdmin
from tests.multihost.netns import Network, kernel_netem, netns_problem, remove_leftovers
from tests.multihost.platform import MODULES, WATCHED, Platform


def require_netns(problem: str | None, required: bool) -> None:
    """Skip loudly without namespaces, or fail when they are required (CI)."""
    if problem is None:
        return
    reason = f"NO NETWORK NAMESPACES: multi-host tests not run: {problem}"
    if required:
        pytest.fail(reason + " (LARS_REQUIRE_NETNS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def netns_ready() -> None:
    require_netns(netns_problem(), os.environ.get("LARS_REQUIRE_NETNS") == "1")
    stale = remove_leftovers()
    if stale:
        print(f"multihost: removed leftovers of earlier runs: {stale}", file=sys.stderr)
    if not kernel_netem():
        print("multihost: the kernel has no sch_netem; faults go through the userspace wire")


@pytest.fixture(scope="module")
def network(netns_ready: None) -> Iterator[Network]:
    net = Network()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def routes_db(mysql_server_url: str) -> Iterator[str]:
    """A scratch MariaDB database with the schema, MODULES (two hosts each) and WATCHED."""
    with scratch_database(mysql_server_url, "lars_mh") as url:
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for i, (modid, cmdid) in enumerate(MODULES):
            for j in (1, 2):
                admin.add_host(modid, cmdid, f"10.99.{i}.{j}", 9000 + j)
        admin.add_host(*WATCHED, "10.98.0.1", 9000)
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def platform(network: Network, routes_db: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Platform]:  # fmt: skip
    workdir: Path = tmp_path_factory.mktemp("multihost")
    plat = Platform(network, routes_db, workdir)
    try:
        yield plat
    finally:
        plat.close()
