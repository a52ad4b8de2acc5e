"""The embedded default's fast path: a run's writes to a SQLite store through stdlib ``sqlite3``.

SQLAlchemy and Alembic own the schema (``tables.py``, ``migrations/``) and every read. But
importing SQLAlchemy costs ~170 ms, half of the 0.35 s a one-step ``worldtree run`` may take.
So when the SQLite file is already at ``HEAD``, the writes a run makes — ``create_run``,
``start_attempt``, the batched writer, ``finish_attempt``, cancel and node claims — go straight
to ``sqlite3`` with the very statements the SQLAlchemy store runs (:mod:`.lifecycle`,
:mod:`.transitions`, :mod:`.batching` through :mod:`.tx`); reads open the SQLAlchemy store on
first use. Anything else (no file yet, an older schema)
goes through :class:`~worldtree.store.sql.SqlRunStore`, which migrates.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worldtree.errors import StoreError
from worldtree.model.records import LogLine, NodeRecord, RunRecord
from worldtree.store import lifecycle
from worldtree.store.api import LEASE_SECONDS, AttemptLease, AuditEntry, TokenRecord
from worldtree.store.batching import BatchingWriter, OnCancel, OnCommit, OnFault
from worldtree.store.tx import SqliteTx

if TYPE_CHECKING:
    from worldtree.store.sql import SqlRunStore

#: must equal ``worldtree.store.schema.HEAD`` (a test checks; importing schema imports SQLAlchemy)
HEAD = "0010"
#: SQLite's busy timeout for a heartbeat (ms): it must not wait behind a stuck batch for long
HEARTBEAT_LOCK_WAIT_MS = 1000

#: The schema Alembic's revision HEAD creates on SQLite, statement for statement (a test compares
#: ``sqlite_master`` of both). A new file gets it without importing Alembic (0.3 s of start-up).
_SCHEMA_0001_0004 = (
    'CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, '
    '\n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)',
    'CREATE TABLE runs (\n\tid VARCHAR(40) NOT NULL, \n\tname TEXT NOT NULL, \n\tsource TEXT, '
    '\n\tworkdir TEXT NOT NULL, \n\tstate VARCHAR(20) NOT NULL, \n\tattempt INTEGER NOT NULL, '
    '\n\tcreated_at DATETIME NOT NULL, \n\tstarted_at DATETIME, \n\tfinished_at DATETIME, '
    "\n\tgraph_json TEXT NOT NULL, \n\toptions_json TEXT NOT NULL, log_seq INTEGER DEFAULT '0' NOT NULL, "
    "fence INTEGER DEFAULT '0' NOT NULL, cancel_requested_at DATETIME, cancel_reason TEXT, "
    "graph_version INTEGER DEFAULT '1' NOT NULL, \n\tPRIMARY KEY (id)\n)",
    'CREATE INDEX ix_runs_created_at ON runs (created_at)',
    'CREATE TABLE attempts (\n\trun_id VARCHAR(40) NOT NULL, \n\tnumber INTEGER NOT NULL, '
    '\n\tstate VARCHAR(20) NOT NULL, \n\tstarted_at DATETIME NOT NULL, \n\tfinished_at DATETIME, '
    '\n\tpid INTEGER NOT NULL, \n\thostname VARCHAR(255) NOT NULL, \n\theartbeat_at DATETIME NOT NULL, '
    "owner VARCHAR(300), token INTEGER DEFAULT '0' NOT NULL, lease_expires_at DATETIME, "
    'scope_deadlines_json TEXT, \n\tPRIMARY KEY (run_id, number), '
    '\n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE TABLE node_states (\n\trun_id VARCHAR(40) NOT NULL, \n\tattempt INTEGER NOT NULL, '
    '\n\tnode TEXT NOT NULL, \n\tstate VARCHAR(20) NOT NULL, \n\tstarted_at DATETIME, '
    '\n\tfinished_at DATETIME, \n\texit_code INTEGER, \n\terror TEXT, \n\treason TEXT, '
    '\n\ttry_number INTEGER NOT NULL, owner VARCHAR(300), lease_expires_at DATETIME, token INTEGER, '
    'deadline_at DATETIME, retry_at DATETIME, \n\tPRIMARY KEY (run_id, attempt, node), '
    '\n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE TABLE logs (\n\tid INTEGER NOT NULL, \n\trun_id VARCHAR(40) NOT NULL, '
    '\n\tattempt INTEGER NOT NULL, \n\tnode TEXT NOT NULL, \n\tseq INTEGER NOT NULL, \n\tts DATETIME NOT NULL, '
    '\n\tstream VARCHAR(20) NOT NULL, \n\tline TEXT NOT NULL, \n\tPRIMARY KEY (id), '
    '\n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_logs_run_node ON logs (run_id, node)',
    'CREATE UNIQUE INDEX ux_logs_run_seq ON logs (run_id, seq)',
    'CREATE TABLE api_tokens (\n\tid VARCHAR(40) NOT NULL, \n\tname TEXT NOT NULL, \n\trole VARCHAR(20) NOT NULL, '
    '\n\tsecret_hash VARCHAR(64) NOT NULL, \n\tcreated_at DATETIME NOT NULL, \n\texpires_at DATETIME, '
    '\n\trevoked_at DATETIME, \n\tPRIMARY KEY (id)\n)',
    'CREATE UNIQUE INDEX ux_api_tokens_secret_hash ON api_tokens (secret_hash)',
    'CREATE TABLE audit_log (\n\tid INTEGER NOT NULL, \n\tat DATETIME NOT NULL, \n\tactor VARCHAR(100) NOT NULL, '
    '\n\trole VARCHAR(20), \n\taction VARCHAR(200) NOT NULL, \n\ttarget TEXT, \n\tstatus INTEGER NOT NULL, '
    '\n\tclient VARCHAR(100), \n\tPRIMARY KEY (id)\n)',
    'CREATE INDEX ix_audit_log_at ON audit_log (at)',
)
#: each later revision's statements, kept apart so that each revision's author edits only its own
_SCHEMA_0005_AGENTS: tuple[str, ...] = (
    'CREATE TABLE agents (\n\tid VARCHAR(40) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\tlabels TEXT NOT NULL, '
    '\n\tcapacity INTEGER NOT NULL, \n\tstatus VARCHAR(16) NOT NULL, \n\tdraining INTEGER DEFAULT \'0\' NOT NULL, '
    '\n\thost TEXT NOT NULL, \n\tmetrics TEXT DEFAULT \'{}\' NOT NULL, \n\tregistered_at DATETIME NOT NULL, '
    '\n\tlast_seen DATETIME NOT NULL, \n\toffline_since DATETIME, \n\tPRIMARY KEY (id)\n)',
    'CREATE TABLE agent_jobs (\n\tid VARCHAR(40) NOT NULL, \n\trun_id VARCHAR(40) NOT NULL, '
    '\n\tattempt INTEGER NOT NULL, '
    '\n\tjob TEXT NOT NULL, \n\tselector TEXT, \n\tgraph TEXT NOT NULL, \n\tstate VARCHAR(16) NOT NULL, '
    '\n\tagent_id VARCHAR(40), \n\tlease_token BIGINT DEFAULT \'0\' NOT NULL, \n\tlease_until DATETIME, '
    '\n\tacked_line BIGINT DEFAULT \'0\' NOT NULL, \n\tcreated_at DATETIME NOT NULL, \n\tclaimed_at DATETIME, '
    '\n\terror TEXT, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_agent_jobs_state ON agent_jobs (state)',
    'CREATE INDEX ix_agent_jobs_run_id ON agent_jobs (run_id)',
    'CREATE TABLE agent_tasks (\n\tid VARCHAR(40) NOT NULL, \n\tjob_id VARCHAR(40) NOT NULL, \n\tnode TEXT NOT NULL, '
    '\n\tcommand TEXT NOT NULL, \n\tenv TEXT NOT NULL, \n\tpurpose VARCHAR(16) NOT NULL, '
    '\n\ttry_number INTEGER NOT NULL, \n\tworkdir TEXT, \n\tstate VARCHAR(16) NOT NULL, \n\tstop_reason TEXT, '
    '\n\texit_code INTEGER, \n\terror TEXT, \n\tstopped INTEGER DEFAULT \'0\' NOT NULL, '
    '\n\tcreated_at DATETIME NOT NULL, \n\tfinished_at DATETIME, \n\tPRIMARY KEY (id), '
    '\n\tFOREIGN KEY(job_id) REFERENCES agent_jobs (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_agent_tasks_job_id ON agent_tasks (job_id)',
    'CREATE INDEX ix_agent_tasks_state ON agent_tasks (state)',
    'CREATE TABLE agent_log_lines (\n\tjob_id VARCHAR(40) NOT NULL, \n\tline BIGINT NOT NULL, '
    '\n\ttask_id VARCHAR(40) NOT NULL, \n\tstream VARCHAR(16) NOT NULL, \n\tcontent TEXT NOT NULL, '
    '\n\tat DATETIME NOT NULL, \n\tPRIMARY KEY (job_id, line), '
    '\n\tFOREIGN KEY(job_id) REFERENCES agent_jobs (id) ON DELETE CASCADE\n)',
)
_SCHEMA_0006_SERVER_DATA: tuple[str, ...] = (
    'CREATE TABLE secrets (\n\tname VARCHAR(200) NOT NULL, \n\tciphertext TEXT NOT NULL, '
    '\n\tcreated_at DATETIME NOT NULL, \n\tupdated_at DATETIME NOT NULL, \n\tPRIMARY KEY (name)\n)',
    'CREATE TABLE pipelines (\n\tname VARCHAR(200) NOT NULL, \n\tdocument TEXT NOT NULL, '
    '\n\tcreated_at DATETIME NOT NULL, \n\tupdated_at DATETIME NOT NULL, \n\tPRIMARY KEY (name)\n)',
    'CREATE TABLE pipeline_runs (\n\trun_id VARCHAR(40) NOT NULL, \n\tpipeline VARCHAR(200) NOT NULL, '
    '\n\tcreated_at DATETIME NOT NULL, \n\tPRIMARY KEY (run_id), '
    '\n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_pipeline_runs_pipeline ON pipeline_runs (pipeline)',
    'CREATE TABLE artifacts (\n\tid VARCHAR(40) NOT NULL, \n\trun_id VARCHAR(40) NOT NULL, '
    '\n\tattempt INTEGER NOT NULL, \n\tjob TEXT NOT NULL, \n\tpath TEXT NOT NULL, '
    '\n\tsha256 VARCHAR(64) NOT NULL, \n\tsize BIGINT NOT NULL, \n\tcreated_at DATETIME NOT NULL, '
    '\n\texpires_at DATETIME, \n\tPRIMARY KEY (id), '
    '\n\tFOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_artifacts_run_id ON artifacts (run_id)',
    'CREATE INDEX ix_artifacts_expires_at ON artifacts (expires_at)',
    'CREATE INDEX ix_artifacts_sha256 ON artifacts (sha256)',
)
_SCHEMA_0007_GITOPS: tuple[str, ...] = (
    'CREATE TABLE git_repositories (\n\tid VARCHAR(40) NOT NULL, \n\tprovider VARCHAR(20) NOT NULL, \n\t'
    'name VARCHAR(300) NOT NULL, \n\tclone_url TEXT NOT NULL, \n\tapi_url TEXT, \n\tci_file TEXT, \n\t'
    'executor VARCHAR(20) NOT NULL, \n\twebhook_secret TEXT NOT NULL, \n\tstatus_token TEXT, \n\t'
    'created_at DATETIME NOT NULL, \n\tPRIMARY KEY (id)\n)',
    'CREATE UNIQUE INDEX ux_git_repositories_provider_name ON git_repositories (provider, name)',
    'CREATE TABLE git_deliveries (\n\tid VARCHAR(40) NOT NULL, \n\tprovider VARCHAR(20) NOT NULL, \n\t'
    'delivery_id VARCHAR(200) NOT NULL, \n\trepository_id VARCHAR(40) NOT NULL, \n\t'
    'event VARCHAR(50) NOT NULL, \n\tpayload TEXT NOT NULL, \n\treceived_at DATETIME NOT NULL, \n\t'
    'state VARCHAR(20) NOT NULL, \n\towner VARCHAR(300), \n\tlease_expires_at DATETIME, \n\t'
    "tries INTEGER DEFAULT '0' NOT NULL, \n\tdetail TEXT, \n\tsha VARCHAR(64), \n\tref TEXT, \n\t"
    'run_id VARCHAR(40), \n\tpipeline TEXT, \n\treported VARCHAR(20), \n\t'
    "report_tries INTEGER DEFAULT '0' NOT NULL, \n\treport_after DATETIME, \n\treported_attempt INTEGER, "
    "\n\tPRIMARY KEY (id), \n\t"
    'FOREIGN KEY(repository_id) REFERENCES git_repositories (id) ON DELETE CASCADE\n)',
    'CREATE UNIQUE INDEX ux_git_deliveries_provider_delivery ON git_deliveries (provider, delivery_id)',
    'CREATE INDEX ix_git_deliveries_state ON git_deliveries (state)',
    'CREATE INDEX ix_git_deliveries_received_at ON git_deliveries (received_at)',
    'CREATE TABLE schedules (\n\tid VARCHAR(40) NOT NULL, \n\tname TEXT NOT NULL, \n\t'
    'cron VARCHAR(200) NOT NULL, \n\ttimezone VARCHAR(100) NOT NULL, \n\trepository_id VARCHAR(40), \n\t'
    'ref TEXT, \n\tsha VARCHAR(64), \n\tdocument TEXT, \n\tcreated_at DATETIME NOT NULL, \n\t'
    'PRIMARY KEY (id), \n\tFOREIGN KEY(repository_id) REFERENCES git_repositories (id) ON DELETE CASCADE\n)',
    'CREATE UNIQUE INDEX ux_schedules_name ON schedules (name)',
    'CREATE TABLE schedule_ticks (\n\tschedule_id VARCHAR(40) NOT NULL, \n\ttick_at DATETIME NOT NULL, \n\t'
    'fired_at DATETIME NOT NULL, \n\towner VARCHAR(300) NOT NULL, \n\trun_id VARCHAR(40), \n\t'
    'PRIMARY KEY (schedule_id, tick_at), \n\t'
    'FOREIGN KEY(schedule_id) REFERENCES schedules (id) ON DELETE CASCADE\n)',
)
#: 0008: the server's event log (worldtree.store.events_tables)
_SCHEMA_0008_EVENTS: tuple[str, ...] = (
    'CREATE TABLE events (\n\tid INTEGER NOT NULL, \n\tat DATETIME NOT NULL, \n\tkind VARCHAR(40) NOT NULL, \n\t'
    'run_id VARCHAR(40), \n\tdata_json TEXT NOT NULL, \n\tPRIMARY KEY (id)\n)',
    'CREATE INDEX ix_events_run_id ON events (run_id, id)',
)
#: 0009: stacks' applied state, leases, agent memory, skills (worldtree.store.stacks_tables)
_SCHEMA_0009_STACKS: tuple[str, ...] = (
    'CREATE TABLE stack_state (\n\tstack VARCHAR(200) NOT NULL, \n\tenv VARCHAR(200) NOT NULL, \n\t'
    'phase VARCHAR(20) NOT NULL, \n\tstate_json TEXT NOT NULL, \n\tdigest VARCHAR(80) NOT NULL, \n\t'
    'run_id VARCHAR(40), \n\tapplied_at DATETIME NOT NULL, \n\tPRIMARY KEY (stack, env, phase)\n)',
    'CREATE TABLE stack_leases (\n\t"key" VARCHAR(450) NOT NULL, \n\tholder VARCHAR(200) NOT NULL, \n\t'
    'token VARCHAR(64) NOT NULL, \n\texpires_at DATETIME NOT NULL, \n\tPRIMARY KEY ("key")\n)',
    'CREATE TABLE stack_memory (\n\tstack VARCHAR(200) NOT NULL, \n\tenv VARCHAR(200) NOT NULL, \n\t'
    '"key" VARCHAR(100) NOT NULL, \n\tvalue_json TEXT NOT NULL, \n\tupdated_at DATETIME NOT NULL, \n\t'
    'PRIMARY KEY (stack, env, "key")\n)',
    'CREATE TABLE skill_sources (\n\tname VARCHAR(200) NOT NULL, \n\tkind VARCHAR(10) NOT NULL, \n\t'
    'uri TEXT NOT NULL, \n\tref VARCHAR(200), \n\tpath TEXT, \n\tpriority INTEGER NOT NULL, \n\t'
    'created_at DATETIME NOT NULL, \n\tPRIMARY KEY (name)\n)',
    'CREATE TABLE skills (\n\tsource VARCHAR(200) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\t'
    'sha256 VARCHAR(64) NOT NULL, \n\tcontent TEXT NOT NULL, \n\torigin TEXT NOT NULL, \n\t'
    'version VARCHAR(200) NOT NULL, \n\tfetched_at DATETIME NOT NULL, \n\tPRIMARY KEY (source, name)\n)',
)
#: 0010: the digest of each agent's session secret (worldtree.store.agents_tables)
_SCHEMA_0010_AGENT_SECRET: tuple[str, ...] = (
    'ALTER TABLE agents ADD COLUMN secret_hash VARCHAR(64)',
)
SCHEMA = (_SCHEMA_0001_0004 + _SCHEMA_0005_AGENTS + _SCHEMA_0006_SERVER_DATA + _SCHEMA_0007_GITOPS
          + _SCHEMA_0008_EVENTS + _SCHEMA_0009_STACKS + _SCHEMA_0010_AGENT_SECRET)


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


def _connect(path: str, busy_ms: int = 30000) -> sqlite3.Connection:
    """Connections tuned as ``schema._tune_sqlite`` tunes SQLAlchemy's: WAL, explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
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
    """``with _Tx(conn) as tx:`` = BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), as write_transaction does."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> SqliteTx:
        self.conn.execute("BEGIN IMMEDIATE")
        return SqliteTx(self.conn)

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class SqliteDirectStore:
    """A RunStore: writes by ``sqlite3`` (:mod:`.lifecycle`), reads by a lazily opened :class:`SqlRunStore`."""

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._conn = _connect(path)
        self._lock = threading.Lock()  # one transaction at a time on the shared connection
        self._sql: SqlRunStore | None = None
        self._writers: list[SqliteDirectWriter] = []

    @contextmanager
    def _tx(self, action: str) -> Iterator[SqliteTx]:
        try:
            with self._lock, _Tx(self._conn) as tx:
                yield tx
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: cannot {action}: {exc}") from exc

    # -- writes ----------------------------------------------------------------------------
    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any], graph_version: int = 1) -> str:
        return lifecycle.create_run(lambda: self._tx("create a run"), sqlite3.IntegrityError, name=name,
                                    source=source, workdir=workdir, graph_json=graph_json, options=options,
                                    graph_version=graph_version, now=datetime.now(UTC))

    def start_attempt(self, run_id: str, *, node_ids: list[str], expect_attempt: int | None = None,
                      lease_seconds: float = LEASE_SECONDS) -> AttemptLease:
        with self._tx("start an attempt") as tx:
            return lifecycle.start_attempt(tx, run_id, node_ids, expect_attempt, lease_seconds, datetime.now(UTC))

    def writer(self, run_id: str, attempt: int, *, token: int, on_commit: OnCommit | None = None,
               on_cancel: OnCancel | None = None, on_fault: OnFault | None = None) -> SqliteDirectWriter:
        writer = SqliteDirectWriter(self.path, run_id, attempt, token=token, on_commit=on_commit,
                                    on_cancel=on_cancel, on_fault=on_fault)
        self._writers = [w for w in self._writers if not w.closed]
        self._writers.append(writer)
        return writer

    def finish_attempt(self, run_id: str, attempt: int, state: str, *, token: int) -> None:
        with self._tx("finish an attempt") as tx:
            lifecycle.finish_attempt(tx, run_id, attempt, state, token, datetime.now(UTC))

    def request_cancel(self, run_id: str, reason: str) -> bool:
        with self._tx("request a cancel") as tx:
            return lifecycle.request_cancel(tx, run_id, reason, datetime.now(UTC))

    def claim_node(self, run_id: str, attempt: int, node: str, owner: str, lease_seconds: float) -> int | None:
        with self._tx("claim a node") as tx:
            return lifecycle.claim_node(tx, run_id, attempt, node, owner, lease_seconds, datetime.now(UTC))

    def renew_node_lease(self, run_id: str, attempt: int, node: str, token: int, lease_seconds: float) -> bool:
        with self._tx("renew a node lease") as tx:
            return lifecycle.renew_node_lease(tx, run_id, attempt, node, token, lease_seconds, datetime.now(UTC))

    def expired_node_leases(self, now: datetime) -> list[tuple[str, int, str, int]]:
        with self._tx("read node leases") as tx:
            return lifecycle.expired_node_leases(tx, now)

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

    def claimable_runs(self, limit: int = 20) -> list[tuple[str, int]]:
        return self._reader().claimable_runs(limit)

    def delete_run(self, run_id: str) -> bool:
        with self._tx("delete a run") as tx:
            return lifecycle.delete_run(tx, run_id)

    def requeue_run(self, run_id: str, expect_attempt: int) -> bool:
        with self._tx("requeue a run") as tx:
            return lifecycle.requeue_run(tx, run_id, expect_attempt)

    def create_token(self, *, token_id: str, name: str, role: str, secret_hash: str,
                     expires_at: datetime | None) -> None:
        with self._tx("create a token") as tx:
            lifecycle.create_token(tx, token_id=token_id, name=name, role=role, secret_hash=secret_hash,
                                   expires_at=expires_at, now=datetime.now(UTC))

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        return self._reader().token_by_hash(secret_hash)

    def list_tokens(self) -> list[TokenRecord]:
        return self._reader().list_tokens()

    def revoke_token(self, token_id: str) -> bool:
        with self._tx("revoke a token") as tx:
            return lifecycle.revoke_token(tx, token_id, datetime.now(UTC))

    def notify_queue(self) -> None:
        """SQLite: nothing to announce; executors poll."""

    def listen_queue(self, on_signal: Callable[[], None], stop: threading.Event) -> bool:
        return False

    def record_audit(self, entry: AuditEntry) -> None:
        with self._tx("write the audit log") as tx:
            lifecycle.record_audit(tx, entry)

    def audit_entries(self, *, offset: int = 0, limit: int = 100) -> tuple[list[AuditEntry], int]:
        return self._reader().audit_entries(offset=offset, limit=limit)

    def page_runs(self, *, offset: int = 0, limit: int = 50, state: str | None = None,
                  pipeline: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, q: str | None = None) -> tuple[list[RunRecord], int]:
        return self._reader().page_runs(offset=offset, limit=limit, state=state, pipeline=pipeline, since=since,
                                        until=until, q=q)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return self._reader().list_runs(limit)

    def node_records(self, run_id: str, attempt: int | None = None) -> list[NodeRecord]:
        return self._reader().node_records(run_id, attempt)

    def logs(self, run_id: str, *, node: str | None = None, after_seq: int = 0,
             limit: int | None = None) -> list[LogLine]:
        return self._reader().logs(run_id, node=node, after_seq=after_seq, limit=limit)

    def close(self) -> None:
        """Close open writers (flushing them), then the connections."""
        writers, self._writers = self._writers, []
        try:
            for writer in writers:
                writer.close()
        finally:
            self._conn.close()
            if self._sql is not None:
                self._sql.close()


class SqliteDirectWriter(BatchingWriter):
    """A :class:`BatchingWriter` on two ``sqlite3`` connections of its own: batches, and the lease."""

    errors = (sqlite3.Error,)

    def __init__(self, path: str, run_id: str, attempt: int, **kwargs: Any) -> None:
        self._conn = _connect(path)
        self._beat_conn = _connect(path, busy_ms=HEARTBEAT_LOCK_WAIT_MS)
        try:
            super().__init__(run_id, attempt, **kwargs)
        except BaseException:
            self._release()
            raise

    def _transaction(self, heartbeat: bool) -> _Tx:
        return _Tx(self._beat_conn if heartbeat else self._conn)

    def _release(self) -> None:
        self._conn.close()
        self._beat_conn.close()
