"""GitOps fixtures: real servers on SQLite and PostgreSQL (tests/server's), a loopback status API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_fakes import StatusHost
from tests.server.conftest import servers  # noqa: F401  (the fixture, on both stores)

from worldtree.store import RunStore, open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url


@pytest.fixture
def status_host() -> Iterator[StatusHost]:
    host = StatusHost().start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """An open, migrated run store of each kind (PostgreSQL: a fresh database, skipped loudly if absent)."""
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()
