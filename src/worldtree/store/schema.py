"""Engines and migrations: open a database, bring its schema to ``HEAD``, translate errors.

Start-up matters (a one-step ``worldtree run`` has 0.35 s in all), so the common case costs one
``SELECT version_num FROM alembic_version``; Alembic is imported only when that is not
``HEAD``. Migrations are serialized between processes by the database itself: SQLite's
``BEGIN IMMEDIATE`` (one writer at a time) or PostgreSQL's transaction-scoped advisory lock,
and DDL is transactional on both, so a process killed mid-migration leaves the old schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from worldtree.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision in ``migrations/versions``; a test checks they agree.
HEAD = "0010"
#: ``pg_advisory_xact_lock`` key for migrations ("wtree" in ASCII).
_PG_MIGRATION_LOCK = 0x7774726565
SUPPORTED = ("sqlite", "postgresql")
#: how long a SQLite statement waits for another process's write lock
SQLITE_BUSY_MS = 30000
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def display_url(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def reason(exc: BaseException) -> str:
    """The driver's own words when there are some (first line), else the exception's."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text_ = str(inner).strip().splitlines()
    return text_[0] if text_ else type(inner).__name__


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"bad run store URL {display_url(url)!r}: expected sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST:PORT/DB") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not SQLAlchemy's psycopg2
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreError(f"run store URL {display_url(parsed)!r}: unsupported database {backend!r} "
                         "(use sqlite or postgresql)")
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise StoreError("an in-memory SQLite run store is not supported: its background writer "
                             "needs a second connection; use a file (sqlite:///PATH)")
        # The writer thread and the caller take connections from one pool.
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        connect_args: dict[str, Any] = {"connect_timeout": 5, "application_name": "worldtree"}
        kwargs["connect_args"] = {k: v for k, v in connect_args.items() if k not in parsed.query}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"run store URL {display_url(parsed)!r}: database driver not installed "
                         f"({reason(exc)}); for PostgreSQL install worldtree[postgres]") from exc
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    """WAL so readers (``logs --follow``) never wait for the writer; transactions we control.

    pysqlite opens transactions lazily and never for DDL; with ``isolation_level = None`` and an
    explicit BEGIN per transaction, migrations are atomic and writers can say ``IMMEDIATE``.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


@contextmanager
def write_transaction(engine: Engine, lock_wait_ms: int | None = None) -> Iterator[Connection]:
    """One read-write transaction; on SQLite it takes the write lock up front (no upgrade deadlock).

    ``lock_wait_ms`` bounds the wait for locks (default: SQLite's 30 s busy timeout, PostgreSQL's none).
    """
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            if lock_wait_ms is not None:  # on the DBAPI connection: a statement here would begin a transaction
                _raw(conn).execute(f"PRAGMA busy_timeout = {int(lock_wait_ms)}")
        try:
            with conn.begin():
                if lock_wait_ms is not None and not sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_wait_ms)}")
                yield conn
        finally:
            if sqlite and lock_wait_ms is not None:
                _raw(conn).execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")


def _raw(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def current_revision(engine: Engine) -> str | None:
    """The schema's Alembic revision, or None when there is no schema yet."""
    with engine.connect() as conn:
        try:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        except DBAPIError:
            # Usually "no such table"; anything worse surfaces again, clearly, while migrating.
            return None
        conn.rollback()
    return str(row[0]) if row is not None else None


def ensure_schema(engine: Engine) -> None:
    """Migrate to ``HEAD`` unless already there; safe from several processes at once."""
    if current_revision(engine) == HEAD:
        return
    from alembic import command  # only here: importing Alembic costs start-up time

    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if inspect(conn).has_table("alembic_version"):
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            if row is not None and row[0] == HEAD:
                return  # another process migrated while we waited for the lock
        config = alembic_config(engine.url)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def alembic_config(url: str | URL) -> Config:
    """An Alembic ``Config`` for the run store, without an ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def open_engine(url: str) -> Engine:
    """A migrated engine for ``url``; every failure is a :class:`StoreError` naming the URL."""
    engine = make_engine(url)
    try:
        ensure_schema(engine)
    except StoreError:
        engine.dispose()
        raise
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        why = reason(exc)
        if engine.dialect.name == "sqlite" and "unable to open" in why:
            why += f" (does the directory of {engine.url.database} exist and is it writable?)"
        raise StoreError(f"cannot open the run store at {display_url(url)}: {why}") from exc
    except Exception as exc:  # Alembic's CommandError and friends: a schema we cannot migrate
        engine.dispose()
        if type(exc).__module__.startswith("alembic"):
            raise StoreError(f"cannot migrate the run store at {display_url(url)} to revision {HEAD}: "
                             f"{exc} (is it from a newer worldtree?)") from exc
        raise
    return engine
