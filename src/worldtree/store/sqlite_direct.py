"""The embedded default's fast path: a run's writes to a SQLite store through stdlib ``sqlite3``.

SQLAlchemy and Alembic own the schema (``tables.py``, ``migrations/``) and every read. But
importing SQLAlchemy costs ~170 ms, half of the 0.35 s a one-step ``worldtree run`` may take.
So when the SQLite file is already at ``HEAD``, the writes a run makes — ``create_run``,
``start_attempt``, the batched writer, ``finish_attempt`` — go straight to ``sqlite3`` with the
statements below, which a test proves identical to what SQLAlchemy compiles for these tables;
reads open the SQLAlchemy store on first use. Anything else (no file yet, an older schema)
goes through :class:`~worldtree.store.sql.SqlRunStore`, which migrates.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worldtree.errors import StoreError, UsageError
from worldtree.model.records import LogLine, NodeRecord, RunRecord
from worldtree.model.states import RunState
from worldtree.store.batching import BatchingWriter
from worldtree.store.ids import new_run_id
from worldtree.store.rows import utc_param

if TYPE_CHECKING:
    from worldtree.store.sql import SqlRunStore

#: must equal ``worldtree.store.schema.HEAD`` (a test checks; importing schema imports SQLAlchemy)
HEAD = "0001"
HOSTNAME = socket.gethostname()

INSERT_RUN = ("INSERT INTO runs (id, name, source, workdir, state, attempt, created_at, started_at, "
              "finished_at, graph_json, options_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
UPSERT_NODE = ("INSERT INTO node_states (run_id, attempt, node, state, started_at, finished_at, exit_code, "
               "error, reason, try_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, attempt, "
               "node) DO UPDATE SET state = excluded.state, started_at = coalesce(excluded.started_at, "
               "node_states.started_at), finished_at = excluded.finished_at, exit_code = excluded.exit_code, "
               "error = excluded.error, reason = excluded.reason, try_number = excluded.try_number")
INSERT_LOGS = "INSERT INTO logs (run_id, attempt, node, seq, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?, ?)"


#: The schema Alembic's revision HEAD creates on SQLite, statement for statement (a test compares
#: ``sqlite_master`` of both). A new file gets it without importing Alembic (0.3 s of start-up).
SCHEMA = (
    "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc "
    "PRIMARY KEY (version_num)\n)",
    "CREATE TABLE runs (\n\tid VARCHAR(40) NOT NULL, \n\tname TEXT NOT NULL, \n\tsource TEXT, \n\tworkdir TEXT "
    "NOT NULL, \n\tstate VARCHAR(20) NOT NULL, \n\tattempt INTEGER NOT NULL, \n\tcreated_at DATETIME NOT NULL, "
    "\n\tstarted_at DATETIME, \n\tfinished_at DATETIME, \n\tgraph_json TEXT NOT NULL, \n\toptions_json TEXT NOT "
    "NULL, \n\tPRIMARY KEY (id)\n)",
    "CREATE INDEX ix_runs_created_at ON runs (created_at)",
    "CREATE TABLE attempts (\n\trun_id VARCHAR(40) NOT NULL, \n\tnumber INTEGER NOT NULL, \n\tstate VARCHAR(20) "
    "NOT NULL, \n\tstarted_at DATETIME NOT NULL, \n\tfinished_at DATETIME, \n\tpid INTEGER NOT NULL, \n\thostname "
    "VARCHAR(255) NOT NULL, \n\theartbeat_at DATETIME NOT NULL, \n\tPRIMARY KEY (run_id, number), \n\tFOREIGN "
    "KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)",
    "CREATE TABLE node_states (\n\trun_id VARCHAR(40) NOT NULL, \n\tattempt INTEGER NOT NULL, \n\tnode TEXT NOT "
    "NULL, \n\tstate VARCHAR(20) NOT NULL, \n\tstarted_at DATETIME, \n\tfinished_at DATETIME, \n\texit_code "
    "INTEGER, \n\terror TEXT, \n\treason TEXT, \n\ttry_number INTEGER NOT NULL, \n\tPRIMARY KEY (run_id, attempt, "
    "node), \n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)",
    "CREATE TABLE logs (\n\tid INTEGER NOT NULL, \n\trun_id VARCHAR(40) NOT NULL, \n\tattempt INTEGER NOT NULL, "
    "\n\tnode TEXT NOT NULL, \n\tseq INTEGER NOT NULL, \n\tts DATETIME NOT NULL, \n\tstream VARCHAR(20) NOT NULL, "
    "\n\tline TEXT NOT NULL, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE "
    "CASCADE\n)",
    "CREATE INDEX ix_logs_run_seq ON logs (run_id, seq)",
    "CREATE INDEX ix_logs_run_node ON logs (run_id, node)",
)


def _create_fresh(path: str) -> bool:
    """Give a new (or empty) SQLite file the HEAD schema; False when it is not ours to create."""
    try:
        conn = _connect(path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            with _Tx(conn):  # BEGIN IMMEDIATE: a second process waits, then sees the schema
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables == 0:
                    for statement in SCHEMA:
                        conn.execute(statement)
                    conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD,))
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return True


def sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL (no query options), else None."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix) and "?" not in url:
            path = url[len(prefix):]
            return path if path and path != ":memory:" else None
    return None


def _connect(path: str) -> sqlite3.Connection:
    """Connections tuned as ``schema._tune_sqlite`` tunes SQLAlchemy's: WAL, explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def open_direct(url: str) -> SqliteDirectStore | None:
    """The fast store when ``url`` is a SQLite file already at HEAD (in WAL mode), else None."""
    path = sqlite_path(url)
    if path is None or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return None
    if (not os.path.exists(path) or os.path.getsize(path) == 0) and not _create_fresh(path):
        return None
    try:
        conn = _connect(path)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            wal = conn.execute("PRAGMA journal_mode").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # let the SQLAlchemy store open (and explain) it
    if row is None or row[0] != HEAD or wal is None or str(wal[0]).lower() != "wal":
        return None
    return SqliteDirectStore(url, path)


