"""`lars up [--demo] [--db URL]`: route service, reporter, agent and console in one process.

For a newcomer and for tests: one command on the embedded SQLite database (tables created
if missing), listening on loopback. `--demo` seeds a few modules, (1, 1) among them,
through RouteAdmin, so `lars gethost 1 1` answers at once. Ctrl-C or SIGTERM stops the
console, the agent, then the reporter (flushing its rows), then the route service.

The console's password comes from $LARS_CONSOLE_PASSWORD; without it a random one is
generated and printed (there is no built-in default password). --no-console leaves it out.

Ports: the defaults of spec section 4; 0 for --dns-port/--reporter-port/--agent-port
picks free ones (the agent then has three unrelated ports). The ready line names them all.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy
from sqlalchemy.engine import make_url

from lars.agent.config import AgentConfig
from lars.agent.service import AgentService
from lars.config import DEFAULT_DB_URL, IniFile
from lars.console.app import build_console
from lars.console.config import DEFAULT_PORT as DEFAULT_CONSOLE_PORT
from lars.console.config import PASSWORD_ENV, check_password, generate_password
from lars.console.server import ConsoleServer
from lars.dbengine import ensure_database, init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.errors import NetworkError
from lars.obs.listen import DEFAULT_PORTS, MetricsConfig
from lars.obs.server import MetricsServer
from lars.reactor import ReactorConfig
from lars.reload import SignalWaiter
from lars.reporter.service import ReporterConfig, ReporterService
from lars.routes.admin import RouteAdmin
from lars.routes.demo import DEMO_ROUTES
from lars.up.metrics import up_metrics_server

__all__ = ["UpConfig", "UpStack", "register", "seed_demo"]

log = logging.getLogger(__name__)

# Network: one machine, so everything listens on loopback unless told otherwise.
DEFAULT_IP = "127.0.0.1"
DEFAULT_DNS_PORT = 7778
DEFAULT_REPORTER_PORT = 7779
DEFAULT_AGENT_PORT = 8888


@dataclass(frozen=True, slots=True, kw_only=True)
class UpConfig:
    # Store
    db_url: str = DEFAULT_DB_URL
    demo: bool = False
    # Network
    ip: str = DEFAULT_IP
    dns_port: int = DEFAULT_DNS_PORT
    reporter_port: int = DEFAULT_REPORTER_PORT
    agent_port: int = DEFAULT_AGENT_PORT  # 0: three ephemeral ports
    console_port: int | None = DEFAULT_CONSOLE_PORT  # None: no console
    console_password: str = ""
    metrics: tuple[str, int] | None = (DEFAULT_IP, DEFAULT_PORTS["up"])  # None: no listener


def seed_demo(engine: sqlalchemy.Engine) -> int:
    """Add the demo hosts that are missing (idempotent); returns how many were added."""
    admin = RouteAdmin(engine)
    present = {(e.modid, e.cmdid, e.ip, e.port) for e in admin.list_routes()}
    added = 0
    for modid, cmdid, ip, port in DEMO_ROUTES:
        if (modid, cmdid, ip, port) not in present:
            admin.add_host(modid, cmdid, ip, port)
            added += 1
    return added


class UpStack:
    """Owns the engine and the three services; `start()` in order, `stop()` in reverse."""

    def __init__(self, config: UpConfig) -> None:
        self.config = config
        self.engine = make_engine(config.db_url)
        self.dns: DnsService | None = None
        self.reporter: ReporterService | None = None
        self.agent: AgentService | None = None
        self.console: ConsoleServer | None = None
        self.metrics: MetricsServer | None = None

    def start(self) -> None:
        cfg = self.config
        stage = "database"
        try:
            if ensure_database(cfg.db_url):  # a new MySQL database, as `lars initdb` does
                log.info("created the database %s", _safe_url(cfg.db_url))
            init_schema(self.engine)
            if cfg.demo:
                added = seed_demo(self.engine)
                log.info("demo: %d host(s) added to the route table", added)
            self.dns = DnsService(
                DnsConfig(db_url=cfg.db_url, reactor=ReactorConfig(ip=cfg.ip, port=cfg.dns_port)),
                engine=self.engine,
            )
            stage = "route service"
            self.dns.start()
            stage = "reporter"
            self.reporter = ReporterService(
                ReporterConfig(
                    db_url=cfg.db_url, reactor=ReactorConfig(ip=cfg.ip, port=cfg.reporter_port)
                )
            )
            self.reporter.start()
            stage = "agent"
            self.agent = AgentService(
                AgentConfig(
                    udp_ip=cfg.ip,
                    base_port=cfg.agent_port,
                    dns_addresses=((cfg.ip, self.dns.port),),
                    reporter_addresses=((cfg.ip, self.reporter.port),),
                )
            )
            self.agent.start()
            if cfg.console_port is not None:
                stage = "console"
                check_password(cfg.console_password)
                app = build_console(self.engine, cfg.console_password)
                self.console = ConsoleServer(app, cfg.ip, cfg.console_port)
                self.console.start()
                counters = app.state.console.counters
            else:
                counters = None
            stage = "metrics"
            self.metrics = up_metrics_server(
                MetricsConfig(listen=cfg.metrics), self.dns, self.reporter, self.agent, counters
            )
            if self.metrics is not None:
                self.metrics.start()
        except OSError as exc:
            self.stop()
            port = {
                "route service": cfg.dns_port,
                "reporter": cfg.reporter_port,
                "console": cfg.console_port,
            }.get(stage)
            where = cfg.ip if port is None else f"{cfg.ip}:{port}"
            cause = exc.strerror or str(exc)
            raise NetworkError(f"{stage}: cannot listen on {where}: {cause}") from exc
        except NetworkError as exc:  # the agent names its own UDP port
            self.stop()
            raise NetworkError(f"{stage}: {exc}") from exc
        except BaseException:
            self.stop()
            raise

    def request_stop(self) -> None:
        """Make a start() blocked on the database give up; safe in a signal handler."""
        if self.dns is not None:
            self.dns.request_stop()

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        if self.console is not None:
            self.console.stop()
        if self.agent is not None:
            self.agent.stop()
        if self.reporter is not None:
            self.reporter.stop()
        if self.dns is not None:
            self.dns.stop()
        self.engine.dispose()

    def client_flags(self) -> str:
        """The flags that point `lars gethost` at this stack's agent ("" for the defaults)."""
        assert self.agent is not None
        ports = self.agent.ports
        flags = []
        if self.config.ip != DEFAULT_IP:
            flags.append(f"--agent-ip {self.config.ip}")
        if ports != tuple(range(ports[0], ports[0] + len(ports))):
            flags.append("--agent-ports " + ",".join(map(str, ports)))
        elif ports[0] != DEFAULT_AGENT_PORT:
            flags.append(f"--agent-port {ports[0]}")
        return "".join(" " + flag for flag in flags)

    def describe(self) -> str:
        assert self.dns is not None and self.reporter is not None and self.agent is not None
        ip = self.config.ip
        ports = ",".join(map(str, self.agent.ports))
        console = f", console {self.console.url}" if self.console is not None else ""
        metrics = f", metrics {self.metrics.url}/metrics" if self.metrics is not None else ""
        return (
            f"lars up: route service {ip}:{self.dns.port}, reporter {ip}:{self.reporter.port}, "
            f"agent UDP {ip} ports {ports}{console}{metrics}; "
            f"database {_safe_url(self.config.db_url)}"
        )


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("up", help="route service + reporter + agent in one process")
    p.add_argument("--demo", action="store_true", help="seed demo modules, 1:1 among them")
    p.add_argument(
        "--db", default=DEFAULT_DB_URL, metavar="URL",
        help="database URL (default %(default)s; mysql+pymysql://user@host/lars_dns works too)",
    )  # fmt: skip
    p.add_argument("--ip", default=DEFAULT_IP, help="listen address (default %(default)s)")
    p.add_argument(
        "--dns-port", type=int, default=DEFAULT_DNS_PORT, help="route service TCP port (0: any)"
    )
    p.add_argument(
        "--reporter-port",
        type=int,
        default=DEFAULT_REPORTER_PORT,
        help="reporter TCP port (0: any)",
    )
    p.add_argument(
        "--agent-port", type=int, default=DEFAULT_AGENT_PORT,
        help="agent base UDP port, serving base..base+2 (0: three free ports)",
    )  # fmt: skip
    p.add_argument(
        "--console-port", type=int, default=DEFAULT_CONSOLE_PORT,
        help="admin console HTTP port (default %(default)s; 0: any)",
    )  # fmt: skip
    p.add_argument("--no-console", action="store_true", help="do not start the admin console")
    p.add_argument(
        "--metrics", metavar="ADDR:PORT|off",
        help="one metrics/health listener for the whole process (default 127.0.0.1:7781)",
    )  # fmt: skip
    p.set_defaults(func=_up)


