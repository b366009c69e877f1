"""Argument parsing of the client tools and `lars up`, without sockets."""

from __future__ import annotations

import argparse

import pytest

from lars.cli import build_parser
from lars.client import cli as client_cli
from lars.client.qps import QpsSummary


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_module_commands_parse_with_agent_flags() -> None:
    args = parse("gethost", "1", "2", "--agent-ip", "10.0.0.1", "--agent-port", "9000")
    assert (args.modid, args.cmdid, args.agent_ip, args.agent_port) == (1, 2, "10.0.0.1", 9000)
    assert args.agent_ports is None and args.timeout == 0.2
    client = client_cli.client_from_args(args)
    assert client.config.addresses()[0] == ("10.0.0.1", 9000)
    client.close()
    args = parse("getroute", "1", "2", "--agent-ports", "5,6,7", "--timeout", "1.5")
    assert args.agent_ports == (5, 6, 7) and args.timeout == 1.5
    args = parse("report", "1", "2", "10.0.0.1", "80", "1")
    assert (args.ip, args.port, args.retcode) == ("10.0.0.1", 80, 1)


def test_simulator_defaults_and_ranges() -> None:
    args = parse("simulator", "1", "1")
    assert (args.err_rate, args.count, args.seed) == (2, 100, None)
    assert parse("simulator", "1", "1", "10", "5").err_rate == 10
    for bad in (["11"], ["-1"], ["2", "0"], ["x"]):
        with pytest.raises(SystemExit):
            parse("simulator", "1", "1", *bad)


@pytest.mark.parametrize("text", ["1,2", "1,2,3,4", "a,b,c", ""])
def test_three_ports_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        client_cli._three_ports(text)


def test_qps_and_bench_agent_are_the_same_tool() -> None:
    a = parse("qps", "4", "--duration", "3")
    b = parse("bench", "agent", "4", "--duration", "3")
    assert a.func.__wrapped__ is b.func.__wrapped__  # both run _qps under signal handlers
    assert (a.workers, a.duration, a.cmdid) == (b.workers, b.duration, b.cmdid) == (4, 3.0, 1)


def test_bench_kinds_are_shared_whoever_registers_first() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    client_cli.register(sub)  # no `bench` yet: the client creates it
    assert parser.parse_args(["bench", "agent", "2"]).workers == 2


def test_up_flags() -> None:
    args = parse("up", "--demo", "--db", "sqlite:///x.db", "--agent-port", "0")
    assert (args.demo, args.db, args.agent_port, args.dns_port) == (True, "sqlite:///x.db", 0, 7778)


def test_qps_summary() -> None:
    summary = QpsSummary(seconds=2.0, calls=3000, hosts=2900, timeouts=40, samples=(1400, 1600))
    assert summary.qps == 1500
    text = "\n".join(summary.lines())
    assert "3000 get_host in 2.0s = 1500/s" in text and "median of seconds 1600/s" in text
    assert "timeouts: 40, other answers: 60" in text
    assert QpsSummary(0.0, 0, 0, 0, ()).qps == 0.0
