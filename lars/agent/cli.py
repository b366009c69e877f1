"""`lars agent`: run the LB agent from a Lars lars_lb_agent.conf file and flags.

With `--mode processes` this process supervises three children, one per shard (each
`lars agent --only-shard i` with its own route-service and reporter clients), forwards
SIGINT/SIGTERM to them and stops them all when one exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from types import FrameType
from typing import Any

from lars.agent.config import (
    DEFAULT_BASE_PORT,
    DEFAULT_DNS,
    DEFAULT_MAX_MODULES,
    DEFAULT_REPORT_INTERVAL,
    DEFAULT_REPORTER,
    DEFAULT_UDP_IP,
    SHARDS,
    AgentConfig,
    BalancerConfig,
    ShardMode,
    default_mode,
    parse_addresses,
)
from lars.agent.metrics import agent_metrics_server
from lars.agent.service import AgentService
from lars.config import IniFile, override
from lars.errors import ConfigError
from lars.obs.listen import MetricsConfig
from lars.reload import ReloadResult, SignalWaiter, reload_log_level, restart_only

__all__ = ["build_config", "register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "agent",
        help="per-host LB agent: get_host/report over UDP 8888-8890",
        description="Answer GetHostRequest, ReportRequest and API_GetRouteRequest on three "
        "UDP ports with Lars idle/overload balancing. Reads a Lars lars_lb_agent.conf "
        "([dnsserver], [reporter], [loadbalance], plus our [agent]); flags override it; "
        "with neither: route service 127.0.0.1:7778, reporter 127.0.0.1:7779.",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="Lars INI file")
    # Flags default to None (the file or the config's default applies); the help shows the
    # config's own defaults, so it cannot drift from the code.
    lb = BalancerConfig()
    parser.add_argument("--ip", help=f"UDP listen address (default {DEFAULT_UDP_IP})")
    parser.add_argument(
        "--base-port", type=int, help=f"first UDP port (default {DEFAULT_BASE_PORT})"
    )
    parser.add_argument(
        "--dns", metavar="H:P[,H:P]", help=f"route service address(es) (default {_hp(DEFAULT_DNS)})"
    )
    parser.add_argument(
        "--reporter",
        metavar="H:P[,H:P]",
        help=f"reporter address(es) (default {_hp(DEFAULT_REPORTER)})",
    )
    parser.add_argument("--caller", help="IPv4 reported as caller (default: primary address)")
    parser.add_argument(
        "--mode",
        choices=[m.value for m in ShardMode],
        help=f"shards on loops (default here {default_mode().value})",
    )
    parser.add_argument(
        "--max-modules", type=int, help=f"modules per shard (default {DEFAULT_MAX_MODULES})"
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        help=f"seconds between reports (default {DEFAULT_REPORT_INTERVAL:g})",
    )
    parser.add_argument("--cache", metavar="FILE", help="route snapshot file")
    parser.add_argument(
        "--registrations", metavar="FILE",
        help="registrations file ([register] path; default: the cache path + "
        "'.registrations', else ~/.local/state/lars/agent-<base port>.registrations.json)",
    )  # fmt: skip
    parser.add_argument(
        "--probe-num", type=int, help=f"[loadbalance] probe_num (default {lb.probe_num})"
    )
    parser.add_argument(
        "--update-timeout",
        type=float,
        help=f"[loadbalance] update_timeout (default {lb.update_timeout:g})",
    )
    parser.add_argument(
        "--metrics", metavar="ADDR:PORT|off",
        help="metrics/health listener ([metrics] listen; default 127.0.0.1:7783)",
    )  # fmt: skip
    parser.add_argument("--only-shard", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def _hp(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def build_config(args: argparse.Namespace) -> AgentConfig:
    config = AgentConfig.from_ini(IniFile.load(args.config))
    balancer: BalancerConfig = override(
        config.balancer, probe_num=args.probe_num, update_timeout=args.update_timeout
    )
    only = None if args.only_shard is None else (args.only_shard,)
    if args.registrations:
        config = replace(config, register=replace(config.register, path=args.registrations))
    return override(
        config,
        udp_ip=args.ip,
        base_port=args.base_port,
        dns_addresses=parse_addresses(args.dns) if args.dns else None,
        reporter_addresses=parse_addresses(args.reporter) if args.reporter else None,
        caller=args.caller,
        mode=ShardMode(args.mode) if args.mode else None,
        max_modules=args.max_modules,
        report_interval=args.report_interval,
        cache_path=args.cache,
        balancer=balancer,
        shards=only,
    )


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    return stop


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    given = getattr(args, "log_level_given", False)
    reload_log_level(IniFile.load(args.config), flag_given=given)
    if config.mode is ShardMode.PROCESSES:
        return _supervise(config, args)
    service = AgentService(config)
    listen = _metrics_config(args)

    def reload() -> ReloadResult:
        fresh = IniFile.load(args.config)
        result = service.reload(build_config(args))
        fresh_listen = _metrics_config(args)
        result += restart_only("[metrics] listen", listen.url or "off", fresh_listen.url or "off")
        return result + reload_log_level(fresh, flag_given=given)

    metrics = agent_metrics_server(service, listen)
    if metrics is not None:
        metrics.start()  # first: a busy metrics port fails before any UDP port is taken
    try:
        with SignalWaiter("agent", reload=reload, source=args.config) as waiter:
            service.threads.on_fatal(lambda failure: waiter.fail(failure.describe()))  # exit 1
            service.start()
            if metrics is not None:
                log.info("agent: metrics on %s/metrics", metrics.url)
            waiter.wait()
    finally:
        service.stop()
        if metrics is not None:
            metrics.stop()
    return 0


def _metrics_config(args: argparse.Namespace) -> MetricsConfig:
    return MetricsConfig.build("agent", IniFile.load(args.config), args.metrics, os.environ)


def _child_argv(
    argv: Sequence[str],
    config: AgentConfig,
    index: int,
    metrics: MetricsConfig,
    log_format: str = "text",
    log_level: str | None = None,
) -> list[str]:
    # --log-level only when the supervisor was given one: otherwise each child reads the
    # file's [log] level itself, at start and on SIGHUP (a flag would pin it).
    level = ["--log-level", log_level] if log_level else []
    out = [sys.executable, "-m", "lars", *level, "--log-format", log_format]
    out += ["agent", *argv, "--mode", ShardMode.ONE_LOOP.value, "--only-shard", str(index)]
    if config.cache_path:
        out += ["--cache", f"{config.cache_path}.{index}"]
    if metrics.listen is None:
        out += ["--metrics", "off"]
    else:  # one listener per process: the children take the ports after the supervisor's
        host, port = metrics.listen
        out += ["--metrics", f"{host}:{port + 1 + index if port else 0}"]
    return out


def _supervise(config: AgentConfig, args: argparse.Namespace) -> int:
    """Run one child per shard; stop them all on a signal or when one exits."""
    if config.base_port == 0:
        raise ConfigError("--mode processes needs a fixed base port")
    argv = _agent_argv(args)
    stop = _wait_for_signal()
    children: list[subprocess.Popen[bytes]] = []
    hup = threading.Event()

    def forward_hup(_signum: int, _frame: FrameType | None) -> None:
        for child in children:  # each shard process reloads its own settings
            if child.poll() is None:
                child.send_signal(signal.SIGHUP)
        hup.set()  # and the supervisor names what only it reads (below)

    signal.signal(signal.SIGHUP, forward_hup)
    metrics = _metrics_config(args)
    log_format = getattr(args, "log_format", "text")
    level = args.log_level if getattr(args, "log_level_given", False) else None
    children += [
        subprocess.Popen(_child_argv(argv, config, i, metrics, log_format, level))
        for i in range(SHARDS)
    ]
    log.info("agent: shards in processes %s", ",".join(str(c.pid) for c in children))
    code = 0
    try:
        while not stop.wait(0.5):
            if hup.is_set():
                hup.clear()
                _supervisor_reload(args, metrics)
            exited = [c for c in children if c.poll() is not None]
            if exited:
                log.error(
                    "agent: shard process %d exited (%s); stopping",
                    exited[0].pid,
                    exited[0].returncode,
                )
                code = 1
                break
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return code


def _supervisor_reload(args: argparse.Namespace, metrics: MetricsConfig) -> None:
    """SIGHUP in --mode processes: the children reload their own settings (and log a
    broken file); the children's listeners come from the supervisor's `[metrics] listen`,
    so a change of it is named here as waiting for a restart."""
    try:
        fresh = _metrics_config(args)
    except ConfigError:
        return  # each child logs why the file was not reloaded
    result = restart_only("[metrics] listen", metrics.url or "off", fresh.url or "off")
    if result.restart:
        log.warning(
            "agent: SIGHUP: changed in %s but kept until a restart: %s",
            args.config or "no -c file",
            ", ".join(map(str, result.restart)),
        )


def _agent_argv(args: argparse.Namespace) -> list[str]:
    """The agent flags given, minus --mode/--cache (the supervisor sets them per child)."""
    flags = {
        "--config": args.config,
        "--ip": args.ip,
        "--base-port": args.base_port,
        "--dns": args.dns,
        "--reporter": args.reporter,
        "--caller": args.caller,
        "--max-modules": args.max_modules,
        "--report-interval": args.report_interval,
        "--probe-num": args.probe_num,
        "--update-timeout": args.update_timeout,
        "--registrations": args.registrations,
    }
    out: list[str] = []
    for flag, value in flags.items():
        if value is not None:
            out += [flag, str(value)]
    return out
