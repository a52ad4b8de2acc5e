"""The SQLAlchemy run writer (any database): everything but the transaction is in :mod:`.batching`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from worldtree.store.batching import BatchingWriter
from worldtree.store.schema import write_transaction
from worldtree.store.tx import SqlaTx, Tx

#: SQLite's busy timeout for a heartbeat (ms): it must not wait behind a stuck batch for long
HEARTBEAT_LOCK_WAIT_MS = 1000


class SqlRunWriter(BatchingWriter):
    """A :class:`BatchingWriter` committing through a SQLAlchemy engine (one pooled connection per thread)."""

    errors = (SQLAlchemyError,)

    def __init__(self, engine: Engine, run_id: str, attempt: int, **kwargs: Any) -> None:
        self._engine = engine
        super().__init__(run_id, attempt, **kwargs)

    @contextmanager
    def _transaction(self, heartbeat: bool) -> Iterator[Tx]:
        with write_transaction(self._engine, lock_wait_ms=HEARTBEAT_LOCK_WAIT_MS if heartbeat else None) as conn:
            yield SqlaTx(conn)
