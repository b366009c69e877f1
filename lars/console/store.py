"""The console's own reads and writes: call status rows and module descriptions.

Route edits never happen here; they go through RouteAdmin (the code behind `lars route`),
so the route service sees a new version and pushes them. Database errors become
StoreUnavailable at this edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from lars.console.health import StatusRow
from lars.db import cmdid_config, modid_config, server_call_status
from lars.errors import StoreUnavailable

__all__ = ["ConsoleStore"]

T = TypeVar("T")


class ConsoleStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def status_rows(self, modid: int | None = None, cmdid: int | None = None) -> list[StatusRow]:
        query = select(server_call_status)
        if modid is not None:
            query = query.where(server_call_status.c.modid == modid)
        if cmdid is not None:
            query = query.where(server_call_status.c.cmdid == cmdid)
        return self._read(
            lambda conn: [
                StatusRow(
                    modid=r.modid,
                    cmdid=r.cmdid,
                    ip=r.ip,
                    port=r.port,
                    caller=r.caller,
                    succ=r.succ_cnt,
                    err=r.err_cnt,
                    ts=r.ts,
                    overload=str(r.overload).strip() == "1",
                )
                for r in conn.execute(query)
            ]
        )

    def descriptions(self) -> tuple[dict[int, str], dict[int, str]]:
        """(modid -> text, cmdid -> text); with duplicate rows the newest (largest id) wins."""

        def read(conn: Connection) -> tuple[dict[int, str], dict[int, str]]:
            mods = {
                r.modid: (r.content or "").rstrip()
                for r in conn.execute(select(modid_config).order_by(modid_config.c.id))
            }
            cmds = {
                r.cmdid: (r.content or "").rstrip()
                for r in conn.execute(select(cmdid_config).order_by(cmdid_config.c.id))
            }
            return mods, cmds

        return self._read(read)

    def set_descriptions(self, modid: int, cmdid: int, mod_text: str, cmd_text: str) -> None:
        """Upsert ModIDConfig(modid) and CmdIDConfig(cmdid) in one transaction."""
        with self._transaction() as conn:
            for table, key, value, content in (
                (modid_config, modid_config.c.modid, modid, mod_text),
                (cmdid_config, cmdid_config.c.cmdid, cmdid, cmd_text),
            ):
                found = conn.execute(select(func.count()).where(key == value)).scalar_one()
                if found:
                    conn.execute(update(table).where(key == value).values(content=content))
                else:
                    conn.execute(insert(table).values({key.name: value, "content": content}))

    def _read(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self._engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database read failed: {type(exc).__name__}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database write failed: {type(exc).__name__}") from exc
