"""DnsConfig and DnsService: the route service ("dns") put together.

Built in main (or by `lars up` and tests): `DnsService(config).start()` loads the route
table first and only then listens, so an agent never gets empty host lists from a service
that has not read the database yet; `stop()` stops polling, drains the connections and
releases the database engines. A Lars lars_dns.conf loads unchanged: [reactor] ip, port,
threadNum, maxConn and [mysql] db_*; our own settings live in an optional [dns] section.

Two engines on MySQL: the reloads, deletes and audit writes use the long default
timeouts (a large table takes a while); the poll asked every `poll_interval` has its own
engine with short ones (`poll_timeout`, 1 s by default), so a frozen database is noticed
in about a second.

Every write of the route service (RouteChange deletes, RouteAudit rows, the guard state
of lars/dns/guardstore.py, registrations and leases) goes through ONE engine,
`self._write_engine`: the reads' engine, or `[dns] write_db` (`--write-db`) when the reads
come from a replica or a SELECT-only user (issue 22). lars.dns.writeaccess asks it once,
at the first load, whether it may be written; when not, nothing is written (no failed
writes): the guard state is kept in the local snapshot file (`[dns] snapshot`) alone,
registrations are not advertised, no audit row is written, RouteChange is not cleaned.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlalchemy

from lars.config import DEFAULT_DB_URL, IniFile, check_ranges, db_url_from_ini, ranged
from lars.dbengine import init_schema, is_sqlite, make_engine, safe_url
from lars.dns.guard import (
    DEFAULT_MAX_DROP_RATIO,
    DEFAULT_MIN_DROP_HOSTS,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    GuardPolicy,
    Hold,
)
from lars.dns.guardstore import GuardStateStore
from lars.dns.leases import DEFAULT_LEASE
from lars.dns.poller import CLEAN_MODES, Poller
from lars.dns.pollthread import DEFAULT_RELOAD_DEADLINE, PollerStats, PollerThread
from lars.dns.registry import Registry, RegistryStats
from lars.dns.regserver import SyncHandler
from lars.dns.regstore import InstanceStore
from lars.dns.server import RouteServer, SubscriptionStats
from lars.dns.service_audit import ServiceAudit
from lars.dns.store import RouteStore
from lars.dns.subscriptions import DEFAULT_MAX_PER_CONN
from lars.dns.table import RouteTable
from lars.dns.writeaccess import WriteAccess
from lars.errors import ConfigError, StoreUnavailable
from lars.obs.hist import BucketSnapshot
from lars.protocol import MsgId
from lars.reactor import ReactorConfig, ServerStats, TcpServer
from lars.reactor.backoff import backoff
from lars.reload import ReloadResult, diff, split
from lars.threads import ThreadFailure, ThreadHealth

__all__ = ["DEFAULT_PORT", "DnsConfig", "DnsService", "DnsStats"]

log = logging.getLogger(__name__)

# Network
DEFAULT_PORT = 7778
# What reload() (SIGHUP) applies to a running service; every other change needs a restart.
RELOADABLE = frozenset(
    {"poll_interval", "reload_interval", "max_drop_ratio", "min_drop_hosts", "guard_window"}
)
# The guard snapshot file `lars dns` keeps by default (DnsConfig() itself keeps none).
DEFAULT_SNAPSHOT = "lars_dns.guard"
# Timeouts
DEFAULT_POLL_INTERVAL = 0.1
DEFAULT_RELOAD_INTERVAL = 10.0
DEFAULT_RETRY_INITIAL = 0.1
DEFAULT_RETRY_MAX = 0.5  # an edit made as an outage ends must not wait 10 s
# Limits
MAX_PROCESSES = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsConfig:
    """Settings of one route service."""

    # Store
    db_url: str = DEFAULT_DB_URL
    create_schema: bool = False  # also create missing tables on MySQL (always on SQLite)
    # Network
    reactor: ReactorConfig = field(default_factory=lambda: ReactorConfig(port=DEFAULT_PORT))
    # Timeouts (ranges: lars.config.ranged, checked on every path by check_ranges)
    poll_interval: float = ranged(
        DEFAULT_POLL_INTERVAL, 0.001, 3600.0, name="[dns] poll_interval", unit="s"
    )
    reload_interval: float = ranged(  # a full reload below 1 s would reload on every poll
        DEFAULT_RELOAD_INTERVAL, 1.0, 86400.0, name="[dns] reload_interval", unit="s"
    )
    retry_initial: float = ranged(
        DEFAULT_RETRY_INITIAL, 0.0, 60.0, name="[dns] retry_initial", unit="s"
    )
    retry_max: float = ranged(DEFAULT_RETRY_MAX, 0.001, 3600.0, name="[dns] retry_max", unit="s")
    reload_deadline: float = ranged(  # a reload running longer: an outage
        DEFAULT_RELOAD_DEADLINE, 0.1, 3600.0, name="[dns] reload_deadline", unit="s"
    )
    # Limits
    max_subscriptions: int = ranged(  # modules per connection
        DEFAULT_MAX_PER_CONN, 1, 10_000_000, name="[dns] max_subscriptions"
    )
    # Guard (lars.dns.guard): 1.0 turns it off
    max_drop_ratio: float = ranged(DEFAULT_MAX_DROP_RATIO, 0.0, 1.0, name="[dns] max_drop_ratio")
    min_drop_hosts: int = ranged(DEFAULT_MIN_DROP_HOSTS, 1, 10_000_000, name="[dns] min_drop_hosts")
    guard_window: float = ranged(  # 0 = the identity check only
        DEFAULT_WINDOW, 1.0, MAX_WINDOW, name="[dns] guard_window", unit="s", zero_ok=True
    )
    # The guard's local snapshot file ("": none); `lars dns` defaults to DEFAULT_SNAPSHOT
    snapshot: str = ""
    # Registrations (issue 20, lars.dns.registry): accept agents' InstanceSync and write
    # RouteInstance (false: a route service that must not write, e.g. on a replica); an
    # instance whose agent renewed with no route service for `lease` seconds expires
    registrations: bool = True
    lease: float = ranged(DEFAULT_LEASE, 3.0, 3600.0, name="[dns] lease", unit="s")
    # Scale out (issue 22): `db_url` may be a replica or a SELECT-only user; every write
    # of this service goes to `write_db` ("": to db_url), restart-only. clean_changes:
    # delete the RouteChange rows pushed (auto: when this service may write)
    write_db: str = ""
    clean_changes: str = "auto"
    # `lars dns --processes N` (lars.dns.processes): N route services sharing the port,
    # restart-only; DnsService itself is always one process
    processes: int = ranged(1, 1, MAX_PROCESSES, name="[dns] processes")

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.retry_max < self.retry_initial:
            raise ConfigError("[dns] retry_max must be >= retry_initial")
        if self.clean_changes not in CLEAN_MODES:
            raise ConfigError(
                f"[dns] clean_changes = {self.clean_changes!r}: expected one of "
                f"{', '.join(CLEAN_MODES)}"
            )
        self.guard_policy  # noqa: B018 (validates the guard's settings together)

    @property
    def guard_policy(self) -> GuardPolicy:
        return GuardPolicy(
            max_drop_ratio=self.max_drop_ratio,
            min_drop_hosts=self.min_drop_hosts,
            window=self.guard_window,
        )

    @property
    def poll_timeout(self) -> float:
        """Connect/read/write timeout of the poll engine, and the poll's deadline:
        3 poll intervals, at least 1 s (a loaded server answers slowly), at most 5 s."""
        return min(max(3 * self.poll_interval, 1.0), 5.0)

    @classmethod
    def from_ini(cls, ini: IniFile) -> DnsConfig:
        return cls(
            db_url=db_url_from_ini(ini),
            create_schema=ini.get("dns", "create_schema", False),
            reactor=ReactorConfig.from_ini(ini, default_port=DEFAULT_PORT),
            poll_interval=ini.get("dns", "poll_interval", DEFAULT_POLL_INTERVAL),
            reload_interval=ini.get("dns", "reload_interval", DEFAULT_RELOAD_INTERVAL),
            retry_initial=ini.get("dns", "retry_initial", DEFAULT_RETRY_INITIAL),
            retry_max=ini.get("dns", "retry_max", DEFAULT_RETRY_MAX),
            reload_deadline=ini.get("dns", "reload_deadline", DEFAULT_RELOAD_DEADLINE),
            max_subscriptions=ini.get("dns", "max_subscriptions", DEFAULT_MAX_PER_CONN),
            max_drop_ratio=ini.get("dns", "max_drop_ratio", DEFAULT_MAX_DROP_RATIO),
            min_drop_hosts=ini.get("dns", "min_drop_hosts", DEFAULT_MIN_DROP_HOSTS),
            guard_window=ini.get("dns", "guard_window", DEFAULT_WINDOW),
            snapshot=snapshot_setting(ini.get("dns", "snapshot", DEFAULT_SNAPSHOT)),
            registrations=ini.get("dns", "registrations", True),
            lease=ini.get("dns", "lease", DEFAULT_LEASE),
            write_db=str(ini.get("dns", "write_db", "")).strip(),
            clean_changes=str(ini.get("dns", "clean_changes", "auto")).strip().lower(),
            processes=ini.get("dns", "processes", 1),
        )


def snapshot_setting(value: str) -> str:
    """`[dns] snapshot`: a path, or off/none/empty for no file."""
    text = str(value).strip()
    return "" if text.lower() in ("", "off", "none", "no") else text


@dataclass(frozen=True, slots=True)
class DnsStats:
    version: int
    modules: int
    hosts: int
    truncated_modules: int
    invalid_rows: int  # RouteData rows left out of the table: not encodable on the wire
    pushes_sent: int
    held: Hold | None  # a loaded table the guard holds (not served), None when none
    poller: PollerStats
    subscriptions: SubscriptionStats
    server: ServerStats | None  # None until listening
    push_rounds: int = 0  # publishes that fanned out to the workers
    push_seconds: BucketSnapshot | None = None  # duration of each fan-out
    loaded: bool = False  # a table was loaded from the database (start() got past it)
    drained_hosts: int = 0  # RouteData rows left out: drained (RouteHostMeta.enabled = 0)
    registry: RegistryStats | None = None  # registrations (lars.dns.registry)
    registered_hosts: int = 0  # hosts served only because they registered
    instances_passing: int = 0  # RouteInstance rows at the last load, by check state
    instances_failing: int = 0
    served_since: float = 0.0  # unix time the served table began being served
    baseline_hosts: int = 0  # the guard window's baseline at the last load
    state_saves: int = 0  # guard states saved (lars/dns/guardstore.py)
    state_db_failures: int = 0  # ... that the database refused
    state_file_failures: int = 0  # ... that the snapshot file refused
    restored_state: bool = False  # the first table was judged against a saved state
    threads: tuple[ThreadFailure, ...] = ()  # failed threads: dead or restarted (lars.threads)
    # issue 22: may this service write (writable, read-only, unknown: not asked yet),
    # through a separate --write-db, why not, and RouteChange rows it failed to clean
    writes: str = "unknown"
    write_db: bool = False
    writes_reason: str = ""
    cleans: bool = False
    change_delete_failures: int = 0


class DnsService:
    """The route service. `start()` returns once listening (after the first load)."""

    def __init__(self, config: DnsConfig, *, engine: sqlalchemy.Engine | None = None) -> None:
        self.config = config
        self._own_engine = engine is None
        self._engine = engine if engine is not None else make_engine(config.db_url)
        self._poll_engine = self._engine
        if not is_sqlite(self._engine):  # one round trip per poll: no pre-ping, no reset
            timeout = config.poll_timeout
            self._poll_engine = make_engine(
                config.db_url,
                io_timeout=timeout,
                connect_timeout=timeout,
                pool_pre_ping=False,
                pool_reset_on_return=None,
                isolation_level="AUTOCOMMIT",
                skip_autocommit_rollback=True,  # no ROLLBACK round trip per poll
                pool_size=1,
            )
        # Every write of this service goes through this engine (see the module docstring),
        # and only once `self.access` found that it may write.
        self._write_engine = make_engine(config.write_db) if config.write_db else self._engine
        self.access = WriteAccess(
            self._write_engine,
            separate=self._write_engine is not self._engine,
            where=safe_url(config.write_db or config.db_url),
            snapshot=config.snapshot,
        )
        may_write = self._may_write
        self._guard_state = GuardStateStore(
            self._write_engine,
            Path(config.snapshot) if config.snapshot else None,
            db=safe_url(config.db_url),
            read_engine=self._engine,
            writable=may_write,
        )
        self._routes = RouteServer(RouteTable.empty(), max_subscriptions=config.max_subscriptions)
        # Registrations are written through the same write engine (lars.dns.registry).
        self._registry = Registry(
            InstanceStore(self._write_engine),
            lease=config.lease,
            writable=config.registrations,
            may_write=may_write,
            on_change=self._nudge_poller,
        )
        self._poller = Poller(
            RouteStore(
                self._engine,
                poll_engine=self._poll_engine,
                write_engine=self._write_engine,
                advertise=self._advertise,
            ),
            self._routes.publish,
            reload_interval=config.reload_interval,
            policy=config.guard_policy,
            audit=ServiceAudit(self._engine, write_engine=self._write_engine, writable=may_write),
            state=self._guard_state,
            writer=f"dns {socket.gethostname()}:{config.reactor.port} pid {os.getpid()}",
            db=self._guard_state.db,
            access=self.access,
            clean=config.clean_changes,
        )
        # the daemon's threads report failures here: readiness names a dead one
        self.threads = ThreadHealth()
        self._thread = PollerThread(
            self._poller,
            health=self.threads,
            interval=config.poll_interval,
            poll_deadline=config.poll_timeout,
            reload_deadline=config.reload_deadline,
            backoff_factory=functools.partial(backoff, config.retry_initial, config.retry_max),
        )
        self._server: TcpServer | None = None  # built at start: it owns loop threads
        self._lock = threading.Lock()
        self._state = "new"

    @property
    def port(self) -> int:
        """The listening port (0 until start() has returned)."""
        return self._server.port if self._server is not None else 0

    @property
    def table(self) -> RouteTable:
        return self._routes.table

    def start(self) -> None:
        """Load the table (retrying while the database is down), then listen and poll.

        Raises StoreUnavailable if stop() is called before the first load succeeded.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"DnsService cannot start from state {self._state}")
            self._state = "loading"
        # a write: through the write engine (the primary, with --write-db); an embedded
        # SQLite file is always given its tables (a read-only replica never is)
        schema = [
            e
            for e in dict.fromkeys((self._write_engine, self._engine))
            if is_sqlite(e) or (self.config.create_schema and e is self._write_engine)
        ]
        for target in schema:
            try:
                init_schema(target)
            except (sqlalchemy.exc.SQLAlchemyError, StoreUnavailable) as exc:  # init_schema
                log.warning("dns: cannot create the schema yet: %s", exc)
        if not self._thread.first_load():
            raise StoreUnavailable("route service stopped before the first route load")
        table = self._routes.table
        log.info(
            "dns: loaded version %d: %d modules, %d hosts",
            table.version,
            len(table),
            table.host_count,
        )
        with self._lock:
            if self._state != "loading":
                raise StoreUnavailable("route service stopped during start")
            router = self._routes.router()
            router.register(int(MsgId.INSTANCE_SYNC), SyncHandler(self._registry).on_sync)
            self._server = TcpServer(
                self.config.reactor,
                router,
                name="dns",
                on_connect=self._routes.on_connect,
                on_close=self._routes.on_close,
                health=self.threads,
            )
            self._routes.attach(self._server)
            self._server.start()
            self._thread.start()
            self._registry.start(self.threads)
            self._state = "running"

    def _advertise(self) -> bool:
        """Do replies advertise registrations? Asked by each table load (poller thread),
        which asks the write database first the first time (lars.dns.writeaccess)."""
        if not self.access.known:
            self.access.probe()
        return self._registry.writable

    def _may_write(self) -> bool:
        """May this service write (lars.dns.writeaccess)? Any thread."""
        return self.access.writable

    def _nudge_poller(self) -> None:
        """A registration change was written here: poll at once (registry thread)."""
        self._thread.nudge()

    def request_stop(self) -> None:
        """Make a pending start() give up; safe in a signal handler (sets an event)."""
        self._thread.request_stop()

    def reload(self, new: DnsConfig) -> ReloadResult:
        """Apply the RELOADABLE settings of `new` (SIGHUP): the poll and reload intervals
        and the guard (max_drop_ratio, min_drop_hosts), from the next poll on; the poll's
        own timeouts stay those of the start. Returns what was applied and what changed
        but needs a restart (the listener, the database, limits...)."""
        result = split(diff(self.config, new), RELOADABLE.__contains__)
        if result.applied:
            cfg = self.config = replace(self.config, **result.values())
            self._poller.retune(reload_interval=cfg.reload_interval, policy=cfg.guard_policy)
            self._thread.set_interval(cfg.poll_interval)
        return result

    def stop(self) -> None:
        """Stop polling and serving; safe from any thread, and twice."""
        with self._lock:
            state, self._state = self._state, "stopped"
        self._thread.stop()
        if state == "running" and self._server is not None:
            self._server.stop()
        self._registry.stop()
        if self._poll_engine is not self._engine:
            self._poll_engine.dispose()
        if self._write_engine is not self._engine:
            self._write_engine.dispose()
        if self._own_engine:
            self._engine.dispose()

    def stats(self) -> DnsStats:
        table = self._routes.table
        poller = self._thread.stats()
        return DnsStats(
            version=table.version,
            modules=len(table),
            hosts=table.host_count,
            truncated_modules=self._routes.truncated_modules,
            invalid_rows=table.invalid_rows,
            pushes_sent=self._routes.pushes_sent,
            held=poller.held,
            poller=poller,
            subscriptions=self._routes.subscription_stats(),
            server=self._server.stats() if self._server is not None else None,
            push_rounds=self._routes.push_rounds,
            push_seconds=self._routes.push_seconds.snapshot(),
            loaded=self._poller.table is not None,
            drained_hosts=table.drained,
            registry=self._registry.stats(),
            registered_hosts=len(table.registered),
            instances_passing=table.instance_states[0],
            instances_failing=table.instance_states[1],
            served_since=self._poller.served_since,
            baseline_hosts=self._poller.baseline_hosts,
            state_saves=self._guard_state.saves,
            state_db_failures=self._guard_state.db_failures,
            state_file_failures=self._guard_state.file_failures,
            restored_state=self._poller.restored_state,
            threads=self.threads.failures(),
            writes=self.access.describe(),
            write_db=self.access.separate,
            writes_reason=self.access.reason,
            cleans=self._poller.cleans,
            change_delete_failures=self._poller.change_delete_failures,
        )