def _up(args: argparse.Namespace) -> int:
    password = os.environ.get(PASSWORD_ENV, "")
    generated = not password and not args.no_console
    if generated:
        password = generate_password()
    config = UpConfig(
        db_url=args.db,
        demo=args.demo,
        ip=args.ip,
        dns_port=args.dns_port,
        reporter_port=args.reporter_port,
        agent_port=args.agent_port,
        console_port=None if args.no_console else args.console_port,
        console_password=password,
        metrics=MetricsConfig.build("up", IniFile.empty(), args.metrics, os.environ).listen,
    )
    stack = UpStack(config)
    # SIGINT/SIGTERM stop; SIGHUP is logged (lars up has no -c file) and never kills it.
    with SignalWaiter("up", on_stop=stack.request_stop) as waiter:
        stack.start()
        for part in (stack.dns, stack.reporter, stack.agent, stack.console):
            if part is not None:  # a dead thread of any part stops `lars up` (exit 1)
                part.threads.on_fatal(lambda failure: waiter.fail(failure.describe()))
        try:
            print(stack.describe(), flush=True)
            if generated:
                print(
                    f"console login password (generated; set ${PASSWORD_ENV} to choose one): "
                    f"{password}",
                    flush=True,
                )
            if config.demo:
                modules = sorted({(m, c) for m, c, _, _ in DEMO_ROUTES})
                listed = ", ".join(f"{m}:{c}" for m, c in modules)
                print(
                    f"demo modules {listed}; try: lars gethost 1 1{stack.client_flags()}",
                    flush=True,
                )
            waiter.wait()
            print("lars up: stopping", flush=True)
        finally:
            stack.stop()
    print("lars up: stopped", flush=True)
    return 0
