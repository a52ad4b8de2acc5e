"""The run store: runs, attempts, node states and log lines, in SQLite (default) or PostgreSQL.

Importing this package is cheap; SQLAlchemy (and, only when the schema must change, Alembic)
is imported by :func:`open_store`. The contract is in :mod:`worldtree.store.api`.
"""

from __future__ import annotations

import os
from pathlib import Path

from worldtree.model.records import LogLine, NodeEvent, NodeRecord, RunRecord
from worldtree.store.api import LEASE_SECONDS, AttemptLease, RunStore, RunWriter

__all__ = [
    "LEASE_SECONDS",
    "STORE_ENV",
    "AttemptLease",
    "LogLine",
    "NodeEvent",
    "NodeRecord",
    "RunRecord",
    "RunStore",
    "RunWriter",
    "default_store_url",
    "open_store",
]

#: Environment variable naming the store URL (``sqlite:///PATH`` or ``postgresql+psycopg://…``).
STORE_ENV = "WORLDTREE_STORE"


def default_store_url() -> str:
    """``$WORLDTREE_STORE``, else SQLite at ``./.worldtree/worldtree.db`` (the directory is created)."""
    url = os.environ.get(STORE_ENV, "").strip()
    if url:
        return url
    directory = Path.cwd() / ".worldtree"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'worldtree.db'}"


def open_store(url: str | None = None) -> RunStore:
    """Open (and migrate to head) the store at ``url`` (default: :func:`default_store_url`).

    Raises :class:`worldtree.errors.StoreError` when the URL is malformed, the database cannot
    be reached, or its schema cannot be migrated.
    """
    target = url if url is not None else default_store_url()
    from worldtree.store.sqlite_direct import open_direct

    direct = open_direct(target)  # the embedded default, already migrated: no SQLAlchemy import
    if direct is not None:
        return direct
    from worldtree.store.sql import SqlRunStore

    return SqlRunStore(target)
