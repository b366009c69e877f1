"""lars.dns.processes without processes: the children's command line, the restart
backoff, port 0, and the settings that turn a group on."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.cli import build_parser
from lars.config import IniFile
from lars.dns.cli import build_dns_config
from lars.dns.processes import (
    PROCESS_ENV,
    RESTART_INITIAL,
    RESTART_MAX,
    STABLE_AFTER,
    ChildSpec,
    ProcessGroup,
    child_argv,
    metrics_port,
    process_of,
    resolve_port,
    restart_delay,
)
from lars.dns.service import DnsConfig
from lars.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    args = build_parser(list(argv)).parse_args(list(argv))
    args.argv = tuple(argv)
    return args


def test_child_argv_overrides_the_parents_flags_in_order() -> None:
    spec = ChildSpec(
        argv=("--log-level", "WARNING", "dns", "--processes", "4", "--port", "0"),
        port=7778,
        metrics=("127.0.0.1", 7781),
        python="/py",
    )
    argv = child_argv(spec, 2)
    assert argv[:3] == ["/py", "-m", "lars"]
    assert argv[3:10] == list(spec.argv)
    assert argv[10:] == ["--processes", "1", "--reuse-port", "--port", "7778",
                         "--metrics", "127.0.0.1:7882"]  # fmt: skip
    # argparse keeps the last value: the child is one process on the resolved port
    child = build_dns_config(parse(*argv[3:]), IniFile.load(None))
    assert (child.processes, child.reactor.port, child.reactor.reuse_port) == (1, 7778, True)


def test_metrics_ports_keep_clear_of_the_other_daemons() -> None:
    assert [metrics_port(7781, i) for i in range(4)] == [7781, 7881, 7882, 7883]
    assert metrics_port(0, 3) == 0  # each child picks its own


def test_child_metrics_off_and_ephemeral() -> None:
    off = ChildSpec(argv=("dns",), port=1, metrics=None)
    assert child_argv(off, 3)[-2:] == ["--metrics", "off"]
    ephemeral = ChildSpec(argv=("dns",), port=1, metrics=("0.0.0.0", 0))
    assert child_argv(ephemeral, 3)[-2:] == ["--metrics", "0.0.0.0:0"]


def test_restart_delay_doubles_to_a_cap_and_resets_after_a_stable_run() -> None:
    assert restart_delay(0.0, 0.1) == RESTART_INITIAL
    delays = [RESTART_INITIAL]
    for _ in range(10):
        delays.append(restart_delay(delays[-1], 0.5))
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == RESTART_MAX and delays[-1] == RESTART_MAX
    assert restart_delay(RESTART_MAX, STABLE_AFTER) == RESTART_INITIAL


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_restart_delay_stays_in_bounds(previous: float, ran: float) -> None:
    assert RESTART_INITIAL <= restart_delay(previous, ran) <= RESTART_MAX


def test_port_zero_is_resolved_once_and_a_fixed_port_kept() -> None:
    port = resolve_port("127.0.0.1", 0)
    assert 0 < port < 65536
    with socket.socket() as sock:  # free: nothing holds it after resolving
        sock.bind(("127.0.0.1", port))
    assert resolve_port("127.0.0.1", 7778) == 7778


def test_processes_and_reuse_port_come_from_the_file_and_the_flags(tmp_path: Path) -> None:
    ini_path = tmp_path / "lars_dns.conf"
    ini_path.write_text("[reactor]\nreuse_port = true\n[dns]\nprocesses = 3\n")
    ini = IniFile.load(str(ini_path))
    config = DnsConfig.from_ini(ini)
    assert (config.processes, config.reactor.reuse_port) == (3, True)
    flagged = build_dns_config(parse("dns", "--processes", "5"), ini)
    assert flagged.processes == 5
    assert DnsConfig().processes == 1 and DnsConfig().reactor.reuse_port is False


@pytest.mark.parametrize("value", [0, 65, -1])
def test_processes_out_of_range(value: int) -> None:
    with pytest.raises(ConfigError, match="processes"):
        DnsConfig(processes=value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1/4", (1, 4)), ("0/2", (0, 2)), ("", None), ("x/2", None), ("1", None), ("-1/2", None)],
)
def test_a_child_knows_its_place_from_the_environment(
    value: str, expected: tuple[int, int] | None
) -> None:
    assert process_of({PROCESS_ENV: value}) == expected
    assert process_of({}) is None


def test_a_group_needs_a_process() -> None:
    with pytest.raises(ValueError):
        ProcessGroup(ChildSpec(argv=("dns",), port=1, metrics=None), 0)
