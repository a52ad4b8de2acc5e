"""One way to run the store's own SQL on both drivers: stdlib ``sqlite3`` and a SQLAlchemy connection.

Every state change (:mod:`worldtree.store.transitions`, :mod:`worldtree.store.lifecycle`) and the
writer's batch are written once, as SQL text with ``:name`` parameters, and run through a
:class:`Tx`: the direct SQLite path hands in its ``sqlite3`` connection, the SQLAlchemy store a
``Connection`` (the text is rewritten to ``%(name)s`` for psycopg). No SQLAlchemy import here.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

Params = Mapping[str, Any]


class Tx(Protocol):
    """An open transaction. ``as_text``: times are bound as UTC text (SQLite), else as datetimes."""

    as_text: bool

    def run(self, sql: str, params: Params) -> int:
        """Execute; the number of rows changed."""
        ...

    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        """Execute and fetch every row (SELECT, or a statement with RETURNING)."""
        ...

    def run_many(self, sql: str, params: Sequence[Params]) -> None: ...


class SqliteTx:
    """A :class:`Tx` on a stdlib ``sqlite3`` connection inside ``BEGIN IMMEDIATE``."""

    as_text = True

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def run(self, sql: str, params: Params) -> int:
        return self.conn.execute(sql, params).rowcount

    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        self.conn.executemany(sql, params)


class SqlaTx:
    """A :class:`Tx` on a SQLAlchemy ``Connection`` (SQLite or PostgreSQL), driver-level statements."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.as_text = conn.dialect.name == "sqlite"
        self._pyformat = conn.dialect.paramstyle == "pyformat"

    def _sql(self, sql: str) -> str:
        return _pyformat(sql) if self._pyformat else sql

    def run(self, sql: str, params: Params) -> int:
        return int(self.conn.exec_driver_sql(self._sql(sql), dict(params)).rowcount)

    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.conn.exec_driver_sql(self._sql(sql), dict(params)).all()]

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        if params:
            self.conn.exec_driver_sql(self._sql(sql), [dict(p) for p in params])


_NAME = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``:name`` → ``%(name)s`` (psycopg); a literal ``%`` is doubled."""
    return _NAME.sub(r"%(\1)s", sql.replace("%", "%%"))
