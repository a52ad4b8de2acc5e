"""Every store test runs on SQLite (a tmp file) and on PostgreSQL (a fresh database each).

PostgreSQL tests skip, with the reason in the skip and in the summary, only when the server
cannot be reached (``WORLDTREE_TEST_PG_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worldtree.store import RunStore, open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url

_pg_skips: list[str] = []


@pytest.fixture(params=["sqlite", "sqlite-direct", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        why = pg_unavailable_reason()
        if why is not None:
            _pg_skips.append(why)
            pytest.skip(f"NOT TESTED ON POSTGRESQL: {why}")
    return str(request.param)


@pytest.fixture
def url(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store of this test's kind."""
    with store_url("sqlite" if kind == "sqlite-direct" else kind, tmp_path) as value:  # type: ignore[arg-type]
        if kind == "sqlite-direct":  # migrated by the SQLAlchemy store; then run writes bypass SQLAlchemy
            open_store(value).close()
        yield value


@pytest.fixture
def store(url: str, kind: str) -> Iterator[RunStore]:
    opened = open_store(url)
    if kind == "sqlite-direct":
        from worldtree.store.sqlite_direct import SqliteDirectStore

        assert isinstance(opened, SqliteDirectStore)
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _pg_skips:
        terminalreporter.write_sep("!", f"{len(_pg_skips)} store tests NOT run on PostgreSQL: {_pg_skips[0]}",
                                   red=True)
