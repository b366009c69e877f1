"""Push-empty end to end with real processes: `lars dns` with its guard off
(`--max-drop-ratio 1.0`, like an original Lars route service) on SQLite, `lars agent
--cache`. A DBA's `DELETE FROM RouteData; UPDATE RouteVersion ...` empties every
module; the agent's mass-empty guard keeps serving their hosts (SUCC, logged once; before
issue 18 it followed: NOEXIST), its cache file keeps them, and the agent restarted while
the route service still serves the empty table answers SUCC from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from lars.dbengine import init_schema, make_engine
from lars.protocol import RetCode
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base, get_host
from tests.integration.agent_fakes import UdpPeer, wait_until

pytestmark = pytest.mark.e2e

MODULES = [(1, 2), (2, 2), (3, 1)]
SUCC, NOEXIST = int(RetCode.SUCC), int(RetCode.NOEXIST)


def answers(peer: UdpPeer) -> set[int | None]:
    return {None if (r := get_host(peer, *key)) is None else r.retcode for key in MODULES}


def test_push_empty_is_held_and_an_agent_restart_serves_the_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for i, key in enumerate(MODULES):
        admin.add_host(*key, f"10.0.0.{i + 1}", 9000 + i)
    dns_port, rep_port, base = free_port(), free_port(), free_udp_base()
    cache = tmp_path / "routes.json"
    dns = Proc(
        tmp_path / "dns.log", "dns", "--db", url, "--ip", "127.0.0.1", "--port", str(dns_port),
        "--max-drop-ratio", "1.0", "--poll-interval", "0.2",
    )  # fmt: skip
    agent_args = (
        "agent", "--base-port", str(base), "--dns", f"127.0.0.1:{dns_port}",
        "--reporter", f"127.0.0.1:{rep_port}", "--caller", "10.9.8.7", "--cache", str(cache),
    )  # fmt: skip
    agent = Proc(tmp_path / "a1.log", *agent_args)
    procs = [agent, dns]
    try:
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: answers(peer) == {SUCC}, 60)
            wait_until(lambda: cache.exists() and len(json.loads(cache.read_text())["routes"]) == 3)
            with engine.begin() as conn:  # the DBA's mistake, in plain SQL
                conn.execute(text("DELETE FROM RouteData"))
                conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
            wait_until(lambda: "EMPTIED" in agent.log.read_text(), 60)  # pushed and held
            assert answers(peer) == {SUCC}  # before issue 18: {NOEXIST}
        code, err = agent.stop()
        assert code == 0, err
        assert err.count("EMPTIED") == 1  # one line
        routes = json.loads(cache.read_text())["routes"]
        assert sorted(len(r["hosts"]) for r in routes) == [1, 1, 1]
        agent = Proc(tmp_path / "a2.log", *agent_args)  # the route service still serves empty
        procs[0] = agent
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: answers(peer) == {SUCC}, 60)
            wait_until(lambda: "still serving their last hosts" in agent.log.read_text(), 60)
            assert answers(peer) == {SUCC}  # still, after the route service answered
        code, err = agent.stop()
        assert code == 0, err
        assert "stale until the route service answers" in err
    finally:
        for p in procs:
            p.stop()
        engine.dispose()
