"""``SqlRunStore``: the :class:`~worldtree.store.api.RunStore` on SQLite or PostgreSQL (SQLAlchemy Core).

Writes are :mod:`.lifecycle`'s (the same statements the direct SQLite path runs); reads are
SQLAlchemy Core. Every public method translates SQLAlchemy and driver errors into
:class:`StoreError`. Whether a ``running`` run is really running is decided when reading
(``interrupted`` otherwise, see :func:`~worldtree.store.liveness.is_live`) and never written back.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.model.records import LogLine, NodeRecord, RunRecord
from worldtree.model.states import RunState
from worldtree.store import lifecycle
from worldtree.store.api import LEASE_SECONDS, AttemptLease, AuditEntry, TokenRecord
from worldtree.store.batching import OnCancel, OnCommit, OnFault
from worldtree.store.liveness import is_live
from worldtree.store.schema import display_url, open_engine, reason, write_transaction
from worldtree.store.tables import attempts, logs, node_states, runs
from worldtree.store.tx import SqlaTx
from worldtree.store.writer import SqlRunWriter

#: The PostgreSQL channel a queue change is announced on.
QUEUE_CHANNEL = "worldtree_queue"

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

    @contextmanager
    def _tx(self) -> Iterator[SqlaTx]:
        with write_transaction(self._engine) as conn:
            yield SqlaTx(conn)

    @_translated("create a run")
    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any], graph_version: int = 1) -> str:
        return lifecycle.create_run(self._tx, IntegrityError, name=name, source=source, workdir=workdir,
                                    graph_json=graph_json, options=options, graph_version=graph_version, now=_now())

    @_translated("start an attempt")
    def start_attempt(self, run_id: str, *, node_ids: list[str], expect_attempt: int | None = None,
                      lease_seconds: float = LEASE_SECONDS) -> AttemptLease:
        with self._tx() as tx:
            return lifecycle.start_attempt(tx, run_id, node_ids, expect_attempt, lease_seconds, _now())

    def writer(self, run_id: str, attempt: int, *, token: int, on_commit: OnCommit | None = None,
               on_cancel: OnCancel | None = None, on_fault: OnFault | None = None) -> SqlRunWriter:
        writer = SqlRunWriter(self._engine, run_id, attempt, token=token, on_commit=on_commit,
                              on_cancel=on_cancel, on_fault=on_fault)
        self._writers = [w for w in self._writers if not w.closed]
        self._writers.append(writer)
        return writer

    @_translated("finish an attempt")
    def finish_attempt(self, run_id: str, attempt: int, state: str, *, token: int) -> None:
        with self._tx() as tx:
            lifecycle.finish_attempt(tx, run_id, attempt, state, token, _now())

    @_translated("request a cancel")
    def request_cancel(self, run_id: str, reason: str) -> bool:
        with self._tx() as tx:
            return lifecycle.request_cancel(tx, run_id, reason, _now())

    @_translated("claim a node")
    def claim_node(self, run_id: str, attempt: int, node: str, owner: str, lease_seconds: float) -> int | None:
        with self._tx() as tx:
            return lifecycle.claim_node(tx, run_id, attempt, node, owner, lease_seconds, _now())

    @_translated("renew a node lease")
    def renew_node_lease(self, run_id: str, attempt: int, node: str, token: int, lease_seconds: float) -> bool:
        with self._tx() as tx:
            return lifecycle.renew_node_lease(tx, run_id, attempt, node, token, lease_seconds, _now())

    @_translated("read node leases")
    def expired_node_leases(self, now: datetime) -> list[tuple[str, int, str, int]]:
        with self._tx() as tx:
            return lifecycle.expired_node_leases(tx, now)

    @_translated("read the queue")
    def claimable_runs(self, limit: int = 20) -> list[tuple[str, int]]:
        with self._read() as conn:
            return lifecycle.claimable_runs(SqlaTx(conn), _now(), limit)

    @_translated("delete a run")
    def delete_run(self, run_id: str) -> bool:
        with self._tx() as tx:
            return lifecycle.delete_run(tx, run_id)

    @_translated("requeue a run")
    def requeue_run(self, run_id: str, expect_attempt: int) -> bool:
        with self._tx() as tx:
            return lifecycle.requeue_run(tx, run_id, expect_attempt)

    @_translated("list runs")
    def page_runs(self, *, offset: int = 0, limit: int = 50, state: str | None = None,
                  pipeline: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, q: str | None = None) -> tuple[list[RunRecord], int]:
        """A page of runs; ``running`` and ``interrupted`` are told apart when reading (both stored as running).

        ``pipeline``: the name exactly; ``since``/``until``: created at or after / before; ``q``: a
        case-insensitive substring of the id or the name (``%`` and ``_`` match themselves)."""
        query = _run_query(with_graph=False).order_by(runs.c.created_at.desc(), runs.c.id.desc())
        if pipeline is not None:
            query = query.where(runs.c.name == pipeline)
        if since is not None:
            query = query.where(runs.c.created_at >= since)
        if until is not None:
            query = query.where(runs.c.created_at < until)
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(func.lower(runs.c.name).like(pattern, escape="\\")
                                | func.lower(runs.c.id).like(pattern, escape="\\"))
        now = _now()
        with self._read() as conn:
            if state in (RunState.RUNNING, RunState.INTERRUPTED):
                rows = conn.execute(query.where(runs.c.state == str(RunState.RUNNING))).all()
                matching = [r for r in (_run_record(row, now, with_graph=False) for row in rows) if r.state == state]
                return matching[offset:offset + limit], len(matching)
            if state is not None:
                query = query.where(runs.c.state == state)
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.offset(offset).limit(limit)).all()
        return [_run_record(row, now, with_graph=False) for row in rows], int(total)

    def notify_queue(self) -> None:
        """Tell every replica's executors that the queue changed (PostgreSQL NOTIFY; SQLite: nothing,
        they poll). Best effort: the store holds the queue, a lost signal only costs a poll interval."""
        if self._engine.dialect.name != "postgresql":
            return
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(f"NOTIFY {QUEUE_CHANNEL}")
                conn.commit()
        except SQLAlchemyError:
            pass

    def listen_queue(self, on_signal: Callable[[], None], stop: threading.Event) -> bool:
        """Call ``on_signal`` whenever ``notify_queue`` is called anywhere, until ``stop`` is set (a
        thread of its own, reconnecting when the connection drops). False on SQLite: poll instead."""
        if self._engine.dialect.name != "postgresql":
            return False
        thread = threading.Thread(target=self._listen, args=(on_signal, stop), name="worldtree-queue-listen",
                                  daemon=True)
        thread.start()
        return True

    def _listen(self, on_signal: Callable[[], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                raw = self._engine.raw_connection()
                try:
                    conn: Any = raw.driver_connection
                    conn.autocommit = True
                    conn.execute(f"LISTEN {QUEUE_CHANNEL}")
                    on_signal()  # whatever was queued while not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            on_signal()
                finally:
                    raw.invalidate()
            except Exception:  # the database went away: listen again after a pause; polling goes on
                stop.wait(2.0)

    @_translated("write the audit log")
    def record_audit(self, entry: AuditEntry) -> None:
        with self._tx() as tx:
            lifecycle.record_audit(tx, entry)

    @_translated("read the audit log")
    def audit_entries(self, *, offset: int = 0, limit: int = 100) -> tuple[list[AuditEntry], int]:
        with self._read() as conn:
            return lifecycle.audit_entries(SqlaTx(conn), offset, limit)

    @_translated("create a token")
    def create_token(self, *, token_id: str, name: str, role: str, secret_hash: str,
                     expires_at: datetime | None) -> None:
        with self._tx() as tx:
            lifecycle.create_token(tx, token_id=token_id, name=name, role=role, secret_hash=secret_hash,
                                   expires_at=expires_at, now=_now())

    @_translated("read a token")
    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        with self._read() as conn:
            return lifecycle.token_by_hash(SqlaTx(conn), secret_hash)

    @_translated("list tokens")
    def list_tokens(self) -> list[TokenRecord]:
        with self._read() as conn:
            return lifecycle.list_tokens(SqlaTx(conn))

    @_translated("revoke a token")
    def revoke_token(self, token_id: str) -> bool:
        with self._tx() as tx:
            return lifecycle.revoke_token(tx, token_id, _now())

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
        if after_seq >= 2**31 - 1:  # seq is a 32-bit INTEGER: none is past it (PostgreSQL: "out of range", a 503)
            return []
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
        return lifecycle.resolve(SqlaTx(conn), run_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _run_query(*, with_graph: bool) -> Any:
    columns = [runs.c.id, runs.c.name, runs.c.source, runs.c.workdir, runs.c.state, runs.c.attempt,
               runs.c.created_at, runs.c.started_at, runs.c.finished_at, runs.c.options_json,
               runs.c.cancel_reason, runs.c.graph_version,
               attempts.c.state.label("attempt_state"), attempts.c.pid, attempts.c.hostname,
               attempts.c.lease_expires_at, attempts.c.scope_deadlines_json, attempts.c.heartbeat_at]
    if with_graph:
        columns.append(runs.c.graph_json)
    return select(*columns).select_from(runs.outerjoin(
        attempts, and_(attempts.c.run_id == runs.c.id, attempts.c.number == runs.c.attempt)))


def _run_record(row: Row[Any], now: datetime, *, with_graph: bool) -> RunRecord:
    state = row.state
    if state == RunState.RUNNING and not (
            row.attempt_state == RunState.RUNNING and is_live(row.pid, row.hostname, row.lease_expires_at, now)):
        state = str(RunState.INTERRUPTED)
    return RunRecord(
        run_id=row.id, name=row.name, source=row.source, state=state, attempt=row.attempt,
        workdir=row.workdir, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, graph_json=row.graph_json if with_graph else "",
        options=json.loads(row.options_json or "{}"), cancel_reason=row.cancel_reason,
        graph_version=row.graph_version, scope_deadlines=_scope_deadlines(row.scope_deadlines_json),
        last_seen=row.heartbeat_at)


def _scope_deadlines(text: str | None) -> dict[str, datetime]:
    if not text:
        return {}
    return {scope: datetime.fromisoformat(value).astimezone(UTC) for scope, value in json.loads(text).items()}


def _node_records(conn: Connection, run_id: str, attempt: int) -> list[NodeRecord]:
    c = node_states.c
    rows = conn.execute(
        select(c.node, c.state, c.attempt, c.started_at, c.finished_at, c.exit_code, c.error, c.reason,
               c.try_number, c.deadline_at, c.retry_at)
        .where(c.run_id == run_id, c.attempt == attempt)
        .order_by(c.started_at.is_(None), c.started_at, c.node)).all()
    return [NodeRecord(node=r.node, state=r.state, attempt=r.attempt, started_at=r.started_at,
                       finished_at=r.finished_at, exit_code=r.exit_code, error=r.error, reason=r.reason,
                       try_number=r.try_number, deadline_at=r.deadline_at, retry_at=r.retry_at) for r in rows]
