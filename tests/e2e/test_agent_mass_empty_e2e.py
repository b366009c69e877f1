"""Defence in depth at the agent, with a real `lars agent` process (issue 18 item 4).

The route service is a test double in this process that behaves like an original Lars
lars_dns serving an emptied table: it pushes an empty answer for every module, then (the
agent reconnected) answers every GetRouteRequest empty. 10 modules of 3 hosts. The agent
keeps serving all 10 (SUCC) and logs one line; hosts for one held module end the hold
(its hosts served, the others asked again and emptied). With `[agent]
mass_empty_delay = 2` in the agent's INI file, the held empty answers are applied after
the delay."""

from __future__ import annotations

from pathlib import Path

import pytest

from lars.protocol import RetCode, dotted_to_wire
from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base, get_host
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until

pytestmark = pytest.mark.e2e

MODULES = [(m, 1) for m in range(1, 11)]
HOSTS = {key: [(dotted_to_wire(f"10.0.{key[0]}.{i}"), 9000 + i) for i in (1, 2, 3)]
         for key in MODULES}  # fmt: skip
SUCC, NOEXIST = int(RetCode.SUCC), int(RetCode.NOEXIST)


def answers(peer: UdpPeer) -> dict[tuple[int, int], int | None]:
    return {key: None if (r := get_host(peer, *key)) is None else r.retcode for key in MODULES}


def served(peer: UdpPeer) -> int:
    return sum(code == SUCC for code in answers(peer).values())


def start(tmp_path: Path, name: str, dns_port: int, rep: FakeReporter, base: int,
          config: Path | None = None) -> Proc:  # fmt: skip
    args = [
        "agent", "--base-port", str(base), "--dns", f"127.0.0.1:{dns_port}",
        "--reporter", f"{rep.address[0]}:{rep.address[1]}", "--caller", "10.9.8.7",
    ]  # fmt: skip
    if config is not None:
        args += ["-c", str(config)]
    return Proc(tmp_path / f"{name}.log", *args)


def test_original_style_empty_answers_for_every_module_leave_the_agent_serving(
    tmp_path: Path,
) -> None:
    dns_port, base = free_port(), free_udp_base()
    dns = FakeRouteService(port=dns_port).start()
    rep = FakeReporter().start()
    for key, hosts in HOSTS.items():
        dns.set_route(key, hosts)
    agent = start(tmp_path, "agent", dns_port, rep, base)
    try:
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: served(peer) == 10, 60)
            wait_until(lambda: all(dns.subscribers(k) for k in MODULES), 60)
            for key in MODULES:  # pushes: every module empty
                dns.set_route(key, [])
            wait_until(lambda: "EMPTIED" in agent.log.read_text(), 60)
            assert served(peer) == 10  # before issue 18: 0 of 10
            # replies too: the route service restarts and the agent asks again
            asked = len(dns.requests)
            dns.stop()
            dns = FakeRouteService(port=dns_port).start()
            for key in MODULES:
                dns.set_route(key, [], push=False)
            wait_until(lambda: len(set(dns.requests) & set(MODULES)) == 10, 60)
            assert asked > 0
            assert served(peer) == 10  # the empty replies are held as well
            # the route service has a real table again for one held module
            dns.set_route((1, 1), HOSTS[(1, 1)][:1])
            wait_until(lambda: answers(peer)[(2, 1)] == NOEXIST, 60)
            final = answers(peer)
            assert final[(1, 1)] == SUCC
            assert sum(code == NOEXIST for code in final.values()) == 9
        code, err = agent.stop()
        assert code == 0, err
        assert err.count("EMPTIED") == 1  # one line for the hold
        assert err.count("serves hosts again for a held module") == 1
    finally:
        agent.stop()
        dns.stop()
        rep.stop()


def test_mass_empty_delay_from_the_ini_file_applies_the_empty_answers(tmp_path: Path) -> None:
    dns_port, base = free_port(), free_udp_base()
    dns = FakeRouteService(port=dns_port).start()
    rep = FakeReporter().start()
    for key, hosts in HOSTS.items():
        dns.set_route(key, hosts)
    config = tmp_path / "lars_lb_agent.conf"
    config.write_text("[agent]\nmass_empty_delay = 2\n", encoding="utf-8")
    agent = start(tmp_path, "agent", dns_port, rep, base, config)
    try:
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: served(peer) == 10, 60)
            wait_until(lambda: all(dns.subscribers(k) for k in MODULES), 60)
            for key in MODULES:
                dns.set_route(key, [])
            wait_until(lambda: "EMPTIED" in agent.log.read_text(), 60)
            wait_until(lambda: served(peer) == 0, 60)  # applied after 2 s
        code, err = agent.stop()
        assert code == 0, err
        assert "for 2s ([agent] mass_empty_delay)" in err
        assert "held for 2s ([agent] mass_empty_delay) now applied" in err
    finally:
        agent.stop()
        dns.stop()
        rep.stop()
