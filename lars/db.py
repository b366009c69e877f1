"""The lars_dns schema (spec section 5) as SQLAlchemy Core tables: one place for it.

Column names and types follow the Lars MySQL schema exactly, so DBA scripts and the
original tools keep working; on SQLite the unsigned integers become plain INTEGER.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

__all__ = [
    "LARS_ONLY_TABLES",
    "cmdid_config",
    "lars_account",
    "metadata",
    "modid_config",
    "route_audit",
    "route_change",
    "route_data",
    "route_guard_state",
    "route_host_meta",
    "route_instance",
    "route_instance_gone",
    "route_instance_mark",
    "route_version",
    "server_call_status",
]

# Unsigned on MySQL/MariaDB, plain integers elsewhere.
UInt = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb")
UBigInt = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
# SQLite only autoincrements an INTEGER PRIMARY KEY.
UIntId = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb")

metadata = MetaData()

route_data = Table(
    "RouteData",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("modid", UInt, nullable=False),
    Column("cmdid", UInt, nullable=False),
    Column("serverip", UInt, nullable=False),
    Column("serverport", UInt, nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

route_version = Table(
    "RouteVersion",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("version", UInt, nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

route_change = Table(
    "RouteChange",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("modid", UInt, nullable=False),
    Column("cmdid", UInt, nullable=False),
    Column("version", UBigInt, nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

server_call_status = Table(
    "ServerCallStatus",
    metadata,
    Column("modid", Integer, nullable=False),
    Column("cmdid", Integer, nullable=False),
    Column("ip", UInt, nullable=False),
    Column("port", UInt, nullable=False),
    Column("caller", UInt, nullable=False),
    Column("succ_cnt", Integer, nullable=False),
    Column("err_cnt", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("overload", CHAR(1), nullable=False),
    PrimaryKeyConstraint("modid", "cmdid", "ip", "port", "caller"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

modid_config = Table(
    "ModIDConfig",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("modid", UInt, nullable=False),
    Column("content", CHAR(255), nullable=False, default=""),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

cmdid_config = Table(
    "CmdIDConfig",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("cmdid", UInt, nullable=False),
    Column("content", CHAR(255), nullable=False, default=""),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)


# Tables of ours that the original Lars programs never read. A database made by the
# original's SQL lacks them; every reader of them works (logged once) without them.

route_audit = Table(
    "RouteAudit",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),  # unix seconds
    Column("actor", String(128), nullable=False),  # console user, cli:<os user>, sql, dns
    Column("action", String(32), nullable=False),  # add, del, replace, del-module, hold, ...
    Column("modid", UInt, nullable=False, default=0),
    Column("cmdid", UInt, nullable=False, default=0),
    Column("serverip", UInt, nullable=False, default=0),
    Column("serverport", UInt, nullable=False, default=0),
    Column("version", UBigInt, nullable=False, default=0),
    Column("detail", String(1024), nullable=False, default=""),
    Index("RouteAudit_module", "modid", "cmdid", "id"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

route_host_meta = Table(
    "RouteHostMeta",
    metadata,
    Column("modid", UInt, nullable=False),
    Column("cmdid", UInt, nullable=False),
    Column("serverip", UInt, nullable=False),
    Column("serverport", UInt, nullable=False),
    Column("weight", UInt, nullable=False, default=1),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("note", String(255), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False, default=0),  # unix seconds
    Column("updated_by", String(128), nullable=False, default=""),
    PrimaryKeyConstraint("modid", "cmdid", "serverip", "serverport"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Self-registered instances (lars/dns/registry.py; issue 20). One row per (module, host,
# owning agent): two agents registering the same endpoint hold two rows and the host is
# served once while either says it passes; neither can take the other's registration
# away. `check_kind` is the check as registered ("tcp", "http://HOST:PORT/PATH",
# "ttl:SECONDS"); `passing` the agent's verdict; times are unix seconds: `since` when the
# state last changed, `last_seen` the last lease renewal through any route service.
route_instance = Table(
    "RouteInstance",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("modid", UInt, nullable=False),
    Column("cmdid", UInt, nullable=False),
    Column("serverip", UInt, nullable=False),
    Column("serverport", UInt, nullable=False),
    Column("agent", String(64), nullable=False),
    Column("check_kind", String(512), nullable=False, default="tcp"),
    Column("passing", Boolean, nullable=False, default=True),
    Column("registered_at", BigInteger, nullable=False, default=0),
    Column("since", BigInteger, nullable=False, default=0),
    Column("last_seen", BigInteger, nullable=False, default=0),
    # the RouteInstanceMark value of the write that inserted or last changed the row: a
    # route service loads only the rows changed since its last load
    Column("changed", UBigInt, nullable=False, default=0),
    Index("RouteInstance_host", "modid", "cmdid", "serverip", "serverport", "agent", unique=True),
    Index("RouteInstance_agent", "agent"),
    Index("RouteInstance_seen", "last_seen"),
    Index("RouteInstance_changed", "changed"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# One row (id 1): `mark` grows with every registration change (register, deregister,
# expiry, check state), never with a plain lease renewal. Every route service's poll
# reads it beside RouteVersion, so a change made through one route service is loaded by
# all of them within one poll; RouteVersion and RouteChange stay the original's.
route_instance_mark = Table(
    "RouteInstanceMark",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("mark", UBigInt, nullable=False, default=0),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Console accounts and API tokens (lars/accounts/): one namespace of names, so an actor in
# RouteAudit is never ambiguous. `secret` is "scrypt$..." (a user's password hash) or
# "sha256$<hex>" (a token's digest), never the plain text; tokens are found by it.
lars_account = Table(
    "LarsAccount",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # user | token
    Column("role", String(8), nullable=False),  # viewer | editor | admin
    Column("secret", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False, default=0),  # unix seconds
    Column("created_by", String(128), nullable=False, default=""),
    Index("LarsAccount_secret", "secret"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# The route services' guard state (lars/routes/guardstate.py): the table they serve, the
# window baseline and the hold, so that a restarted route service (or another one of the
# same database) never serves less than the last good table. One row (id 1); the
# columns besides `state` repeat its headline for `lars route status` and the console.
GuardBlob = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")

route_guard_state = Table(
    "RouteGuardState",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=False),
    Column("saved_at", BigInteger, nullable=False),  # unix milliseconds
    Column("writer", String(128), nullable=False, default=""),  # which route service
    Column("served_version", UBigInt, nullable=False),
    Column("served_modules", UInt, nullable=False),
    Column("served_hosts", UInt, nullable=False),
    Column("served_since", BigInteger, nullable=False),  # unix seconds
    Column("held_version", UBigInt, nullable=True),  # NULL: nothing held
    Column("held_since", BigInteger, nullable=True),
    Column("held_detail", String(1024), nullable=False, default=""),
    Column("state", GuardBlob, nullable=False),  # zlib JSON (lars/routes/guardstate.py)
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Deleted RouteInstance rows (deregistered, expired), by the mark of the deleting write,
# kept for GONE_KEEP seconds: a route service that loaded at mark M drops the ids gone
# after M instead of reading every instance again. Route services older than that load
# in full.
route_instance_gone = Table(
    "RouteInstanceGone",
    metadata,
    Column("id", UIntId, primary_key=True, autoincrement=True),
    Column("mark", UBigInt, nullable=False),
    Column("instance_id", UInt, nullable=False),
    Column("ts", BigInteger, nullable=False),  # unix seconds
    Index("RouteInstanceGone_mark", "mark"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

LARS_ONLY_TABLES = (
    route_guard_state.name,
    lars_account.name,
    route_audit.name,
    route_host_meta.name,
    route_instance.name,
    route_instance_mark.name,
    route_instance_gone.name,
)
