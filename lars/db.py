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
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

__all__ = [
    "LARS_ONLY_TABLES",
    "cmdid_config",
    "metadata",
    "modid_config",
    "route_audit",
    "route_change",
    "route_data",
    "route_host_meta",
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

LARS_ONLY_TABLES = (route_audit.name, route_host_meta.name)
