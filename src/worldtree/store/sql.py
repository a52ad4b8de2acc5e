"""``SqlRunStore``: the :class:`~worldtree.store.api.RunStore` on SQLite or PostgreSQL (SQLAlchemy Core).

Every public method translates SQLAlchemy and driver errors into :class:`StoreError`. Whether a
``running`` run is really running is decided when reading (``interrupted`` otherwise, see
:func:`is_attempt_dead`) and never written back: a reader cannot kill a live run by mistake.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worldtree.errors import StoreError, UsageError
from worldtree.model.records import LogLine, NodeRecord, RunRecord
from worldtree.model.states import RunState
from worldtree.store.ids import new_run_id
from worldtree.store.schema import display_url, open_engine, reason, write_transaction
from worldtree.store.tables import attempts, logs, node_states, runs
from worldtree.store.writer import SqlRunWriter

#: A running attempt whose heartbeat is older than this is reported ``interrupted``.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
HOSTNAME = socket.gethostname()

P = ParamSpec("P")
T = TypeVar("T")


_Method = Callable[Concatenate["SqlRunStore", P], T]


def _translated(action: str) -> Callable[[_Method[P, T]], _Method[P, T]]:
    """SQLAlchemy and driver errors leave the method as :class:`StoreError`s saying what failed."""

    def decorate(method: _Method[P, T]) -> _Method[P, T]:
        @functools.wraps(method)
        def wrapper(self: SqlRunStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return method(self, *args, **kwargs)
            except SQLAlchemyError as exc:
                where = display_url(self.url)
                raise StoreError(f"run store {where}: cannot {action}: {reason(exc)}") from exc
        return wrapper
    return decorate


class SqlRunStore:
    """See :mod:`worldtree.store.api` for the contract. Thread-safe (one pooled engine)."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self._engine = engine if engine is not None else open_engine(url)
        self._writers: list[SqlRunWriter] = []

    @_translated("create a run")
    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any]) -> str:
        now = _now()
        row = {"name": name, "source": source, "workdir": workdir, "state": str(RunState.PENDING),
               "attempt": 0, "created_at": now, "graph_json": graph_json,
               "options_json": json.dumps(options)}
        for tries_left in range(4, -1, -1):
            run_id = new_run_id(now)
            try:
                with write_transaction(self._engine) as conn:
                    conn.execute(runs.insert(), {"id": run_id, **row})
                return run_id
            except IntegrityError:  # another process drew the same id in the same millisecond
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    @_translated("start an attempt")
    def start_attempt(self, run_id: str) -> int:
        now = _now()
        with write_transaction(self._engine) as conn:
            current = conn.execute(
                select(runs.c.attempt).where(runs.c.id == run_id).with_for_update()).scalar()
            if current is None:
                raise UsageError(f"no run {run_id!r} in the store")
            number = current + 1
            # An older attempt still marked running has lost its process: this one replaces it.
            conn.execute(update(attempts)
                         .where(attempts.c.run_id == run_id, attempts.c.state == RunState.RUNNING)
                         .values(state=str(RunState.INTERRUPTED), finished_at=now))
            conn.execute(attempts.insert(), {
                "run_id": run_id, "number": number, "state": str(RunState.RUNNING), "started_at": now,
                "pid": os.getpid(), "hostname": HOSTNAME, "heartbeat_at": now})
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                attempt=number, state=str(RunState.RUNNING), started_at=now, finished_at=None))
        return number

    def writer(self, run_id: str, attempt: int) -> SqlRunWriter:
        writer = SqlRunWriter(self._engine, run_id, attempt)
        self._writers = [w for w in self._writers if not w.closed]
        self._writers.append(writer)
        return writer

    @_translated("finish an attempt")
    def finish_attempt(self, run_id: str, attempt: int, state: str) -> None:
        final = RunState(state)  # ValueError for a state that is not a RunState
        now = _now()
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(attempts).where(attempts.c.run_id == run_id, attempts.c.number == attempt)
                .values(state=str(final), finished_at=now, heartbeat_at=now))
            if done.rowcount == 0:
                raise UsageError(f"run {run_id!r} has no attempt {attempt}")
            # Only the latest attempt speaks for the run.
            conn.execute(update(runs).where(runs.c.id == run_id, runs.c.attempt == attempt)
                         .values(state=str(final), finished_at=now))

    @_translated("read a run")
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None; a unique prefix of its id will do (UsageError if it is ambiguous)."""
        with self._read() as conn:
            full_id = self._resolve(conn, run_id)
            if full_id is None:
                return None
            row = conn.execute(_run_query(with_graph=True).where(runs.c.id == full_id)).one()
            record = _run_record(row, _now(), with_graph=True)
            record.nodes = _node_records(conn, full_id, record.attempt)
        return record

    @_translated("list runs")
    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        query = _run_query(with_graph=False).order_by(runs.c.created_at.desc(), runs.c.id.desc())
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).all()
        now = _now()
        return [_run_record(row, now, with_graph=False) for row in rows]

    @_translated("read node states")
    def node_records(self, run_id: str, attempt: int | None = None) -> list[NodeRecord]:
        """The nodes of ``attempt`` (default: the latest), started ones first, in start order."""
        with self._read() as conn:
            if attempt is None:
                attempt = conn.execute(select(runs.c.attempt).where(runs.c.id == run_id)).scalar()
                if attempt is None:
                    return []
            return _node_records(conn, run_id, attempt)

    @_translated("read logs")
    def logs(self, run_id: str, *, node: str | None = None, after_seq: int = 0,
             limit: int | None = None) -> list[LogLine]:
        query = (select(logs.c.attempt, logs.c.node, logs.c.stream, logs.c.line, logs.c.ts, logs.c.seq)
                 .where(logs.c.run_id == run_id, logs.c.seq > after_seq).order_by(logs.c.seq))
        if node is not None:
            query = query.where(or_(logs.c.node == node, logs.c.node.startswith(node + "/", autoescape=True)))
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [LogLine(run_id=run_id, attempt=r.attempt, node=r.node, stream=r.stream, line=r.line,
                        ts=r.ts, seq=r.seq) for r in rows]

    def close(self) -> None:
        """Close the writers still open (flushing them), then the connections. Idempotent."""
        writers, self._writers = self._writers, []
        try:
            for writer in writers:
                writer.close()
        finally:
            self._engine.dispose()

    # -- helpers ---------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    @staticmethod
    def _resolve(conn: Connection, run_id: str) -> str | None:
        if not run_id:
            return None
        if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None:
            return run_id
        found = conn.execute(select(runs.c.id).where(runs.c.id.startswith(run_id, autoescape=True))
                             .order_by(runs.c.id).limit(6)).scalars().all()
        if len(found) > 1:
            more = ", …" if len(found) > 5 else ""
            raise UsageError(f"run id prefix {run_id!r} is ambiguous: {', '.join(found[:5])}{more}")
        return found[0] if found else None


def _now() -> datetime:
    return datetime.now(UTC)


def _run_query(*, with_graph: bool) -> Any:
    columns = [runs.c.id, runs.c.name, runs.c.source, runs.c.workdir, runs.c.state, runs.c.attempt,
               runs.c.created_at, runs.c.started_at, runs.c.finished_at, runs.c.options_json,
               attempts.c.state.label("attempt_state"), attempts.c.pid, attempts.c.hostname,
               attempts.c.heartbeat_at]
    if with_graph:
        columns.append(runs.c.graph_json)
    return select(*columns).select_from(runs.outerjoin(
        attempts, and_(attempts.c.run_id == runs.c.id, attempts.c.number == runs.c.attempt)))


def _run_record(row: Row[Any], now: datetime, *, with_graph: bool) -> RunRecord:
    state = row.state
    if state == RunState.RUNNING and (
            row.attempt_state != RunState.RUNNING
            or is_attempt_dead(row.pid, row.hostname, row.heartbeat_at, now)):
        state = str(RunState.INTERRUPTED)
    return RunRecord(
        run_id=row.id, name=row.name, source=row.source, state=state, attempt=row.attempt,
        workdir=row.workdir, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, graph_json=row.graph_json if with_graph else "",
        options=json.loads(row.options_json or "{}"))


def _node_records(conn: Connection, run_id: str, attempt: int) -> list[NodeRecord]:
    c = node_states.c
    rows = conn.execute(
        select(c.node, c.state, c.attempt, c.started_at, c.finished_at, c.exit_code, c.error, c.reason,
               c.try_number)
        .where(c.run_id == run_id, c.attempt == attempt)
        .order_by(c.started_at.is_(None), c.started_at, c.node)).all()
    return [NodeRecord(node=r.node, state=r.state, attempt=r.attempt, started_at=r.started_at,
                       finished_at=r.finished_at, exit_code=r.exit_code, error=r.error, reason=r.reason,
                       try_number=r.try_number) for r in rows]


def is_attempt_dead(pid: int | None, hostname: str | None, heartbeat_at: datetime | None,
                    now: datetime) -> bool:
    """True when a ``running`` attempt cannot be running any more.

    On this host a dead (or zombie) pid says so at once; elsewhere only a heartbeat older than
    :data:`HEARTBEAT_TIMEOUT` can.
    """
    if heartbeat_at is None or pid is None:
        return True
    if hostname == HOSTNAME and not pid_alive(pid):
        return True
    return now - heartbeat_at > HEARTBEAT_TIMEOUT


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # a killed child its parent has not reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
