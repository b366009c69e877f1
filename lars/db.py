"""The lars_dns schema (spec section 5) as SQLAlchemy Core tables: one place for it.

Column names and types follow the Lars MySQL schema exactly, so DBA scripts and the
original tools keep working; on SQLite the unsigned integers become plain INTEGER.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
)
from sqlalchemy.dialects import mysql

__all__ = [
    "cmdid_config",
    "metadata",
    "modid_config",
    "route_change",
    "route_data",
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
