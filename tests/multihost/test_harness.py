"""The harness itself, without namespaces: the skip/fail rule and the wire's verdicts."""

from __future__ import annotations

import random
import socket

import pytest

from tests.multihost.conftest import require_netns
from tests.multihost.wire import VNET_HDR, Link, Rule


def test_missing_namespaces_skip_loudly_or_fail_when_required() -> None:
    require_netns(None, required=True)  # namespaces work: nothing happens
    with pytest.raises(pytest.skip.Exception, match=r"NO NETWORK NAMESPACES: .*not root"):
        require_netns("not root", required=False)
    with pytest.raises(pytest.fail.Exception, match="LARS_REQUIRE_NETNS=1"):
        require_netns("not root", required=True)


def frame(src: str, dst: str, ethertype: bytes = b"\x08\x00") -> bytes:
    eth = b"\x00" * 12 + ethertype
    ip = b"\x45" + b"\x00" * 11 + socket.inet_aton(src) + socket.inet_aton(dst)
    return b"\x00" * VNET_HDR + eth + ip + b"\x00" * 8


def link(*rules: Rule) -> Link:
    return Link("h1", (socket.socket(), socket.socket()), list(rules))


def test_rules_pick_delay_and_loss_per_peer() -> None:
    server = socket.inet_aton("10.213.47.4")
    lk = link(Rule(delay=0.0, loss=1.0, peer=server), Rule(delay=0.05))
    rng = random.Random(1)
    try:
        assert lk.verdict(frame("10.213.47.11", "10.213.47.4"), rng) is None  # to the server
        assert lk.verdict(frame("10.213.47.4", "10.213.47.11"), rng) is None  # from it
        assert lk.verdict(frame("10.213.47.11", "10.213.47.2"), rng) == 0.05  # the rest
        arp = frame("10.213.47.11", "10.213.47.4", ethertype=b"\x08\x06")
        assert lk.verdict(arp, rng) == 0.05  # peer rules touch IPv4 only
        lk.rules = []
        assert lk.verdict(arp, rng) == 0.0  # no rule: forwarded at once
    finally:
        for sock in lk.socks:
            sock.close()


def test_loss_is_about_the_rate_asked() -> None:
    lk = link(Rule(loss=0.02))
    rng = random.Random(7)
    try:
        lost = sum(lk.verdict(frame("10.0.0.1", "10.0.0.2"), rng) is None for _ in range(20000))
        assert 300 <= lost <= 500  # 2 % of 20,000 = 400
    finally:
        for sock in lk.socks:
            sock.close()