class _Tx:
    """``with _Tx(conn):`` = BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), as write_transaction does."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class SqliteDirectStore:
    """A RunStore: writes by ``sqlite3``, reads by a lazily opened :class:`SqlRunStore`."""

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._conn = _connect(path)
        self._sql: SqlRunStore | None = None
        self._writers: list[SqliteDirectWriter] = []

    # -- writes ----------------------------------------------------------------------------
    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any]) -> str:
        now = datetime.now(UTC)
        for tries_left in range(4, -1, -1):
            run_id = new_run_id(now)
            try:
                with _Tx(self._conn) as conn:
                    conn.execute(INSERT_RUN, (run_id, name, source, workdir, str(RunState.PENDING), 0,
                                              utc_param(now, True), None, None, graph_json, json.dumps(options)))
                return run_id
            except sqlite3.IntegrityError:  # another process drew the same id in the same millisecond
                if not tries_left:
                    raise StoreError("cannot create a run: run id collisions") from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create a run in {self.path}: {exc}") from exc
        raise AssertionError("unreachable")

    def start_attempt(self, run_id: str) -> int:
        now = utc_param(datetime.now(UTC), True)
        try:
            with _Tx(self._conn) as conn:
                row = conn.execute("SELECT attempt FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None:
                    raise UsageError(f"no run {run_id!r} in the store")
                number = int(row[0]) + 1
                # An older attempt still marked running has lost its process: this one replaces it.
                conn.execute("UPDATE attempts SET state = ?, finished_at = ? WHERE run_id = ? AND state = ?",
                             (str(RunState.INTERRUPTED), now, run_id, str(RunState.RUNNING)))
                conn.execute("INSERT INTO attempts (run_id, number, state, started_at, finished_at, pid, hostname, "
                             "heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (run_id, number, str(RunState.RUNNING), now, None, os.getpid(), HOSTNAME, now))
                conn.execute("UPDATE runs SET attempt = ?, state = ?, started_at = ?, finished_at = NULL "
                             "WHERE id = ?", (number, str(RunState.RUNNING), now, run_id))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start an attempt of run {run_id}: {exc}") from exc
        return number

    def writer(self, run_id: str, attempt: int) -> SqliteDirectWriter:
        writer = SqliteDirectWriter(self.path, run_id, attempt)
        self._writers = [w for w in self._writers if not w.closed]
        self._writers.append(writer)
        return writer

    def finish_attempt(self, run_id: str, attempt: int, state: str) -> None:
        final = str(RunState(state))  # ValueError for a state that is not a RunState
        now = utc_param(datetime.now(UTC), True)
        try:
            with _Tx(self._conn) as conn:
                done = conn.execute("UPDATE attempts SET state = ?, finished_at = ?, heartbeat_at = ? "
                                    "WHERE run_id = ? AND number = ?", (final, now, now, run_id, attempt))
                if done.rowcount == 0:
                    raise UsageError(f"run {run_id!r} has no attempt {attempt}")
                # Only the latest attempt speaks for the run.
                conn.execute("UPDATE runs SET state = ?, finished_at = ? WHERE id = ? AND attempt = ?",
                             (final, now, run_id, attempt))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot finish attempt {attempt} of run {run_id}: {exc}") from exc

    # -- reads (SQLAlchemy) ------------------------------------------------------------------
    def _reader(self) -> SqlRunStore:
        if self._sql is None:
            from worldtree.store.sql import SqlRunStore

            self._sql = SqlRunStore(self.url)
        return self._sql

    @property
    def _engine(self) -> Any:
        """The SQLAlchemy engine behind the reads (tests and tools query it directly)."""
        return self._reader()._engine

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._reader().get_run(run_id)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return self._reader().list_runs(limit)

    def node_records(self, run_id: str, attempt: int | None = None) -> list[NodeRecord]:
        return self._reader().node_records(run_id, attempt)

    def logs(self, run_id: str, *, node: str | None = None, after_seq: int = 0,
             limit: int | None = None) -> list[LogLine]:
        return self._reader().logs(run_id, node=node, after_seq=after_seq, limit=limit)

    def close(self) -> None:
        """Close open writers (flushing them), then the connections."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        self._conn.close()
        if self._sql is not None:
            self._sql.close()


class SqliteDirectWriter(BatchingWriter):
    """A :class:`BatchingWriter` committing through its own ``sqlite3`` connection."""

    errors = (sqlite3.Error,)
    text_times = True

    def __init__(self, path: str, run_id: str, attempt: int) -> None:
        self._conn = _connect(path)
        super().__init__(run_id, attempt)

    def _max_seq(self) -> int:
        try:
            row = self._conn.execute("SELECT max(seq) FROM logs WHERE run_id = ?", (self.run_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open a writer for run {self.run_id}: {exc}") from exc
        return int(row[0] or 0)

    def _commit(self, node_rows: list[tuple[Any, ...]], log_rows: list[tuple[Any, ...]], beat: bool) -> None:
        with _Tx(self._conn) as conn:
            if node_rows:
                conn.executemany(UPSERT_NODE, node_rows)
            if log_rows:
                conn.executemany(INSERT_LOGS, log_rows)
            if beat:
                conn.execute("UPDATE attempts SET heartbeat_at = ? WHERE run_id = ? AND number = ?",
                             (utc_param(datetime.now(UTC), True), self.run_id, self.attempt))

    def _release(self) -> None:
        self._conn.close()
