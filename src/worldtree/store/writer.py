"""The SQLAlchemy run writer (any database): batching comes from :mod:`worldtree.store.batching`.

The two hot statements are compiled once and run through the driver with plain tuples
(:class:`_Prepared`): SQLAlchemy's per-row parameter processing was half of the flush time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.store.batching import BatchingWriter
from worldtree.store.rows import LOG_KEYS, NODE_KEYS
from worldtree.store.schema import reason, write_transaction
from worldtree.store.tables import attempts, logs, node_states


class SqlRunWriter(BatchingWriter):
    """A :class:`BatchingWriter` committing through a SQLAlchemy engine."""

    errors = (SQLAlchemyError,)

    def __init__(self, engine: Engine, run_id: str, attempt: int) -> None:
        self._engine = engine
        self._upsert, self._insert_logs = _statements(engine.dialect)
        self.text_times = engine.dialect.name == "sqlite"
        self._heartbeat = (update(attempts)
                           .where(attempts.c.run_id == run_id, attempts.c.number == attempt))
        super().__init__(run_id, attempt)

    def _max_seq(self) -> int:
        try:
            with self._engine.connect() as conn:
                top = conn.execute(select(func.max(logs.c.seq)).where(logs.c.run_id == self.run_id)).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open a writer for run {self.run_id}: {reason(exc)}") from exc
        return int(top or 0)

    def _commit(self, node_rows: list[tuple[Any, ...]], log_rows: list[tuple[Any, ...]], beat: bool) -> None:
        with write_transaction(self._engine) as conn:
            if node_rows:
                self._upsert.run(conn, node_rows)
            if log_rows:
                self._insert_logs.run(conn, log_rows)
            if beat:
                conn.execute(self._heartbeat, {"heartbeat_at": datetime.now(UTC)})


_compiled: dict[tuple[str, str], tuple[_Prepared, _Prepared]] = {}


def _statements(dialect: Dialect) -> tuple[_Prepared, _Prepared]:
    """The node upsert and the log insert for ``dialect``, compiled once per process."""
    key = (dialect.name, dialect.paramstyle)
    if key not in _compiled:
        _compiled[key] = (
            _Prepared(_node_upsert(dialect.name), NODE_KEYS, dialect),
            _Prepared(logs.insert().values({k: bindparam(k) for k in LOG_KEYS}), LOG_KEYS, dialect),
        )
    return _compiled[key]


class _Prepared:
    """A statement compiled once for a dialect and executed with rows of driver-ready values."""

    def __init__(self, statement: Any, keys: tuple[str, ...], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.keys = keys
        self.positional = bool(compiled.positional)
        if self.positional and tuple(compiled.positiontup or ()) != keys:
            raise AssertionError(f"bind order {compiled.positiontup} != {keys}")

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self.positional:
            conn.exec_driver_sql(self.sql, rows)
        else:
            keys = self.keys
            conn.exec_driver_sql(self.sql, [dict(zip(keys, row, strict=True)) for row in rows])


def _node_upsert(dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT (run_id, attempt, node) DO UPDATE`` in the engine's dialect."""
    stmt: Any
    if dialect_name == "postgresql":  # import only the dialect in use: start-up time
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(node_states)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(node_states)
    stmt = stmt.values({k: bindparam(k) for k in NODE_KEYS})
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[node_states.c.run_id, node_states.c.attempt, node_states.c.node],
        set_={
            "state": new.state,
            "started_at": func.coalesce(new.started_at, node_states.c.started_at),
            "finished_at": new.finished_at,
            "exit_code": new.exit_code,
            "error": new.error,
            "reason": new.reason,
            "try_number": new.try_number,
        },
    )
