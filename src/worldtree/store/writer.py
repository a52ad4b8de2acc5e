"""The buffered :class:`~worldtree.store.api.RunWriter` of the SQL store.

``node_event``/``log`` append to a list under a lock and return (no I/O on the caller's
thread). A daemon thread writes a batch every ``FLUSH_INTERVAL`` or as soon as
``BATCH_SIZE`` items wait, each batch in ONE transaction: an executemany upsert of the node
states (several events of one node in a batch collapse to its latest state), an executemany
insert of the log lines with ``seq`` numbers continuing the run's highest, and the attempt's
heartbeat when it is due. The two hot statements are compiled once and run through the
driver with plain tuples (:class:`_Prepared`): SQLAlchemy's per-row parameter processing was
half of the flush time. A failed batch goes back to the front of the queue and is retried
on the next tick; ``flush``/``close`` raise :class:`StoreError` if it still fails.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.model.states import TERMINAL, NodeState
from worldtree.store.records import LogLine, NodeEvent
from worldtree.store.schema import reason, write_transaction
from worldtree.store.tables import attempts, logs, node_states, utc_param

FLUSH_INTERVAL = 0.1  # seconds
BATCH_SIZE = 500
HEARTBEAT_INTERVAL = 1.0  # the contract asks for at least every 2 s; readers allow 30 s

_TERMINAL_VALUES = frozenset(str(state) for state in TERMINAL)
_NODE_KEYS = ("run_id", "attempt", "node", "state", "started_at", "finished_at", "exit_code", "error",
              "reason", "try_number")
_STARTED_AT = _NODE_KEYS.index("started_at")
_LOG_KEYS = ("run_id", "attempt", "node", "seq", "ts", "stream", "line")
_open_writers: weakref.WeakSet[SqlRunWriter] = weakref.WeakSet()


class SqlRunWriter:
    """Writes one attempt's node states and log lines; the writer's run and attempt win over
    the ``run_id``/``attempt`` fields of the records handed to it.

    Thread-safe: any thread may call ``node_event``/``log``/``flush``. ``close`` is idempotent;
    after it, ``node_event``/``log`` raise :class:`StoreError`.
    """

    def __init__(self, engine: Engine, run_id: str, attempt: int) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self._engine = engine
        self._events: list[NodeEvent] = []
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()  # guards the two lists
        self._io_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._last_heartbeat = time.monotonic()
        self._upsert, self._insert_logs = _statements(engine.dialect)
        self._text_times = engine.dialect.name == "sqlite"
        self._heartbeat = (update(attempts)
                           .where(attempts.c.run_id == run_id, attempts.c.number == attempt))
        try:
            with engine.connect() as conn:
                top = conn.execute(select(func.max(logs.c.seq)).where(logs.c.run_id == run_id)).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open a writer for run {run_id}: {reason(exc)}") from exc
        self._seq = int(top or 0)
        self._thread = threading.Thread(target=self._loop, name=f"worldtree-writer-{run_id}", daemon=True)
        self._thread.start()
        _open_writers.add(self)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- called from the engine (any thread) -------------------------------------------------
    def node_event(self, event: NodeEvent) -> None:
        with self._lock:
            if self._closed:
                raise StoreError(f"the writer of run {self.run_id} is closed")
            self._events.append(event)
            full = len(self._events) + len(self._lines) >= BATCH_SIZE
        if full:
            self._wake.set()

    def log(self, line: LogLine) -> None:
        with self._lock:
            if self._closed:
                raise StoreError(f"the writer of run {self.run_id} is closed")
            self._lines.append(line)
            full = len(self._events) + len(self._lines) >= BATCH_SIZE
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything appended so far, now, on the calling thread."""
        try:
            self._flush_once()
        except (SQLAlchemyError, ValueError, TypeError) as exc:  # ValueError: a naive datetime
            raise StoreError(f"cannot write run {self.run_id} to the store: {reason(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join()
        _open_writers.discard(self)
        self.flush()  # a no-op unless the thread's last batch failed: then retry it, loudly

    # -- the flushing thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._flush_once()
            except Exception:
                pass  # the batch is queued again; flush()/close() retry it and raise if it fails
            if stopping:
                return

    def _flush_once(self) -> None:
        with self._io_lock:
            with self._lock:
                events, self._events = self._events, []
                lines, self._lines = self._lines, []
            beat = time.monotonic() - self._last_heartbeat >= HEARTBEAT_INTERVAL
            if not events and not lines and not beat:
                return
            try:
                self._write(events, lines, beat)
            except BaseException:
                with self._lock:  # back to the front, in order, for the next try
                    self._events[:0] = events
                    self._lines[:0] = lines
                raise

    def _write(self, events: list[NodeEvent], lines: list[LogLine], beat: bool) -> None:
        run_id, attempt, seq, as_text = self.run_id, self.attempt, self._seq, self._text_times
        log_rows = [
            (run_id, attempt, line.node, seq + i, utc_param(line.ts, as_text), line.stream, clean(line.line))
            for i, line in enumerate(lines, 1)
        ]
        node_rows = _latest_states(run_id, attempt, events, as_text)
        with write_transaction(self._engine) as conn:
            if node_rows:
                self._upsert.run(conn, node_rows)
            if log_rows:
                self._insert_logs.run(conn, log_rows)
            if beat:
                conn.execute(self._heartbeat, {"heartbeat_at": datetime.now(UTC)})
        self._seq = seq + len(lines)
        if beat:
            self._last_heartbeat = time.monotonic()


_compiled: dict[tuple[str, str], tuple[_Prepared, _Prepared]] = {}


def _statements(dialect: Dialect) -> tuple[_Prepared, _Prepared]:
    """The node upsert and the log insert for ``dialect``, compiled once per process."""
    key = (dialect.name, dialect.paramstyle)
    if key not in _compiled:
        _compiled[key] = (
            _Prepared(_node_upsert(dialect.name), _NODE_KEYS, dialect),
            _Prepared(logs.insert().values({k: bindparam(k) for k in _LOG_KEYS}), _LOG_KEYS, dialect),
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


def clean(text: str) -> str:
    """Text every database takes: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _latest_states(run_id: str, attempt: int, events: list[NodeEvent],
                   as_text: bool) -> list[tuple[Any, ...]]:
    """One row per node (``_NODE_KEYS``): its latest event, keeping an earlier ``started_at``.

    Without explicit times, ``running`` takes ``ts`` as its start and a terminal state as its end.
    """
    rows: dict[str, tuple[Any, ...]] = {}
    for ev in events:
        started = ev.started_at or (ev.ts if ev.state == NodeState.RUNNING else None)
        finished = ev.finished_at or (ev.ts if ev.state in _TERMINAL_VALUES else None)
        started_param = utc_param(started, as_text) if started is not None else None
        if started_param is None and ev.node in rows:
            started_param = rows[ev.node][_STARTED_AT]
        rows[ev.node] = (run_id, attempt, ev.node, str(ev.state), started_param,
                         utc_param(finished, as_text), ev.exit_code,
                         clean(ev.error) if ev.error else ev.error, ev.reason, ev.try_number)
    return list(rows.values())


def _node_upsert(dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT (run_id, attempt, node) DO UPDATE`` in the engine's dialect."""
    stmt: Any
    if dialect_name == "postgresql":  # import only the dialect in use: start-up time
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(node_states)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(node_states)
    stmt = stmt.values({k: bindparam(k) for k in _NODE_KEYS})
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


@atexit.register
def _close_open_writers() -> None:
    """A run that forgot ``close()`` still gets its last 100 ms of output stored."""
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception:
            pass
