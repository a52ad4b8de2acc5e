"""Run stores for tests: a migrated SQLite file, or a fresh PostgreSQL database per test.

PostgreSQL is found through ``WORLDTREE_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). :func:`fresh_pg_database` creates
``wt_<random>`` through the server's ``postgres`` database and drops it afterwards (forcing
out leftover connections), so tests never see each other's rows, in one process or many.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

PG_URL_ENV = "WORLDTREE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
StoreKind = Literal["sqlite", "postgres"]


def pg_test_url() -> str:
    """The PostgreSQL URL tests use (``$WORLDTREE_TEST_PG_URL`` or the local default)."""
    return os.environ.get(PG_URL_ENV, "").strip() or DEFAULT_PG_URL


def sqlite_url(directory: Path | str, name: str = "worldtree.db") -> str:
    return f"sqlite:///{Path(directory).resolve() / name}"


@functools.cache
def pg_unavailable_reason(url: str | None = None) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used (None when it can); checked once per process."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    target = url or pg_test_url()
    try:
        engine = create_engine(_admin_url(target), connect_args={"connect_timeout": 3})
    except (SQLAlchemyError, ImportError) as exc:
        return f"cannot use {target}: {exc}"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        shown = make_url(target).render_as_string(hide_password=True)
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"PostgreSQL unreachable at {shown} ({PG_URL_ENV}): {first[0] if first else exc}"
    finally:
        engine.dispose()
    return None


@contextmanager
def fresh_pg_database(url: str | None = None) -> Iterator[str]:
    """Yield the URL of a new, empty database on the server of ``url``; drop it afterwards."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(url or pg_test_url())
    name = f"wt_{secrets.token_hex(6)}"
    admin = create_engine(_admin_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def store_url(kind: StoreKind, directory: Path | str) -> Iterator[str]:
    """A URL for an empty store of ``kind``: a SQLite file in ``directory``, or a fresh PG database."""
    if kind == "sqlite":
        yield sqlite_url(directory)
    else:
        with fresh_pg_database() as url:
            yield url


def _admin_url(url: str | URL) -> str:
    """The same server's ``postgres`` database, where databases are created and dropped."""
    from sqlalchemy import make_url

    return make_url(url).set(database="postgres").render_as_string(hide_password=False)
